// The store fields of a service's config: store, store_tls, store_key_file.
#include "common/store/store_handle.h"

#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vpn::store {
namespace {

// Three readable files standing in for a certificate, key and CA.
std::string TlsYaml(const std::string& dir, bool with_key = true) {
  for (const char* name : {"c.crt", "c.key", "ca.crt"}) {
    std::ofstream(absl::StrCat(dir, "/", name)) << "pem";
  }
  return absl::StrCat("store_tls:\n  cert_file: ", dir, "/c.crt\n",
                      with_key ? absl::StrCat("  key_file: ", dir, "/c.key\n") : "",
                      "  ca_file: ", dir, "/ca.crt\n");
}

absl::Status Read(const std::string& yaml, StoreConfig* config) {
  auto reader = config::ConfigReader::FromString(yaml);
  if (!reader.ok()) return reader.status();
  ReadStoreConfig(*reader, config);
  return reader->Finish();
}

TEST(ReadStoreConfig, ReadsStoreTlsForEtcd) {
  const std::string dir = getenv("TEST_TMPDIR");
  StoreConfig config;
  absl::Status st = Read("store: etcd:127.0.0.1:2379\n" + TlsYaml(dir), &config);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(config.store, "etcd:127.0.0.1:2379");
  EXPECT_TRUE(config.tls.enabled());
  EXPECT_EQ(config.tls.cert_file, dir + "/c.crt");
  EXPECT_EQ(config.tls.key_file, dir + "/c.key");
  EXPECT_EQ(config.tls.ca_file, dir + "/ca.crt");
}

TEST(ReadStoreConfig, ErrorsNameTheField) {
  const std::string dir = getenv("TEST_TMPDIR");
  StoreConfig config;
  absl::Status half = Read("store: etcd:127.0.0.1:2379\n" + TlsYaml(dir, false), &config);
  EXPECT_TRUE(absl::StrContains(half.message(), "store_tls.key_file")) << half;

  StoreConfig embedded;
  absl::Status wrong = Read("store: embedded:/tmp/x\n" + TlsYaml(dir), &embedded);
  EXPECT_TRUE(absl::StrContains(wrong.message(), "'store_tls'")) << wrong;
  EXPECT_TRUE(absl::StrContains(wrong.message(), "etcd")) << wrong;

  StoreConfig missing;
  absl::Status unreadable = Read(
      "store: etcd:127.0.0.1:2379\nstore_tls:\n  cert_file: /nonexistent.crt\n"
      "  key_file: /nonexistent.key\n  ca_file: /nonexistent-ca.crt\n",
      &missing);
  EXPECT_TRUE(absl::StrContains(unreadable.message(), "store_tls.cert_file")) << unreadable;
}

}  // namespace
}  // namespace vpn::store
