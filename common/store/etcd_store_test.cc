// etcd-backend specifics not in the conformance suite: user authentication
// (and token refresh), TLS, endpoint failover, and the config factory.
#include "common/store/etcd_store.h"

#include <signal.h>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/store/embedded_store.h"
#include "common/store/etcd_launcher.h"
#include "common/store/store_factory.h"

namespace vpn::store {
namespace {

std::string TmpDir(absl::string_view name) {
  std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'");
  EXPECT_EQ(system(cmd.c_str()), 0);
  return dir;
}

int Shell(const std::string& cmd) {
  int rc = system((cmd + " >/dev/null 2>&1").c_str());
  EXPECT_EQ(rc, 0) << cmd;
  return rc;
}

std::unique_ptr<EtcdLauncher> StartEtcd(EtcdLauncher::Options options) {
  auto etcd = EtcdLauncher::Start(std::move(options));
  EXPECT_TRUE(etcd.ok()) << etcd.status();
  return etcd.ok() ? *std::move(etcd) : nullptr;
}

TEST(EtcdStore, UserAuthenticationWithTokenRefresh) {
  EtcdLauncher::Options options;
  options.data_dir = TmpDir("auth");
  options.extra_args = {"--auth-token=simple", "--auth-token-ttl=1"};
  auto etcd = StartEtcd(options);
  ASSERT_NE(etcd, nullptr);
  std::string ctl = absl::StrCat("ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=",
                                 etcd->endpoint());
  ASSERT_EQ(Shell(ctl + " user add root:rootpw --interactive=false"), 0);
  ASSERT_EQ(Shell(ctl + " auth enable"), 0);

  EtcdOptions eo;
  eo.endpoints = {etcd->endpoint()};
  // No credentials: refused with etcd's reason.
  auto anonymous = EtcdStore::Connect(eo);
  ASSERT_TRUE(anonymous.ok());
  auto denied = (*anonymous)->Put("/k", "v");
  EXPECT_FALSE(denied.ok());
  EXPECT_TRUE(absl::StrContains(denied.status().message(), "user name is empty"))
      << denied.status();
  // Wrong password: Connect fails with a clear message.
  eo.username = "root";
  eo.password = "wrong";
  auto wrong = EtcdStore::Connect(eo);
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(absl::StrContains(wrong.status().message(),
                                "authentication as user 'root' failed"))
      << wrong.status();
  EXPECT_FALSE(absl::StrContains(wrong.status().message(), "wrong"));
  // Right password: works, and keeps working after the token expired.
  eo.password = "rootpw";
  auto store = EtcdStore::Connect(eo);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Put("/k", "v").ok());
  auto w = (*store)->Watch("/w/", 0);
  ASSERT_TRUE(w.ok()) << w.status();
  absl::SleepFor(absl::Milliseconds(2500));  // simple tokens expire after 1 s idle
  auto kv = (*store)->Get("/k");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->value, "v");
  auto put = (*store)->Put("/w/x", "1");
  ASSERT_TRUE(put.ok()) << put.status();
  auto e = (*w)->Next(absl::Seconds(10));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->revision, put->revision);
}

TEST(EtcdStore, Tls) {
  std::string dir = TmpDir("tls");
  ASSERT_EQ(Shell(absl::StrCat(TestRunfile("tools/service-pki.sh"), " ", dir)), 0);
  // TLS with a server certificate; client certificates are accepted, not
  // required (production mode is etcd_rbac_test's).
  EtcdLauncher::Options options;
  options.data_dir = dir + "/etcd";
  options.cert_file = dir + "/etcd.crt";
  options.key_file = dir + "/etcd.key";
  options.ca_file = dir + "/ca.crt";
  auto etcd = StartEtcd(options);
  ASSERT_NE(etcd, nullptr);

  EtcdOptions eo;
  eo.endpoints = {etcd->endpoint()};
  eo.tls = {dir + "/ike-service.crt", dir + "/ike-service.key", dir + "/ca.crt"};
  auto store = EtcdStore::Connect(eo);
  ASSERT_TRUE(store.ok()) << store.status();
  auto put = (*store)->Put("/tls/k", "v");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ((*store)->Get("/tls/k")->value, "v");

  // Plain text against a TLS server fails fast with a clear status.
  EtcdOptions plain;
  plain.endpoints = {etcd->endpoint()};
  auto insecure = EtcdStore::Connect(plain);
  ASSERT_TRUE(insecure.ok());
  auto get = (*insecure)->Get("/tls/k");
  EXPECT_EQ(get.status().code(), absl::StatusCode::kUnavailable) << get.status();
  // A missing file is reported with its path.
  EtcdOptions missing_ca = eo;
  missing_ca.tls.ca_file = dir + "/missing.crt";
  auto missing = EtcdStore::Connect(missing_ca);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "missing.crt"));
  // Part of a certificate is refused: all three files or none.
  EtcdOptions partial = eo;
  partial.tls.key_file.clear();
  auto half = EtcdStore::Connect(partial);
  EXPECT_EQ(half.status().code(), absl::StatusCode::kInvalidArgument) << half.status();
}

TEST(EtcdStore, FailsOverToTheNextEndpoint) {
  EtcdLauncher::Options options;
  options.data_dir = TmpDir("failover");
  auto etcd = StartEtcd(options);
  ASSERT_NE(etcd, nullptr);
  // 127.0.0.1:1 refuses connections; the store moves on to the live one.
  auto store = OpenStore(absl::StrCat("etcd:127.0.0.1:1,", etcd->endpoint()));
  ASSERT_TRUE(store.ok()) << store.status();
  auto put = (*store)->Put("/f/k", "v");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_TRUE((*store)->Get("/f/k").ok());
}

TEST(EtcdStore, HungServerHitsTheDeadlineAndRecovers) {
  EtcdLauncher::Options options;
  options.data_dir = TmpDir("hung");
  auto etcd = StartEtcd(options);
  ASSERT_NE(etcd, nullptr);
  EtcdOptions eo;
  eo.endpoints = {etcd->endpoint()};
  eo.op_timeout = absl::Milliseconds(500);
  auto store = EtcdStore::Connect(eo);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Put("/h/k", "v").ok());
  // Frozen, not dead: the connection stays up but nothing answers.
  ASSERT_EQ(kill(etcd->pid(), SIGSTOP), 0);
  absl::Time start = absl::Now();
  auto get = (*store)->Get("/h/k");
  absl::Duration took = absl::Now() - start;
  kill(etcd->pid(), SIGCONT);
  EXPECT_EQ(get.status().code(), absl::StatusCode::kUnavailable) << get.status();
  EXPECT_TRUE(absl::StrContains(get.status().message(), "no answer within 500ms"))
      << get.status();
  EXPECT_LT(took, absl::Seconds(2));
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<KeyValue> again;
  do {
    again = (*store)->Get("/h/k");
  } while (!again.ok() && absl::Now() < deadline);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->value, "v");
}

TEST(StoreFactory, ChoosesBackendByConfig) {
  auto embedded = OpenStore(absl::StrCat("embedded:", TmpDir("factory")));
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  EXPECT_NE(dynamic_cast<EmbeddedStore*>(embedded->get()), nullptr);
  ASSERT_TRUE((*embedded)->Put("k", "v").ok());
  auto etcd = OpenStore("etcd:127.0.0.1:2379");
  ASSERT_TRUE(etcd.ok());
  EXPECT_NE(dynamic_cast<EtcdStore*>(etcd->get()), nullptr);
  for (const char* bad : {"", "embedded:", "etcd:", "redis:x"}) {
    auto s = OpenStore(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  // TLS is for etcd only.
  auto tls_embedded = OpenStore(absl::StrCat("embedded:", TmpDir("factory-tls")),
                                rpc::TlsFiles{"c.crt", "c.key", "ca.crt"});
  EXPECT_EQ(tls_embedded.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vpn::store
