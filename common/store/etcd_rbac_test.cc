// The services' etcd roles (tools/etcd-rbac.sh) against a real etcd in
// production mode: TLS, a client certificate required, its CN the etcd
// user. Each service can do what it needs on its prefixes and nothing else;
// clients without a certificate from the services' CA get nowhere.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/store/etcd_launcher.h"
#include "common/store/etcd_store.h"
#include "proto/etcd/etcdserverpb/rpc.grpc.pb.h"

namespace vpn::store {
namespace {

class EtcdRbac : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto etcd = StartProductionTestEtcd(absl::StrCat(getenv("TEST_TMPDIR"), "/rbac"));
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = etcd->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }

  static std::string Pki(absl::string_view file) {
    return absl::StrCat(etcd_->pki_dir(), "/", file);
  }
  // A store as `name` (a certificate of tools/service-pki.sh).
  static std::unique_ptr<EtcdStore> As(absl::string_view name) {
    EtcdOptions options;
    options.endpoints = {etcd_->endpoint()};
    options.tls = {Pki(absl::StrCat(name, ".crt")), Pki(absl::StrCat(name, ".key")),
                   Pki("ca.crt")};
    auto store = EtcdStore::Connect(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Everything the Store interface does on a prefix the role may write:
  // create-only put, compare-on-version put, get, list, watch, a Txn with a
  // check, compare-on-revision delete.
  static void ExpectReadWrite(Store& store, const std::string& prefix) {
    SCOPED_TRACE(prefix);
    const std::string key = prefix + "rbac-test";
    auto created = store.Put(key, "1", {Condition::CreateOnly()});
    ASSERT_TRUE(created.ok()) << created.status();
    auto watch = store.Watch(prefix, 0);
    ASSERT_TRUE(watch.ok()) << watch.status();
    auto updated = store.Put(key, "2", {Condition::VersionIs(1)});
    ASSERT_TRUE(updated.ok()) << updated.status();
    auto event = (*watch)->Next(absl::Seconds(10));
    ASSERT_TRUE(event.ok()) << event.status();
    EXPECT_EQ(event->revision, updated->revision);
    auto got = store.Get(key);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->value, "2");
    auto listed = store.List(prefix);
    ASSERT_TRUE(listed.ok()) << listed.status();
    EXPECT_FALSE(listed->kvs.empty());
    auto txn = store.Txn({Op::Check(key, Condition::VersionIs(2)),
                          Op::Put(key + "-2", "x", Condition::CreateOnly())});
    ASSERT_TRUE(txn.ok()) << txn.status();
    EXPECT_TRUE(store.Delete(key + "-2").ok());
    auto deleted = store.Delete(key, Condition::ModRevisionIs(got->mod_revision));
    EXPECT_TRUE(deleted.ok()) << deleted.status();
  }

  // Reading works, writing is denied with the key named.
  static void ExpectReadOnly(Store& store, const std::string& prefix) {
    SCOPED_TRACE(prefix);
    auto listed = store.List(prefix);
    EXPECT_TRUE(listed.ok()) << listed.status();
    auto watch = store.Watch(prefix, 0);
    EXPECT_TRUE(watch.ok()) << watch.status();
    auto got = store.Get(prefix + "rbac-test");
    EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
    ExpectDenied(store.Put(prefix + "rbac-test", "x").status(), prefix + "rbac-test");
    ExpectDenied(store.Delete(prefix + "rbac-test").status(), prefix + "rbac-test");
  }

  // Neither reading nor writing.
  static void ExpectNoAccess(Store& store, const std::string& prefix) {
    SCOPED_TRACE(prefix);
    const std::string key = prefix + "rbac-test";
    ExpectDenied(store.List(prefix).status(), prefix);
    ExpectDenied(store.Get(key).status(), key);
    auto watch = store.Watch(prefix, 0);
    ExpectDenied(watch.status(), prefix);
    ExpectDenied(store.Put(key, "x").status(), key);
    ExpectDenied(store.Put(key, "x", {Condition::CreateOnly()}).status(), key);
    ExpectDenied(store.Delete(key).status(), key);
  }

  static void ExpectDenied(const absl::Status& status, const std::string& named) {
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), absl::StrCat("'", named, "'"))) << status;
  }

  static EtcdLauncher* etcd_;
};

EtcdLauncher* EtcdRbac::etcd_ = nullptr;

// The table of tools/etcd-rbac.sh, as each service uses it.
const std::map<std::string, std::vector<std::string>> kReadWrite = {
    {"ike-service", {"ike/", "child/", "pool/"}},
    {"auth-service", {"users/", "auth/failures/"}},
    {"mobility-service", {"ike/", "child/", "mobility/", "pool/"}},
    {"esp-forwarder", {"seq/"}},
};
const std::map<std::string, std::vector<std::string>> kReadOnly = {
    {"esp-forwarder", {"child/"}},
};
const std::vector<std::string> kAllPrefixes = {"ike/",   "child/", "pool/",          "users/",
                                               "auth/failures/", "mobility/", "seq/"};

TEST_F(EtcdRbac, EachServiceCanDoWhatItNeedsAndNothingElse) {
  for (const auto& [role, prefixes] : kReadWrite) {
    SCOPED_TRACE(role);
    auto store = As(role);
    ASSERT_NE(store, nullptr);
    for (const std::string& prefix : prefixes) ExpectReadWrite(*store, prefix);
    auto ro = kReadOnly.find(role);
    for (const std::string& prefix : kAllPrefixes) {
      bool rw = std::find(prefixes.begin(), prefixes.end(), prefix) != prefixes.end();
      bool read = ro != kReadOnly.end() &&
                  std::find(ro->second.begin(), ro->second.end(), prefix) != ro->second.end();
      if (read) {
        ExpectReadOnly(*store, prefix);
      } else if (!rw) {
        ExpectNoAccess(*store, prefix);
      }
    }
    // Nothing outside the table either.
    ExpectNoAccess(*store, "other/");
  }
}

TEST_F(EtcdRbac, NamedDenials) {
  auto forwarder = As("esp-forwarder");
  ASSERT_NE(forwarder, nullptr);
  auto ike = forwarder->Put("ike/0000000000000001-0000000000000002", "forged");
  EXPECT_EQ(ike.status().code(), absl::StatusCode::kPermissionDenied) << ike.status();
  EXPECT_TRUE(absl::StrContains(ike.status().message(), "ike/0000000000000001-0000000000000002"))
      << ike.status();
  EXPECT_EQ(forwarder->Put("users/alice", "x").status().code(),
            absl::StatusCode::kPermissionDenied);
  // A Txn names its keys: a denial may come from any of them.
  auto txn = forwarder->Txn({Op::Put("seq/00000001", "out=1 in=0"), Op::Put("child/00000001", "x")});
  EXPECT_EQ(txn.status().code(), absl::StatusCode::kPermissionDenied) << txn.status();
  EXPECT_TRUE(absl::StrContains(txn.status().message(), "'child/00000001'")) << txn.status();
  EXPECT_FALSE(forwarder->Get("seq/00000001").ok());  // the Txn wrote nothing

  auto mobility = As("mobility-service");
  ASSERT_NE(mobility, nullptr);
  auto users = mobility->List("users/");
  EXPECT_EQ(users.status().code(), absl::StatusCode::kPermissionDenied) << users.status();
  EXPECT_TRUE(absl::StrContains(users.status().message(), "prefix 'users/'")) << users.status();

  // A certificate from the services' CA whose CN is no etcd user.
  auto operator_store = As("operator");
  ASSERT_NE(operator_store, nullptr);
  EXPECT_FALSE(operator_store->Get("ike/x").ok());
}

TEST_F(EtcdRbac, ClientsWithoutAServiceCertificateAreRefused) {
  // Plain text.
  EtcdOptions plain;
  plain.endpoints = {etcd_->endpoint()};
  plain.op_timeout = absl::Seconds(1);
  auto anonymous = EtcdStore::Connect(plain);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_FALSE((*anonymous)->Get("ike/x").ok());
  EXPECT_FALSE((*anonymous)->Put("ike/x", "v").ok());

  // TLS without a client certificate: the handshake fails.
  std::ifstream in(Pki("ca.crt"));
  std::stringstream ca;
  ca << in.rdbuf();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.str();
  auto channel = grpc::CreateChannel(etcd_->endpoint(), grpc::SslCredentials(ssl));
  auto kv = etcdserverpb::KV::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  etcdserverpb::RangeRequest req;
  req.set_key("ike/x");
  etcdserverpb::RangeResponse resp;
  grpc::Status no_cert = kv->Range(&ctx, req, &resp);
  EXPECT_FALSE(no_cert.ok());
  EXPECT_NE(no_cert.error_code(), grpc::StatusCode::NOT_FOUND);

  // A certificate claiming ike-service from an unrelated CA.
  EtcdOptions foreign;
  foreign.endpoints = {etcd_->endpoint()};
  foreign.op_timeout = absl::Seconds(1);
  foreign.tls = {Pki("other-ca-ike-service.crt"), Pki("other-ca-ike-service.key"),
                 Pki("ca.crt")};
  auto impostor = EtcdStore::Connect(foreign);
  ASSERT_TRUE(impostor.ok()) << impostor.status();
  auto got = (*impostor)->Get("ike/x");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
  EXPECT_FALSE((*impostor)->Put("ike/x", "v").ok());

  // The real ike-service still gets through.
  auto ike = As("ike-service");
  ASSERT_NE(ike, nullptr);
  EXPECT_TRUE(ike->Put("ike/x", "v").ok());
}

}  // namespace
}  // namespace vpn::store
