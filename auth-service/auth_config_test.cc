// ReadAuthServiceConfig: defaults, and one clear error naming the field for
// each kind of bad value.
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "auth-service/auth_component.h"
#include "auth-service/testing/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vpn::auth {
namespace {

using ::testing::HasSubstr;

absl::Status Read(const std::string& yaml, AuthServiceConfig* config) {
  auto reader = config::ConfigReader::FromString(yaml);
  if (!reader.ok()) return reader.status();
  ReadAuthServiceConfig(*reader, config);
  return reader->Finish();
}

void ExpectRejected(const std::string& yaml, const std::string& field,
                    const std::string& problem = "") {
  AuthServiceConfig config;
  absl::Status status = Read(yaml, &config);
  EXPECT_FALSE(status.ok()) << yaml;
  EXPECT_THAT(std::string(status.message()), HasSubstr("'" + field + "'"))
      << yaml;
  EXPECT_THAT(std::string(status.message()), HasSubstr(problem)) << yaml;
}

class AuthConfigTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pki = testing::MakeTestPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new std::string(*pki);
    const std::string key = *pki_ + "/credentials.key";
    testing::WriteFile(key, std::string(32, 'k'));
    chmod(key.c_str(), 0600);
    const std::string users = *pki_ + "/users.yaml";
    testing::WriteFile(
        users, "users:\n  - {name: User, nt_hash: "
               "44EBBA8D5312B8D611474411F56989AE}\n");
    chmod(users.c_str(), 0600);
  }
  static std::string P(const std::string& f) { return *pki_ + "/" + f; }
  static std::string* pki_;
};

std::string* AuthConfigTest::pki_ = nullptr;

TEST_F(AuthConfigTest, EmptyConfigHasDefaults) {
  AuthServiceConfig config;
  ASSERT_TRUE(Read("", &config).ok());
  EXPECT_EQ(config.store, "");
  EXPECT_EQ(config.eap_session_ttl, absl::Seconds(60));
  EXPECT_EQ(config.eap_max_sessions, 10000u);
  EXPECT_EQ(config.eap_retries, 0u);
  EXPECT_FALSE(config.eap_failure_request);
  EXPECT_EQ(config.max_failures_per_user, 5u);
  EXPECT_EQ(config.max_failures_per_address, 20u);
  EXPECT_EQ(config.failure_window, absl::Minutes(15));
  EXPECT_EQ(config.lockout, absl::Minutes(15));
  EXPECT_EQ(config.failure_tracking_limit, 100000u);
  EXPECT_EQ(config.users_file, "");
}

TEST_F(AuthConfigTest, FullConfigIsAccepted) {
  AuthServiceConfig config;
  const std::string yaml = absl::StrCat(
      "data_dir: ", P("data"), "\n",
      "credentials_key_file: ", P("credentials.key"), "\n",
      "gateway_cert_file: ", P("gateway_rsa_chain.pem"), "\n",
      "gateway_key_file: ", P("gateway_rsa.key"), "\n",
      "ca_file: ", P("ca.pem"), "\n",
      "crl_files: [", P("crl.pem"), "]\n",
      "eap_session_ttl: 2m\neap_max_sessions: 50\neap_retries: 2\n"
      "eap_failure_request: true\n"
      "max_failures_per_user: 3\nmax_failures_per_address: 0\n"
      "failure_window: 5m\nlockout: 1h\nfailure_tracking_limit: 5000\n"
      "users_file: ", P("users.yaml"), "\n");
  absl::Status status = Read(yaml, &config);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(config.eap_session_ttl, absl::Minutes(2));
  EXPECT_EQ(config.crl_files.size(), 1u);
  EXPECT_TRUE(config.eap_failure_request);
  EXPECT_EQ(config.max_failures_per_user, 3u);
  EXPECT_EQ(config.max_failures_per_address, 0u);
  EXPECT_EQ(config.failure_window, absl::Minutes(5));
  EXPECT_EQ(config.lockout, absl::Hours(1));
  EXPECT_EQ(config.failure_tracking_limit, 5000u);
  EXPECT_EQ(config.users_file, P("users.yaml"));
}

TEST_F(AuthConfigTest, RejectsBadValuesNamingTheField) {
  ExpectRejected("store: redis:foo\n", "store", "embedded:");
  ExpectRejected(absl::StrCat("store: embedded:/x\ndata_dir: /y\ncredentials_key_file: ",
                              P("credentials.key"), "\n"),
                 "data_dir", "not both");
  ExpectRejected("data_dir: /var/lib/x\n", "credentials_key_file", "required");
  ExpectRejected("credentials_key_file: /nonexistent\n", "credentials_key_file");
  ExpectRejected(absl::StrCat("gateway_cert_file: ", P("gateway_rsa.pem"), "\n"),
                 "gateway_key_file", "go together");
  ExpectRejected(absl::StrCat("gateway_cert_file: ", P("gateway_rsa.pem"),
                              "\ngateway_key_file: ", P("gateway_ec.key"), "\n"),
                 "gateway_key_file", "does not match");
  ExpectRejected(absl::StrCat("gateway_cert_file: ", P("gateway_rsa.key"),
                              "\ngateway_key_file: ", P("gateway_rsa.key"), "\n"),
                 "gateway_cert_file");
  ExpectRejected("crl_files: [/etc/hostname]\n", "crl_files", "needs ca_file");
  ExpectRejected("ca_file: /etc/hostname\n", "ca_file");
  ExpectRejected(absl::StrCat("ca_file: ", P("ca.pem"), "\ncrl_files: [",
                              P("ca.pem"), "]\n"),
                 "crl_files");
  ExpectRejected("eap_session_ttl: 1s\n", "eap_session_ttl", "between");
  ExpectRejected("eap_retries: 9\n", "eap_retries");
  ExpectRejected("eap_max_sessions: 0\n", "eap_max_sessions");
  ExpectRejected("eap_failure_request: maybe\n", "eap_failure_request");
  ExpectRejected("max_failures_per_user: -1\n", "max_failures_per_user");
  ExpectRejected("max_failures_per_address: lots\n", "max_failures_per_address");
  ExpectRejected("failure_window: 0s\n", "failure_window", "between");
  ExpectRejected("lockout: 48h\n", "lockout", "between");
  ExpectRejected("failure_tracking_limit: 10\n", "failure_tracking_limit");
  ExpectRejected("users_file: /nonexistent/users.yaml\n", "users_file",
                 "/nonexistent/users.yaml");
}

TEST_F(AuthConfigTest, RejectsBadUsersFilesNamingFieldAndLine) {
  const std::string dir = testing::MakeTempDir("users");
  const std::string path = dir + "/users.yaml";
  testing::WriteFile(path, "users:\n  - name: alice\n    password: hunter2\n");
  chmod(path.c_str(), 0600);
  ExpectRejected(absl::StrCat("users_file: ", path, "\n"), "users_file",
                 "line 3: users[0].password: plaintext passwords are not "
                 "accepted");
  testing::WriteFile(path, "users:\n  - {name: alice, nt_hash: 1234}\n");
  ExpectRejected(absl::StrCat("users_file: ", path, "\n"), "users_file",
                 "line 2: users[0].nt_hash: must be 32 hex digits");
  testing::WriteFile(path, "users: []\n");
  chmod(path.c_str(), 0644);
  ExpectRejected(absl::StrCat("users_file: ", path, "\n"), "users_file",
                 "mode 0644 is looser than 0600");
}

TEST_F(AuthConfigTest, RefusesKeyFilesLooserThan0600) {
  const std::string dir = testing::MakeTempDir("loose");
  const std::string key = dir + "/gateway.key";
  testing::WriteFile(key, testing::ReadFile(P("gateway_ec.key")));
  chmod(key.c_str(), 0644);
  ExpectRejected(absl::StrCat("gateway_cert_file: ", P("gateway_ec.pem"),
                              "\ngateway_key_file: ", key, "\n"),
                 "gateway_key_file", "mode 0644 is looser than 0600");
  const std::string creds = dir + "/credentials.key";
  testing::WriteFile(creds, std::string(32, 'k'));
  chmod(creds.c_str(), 0660);  // the group may write it
  ExpectRejected(absl::StrCat("credentials_key_file: ", creds, "\n"),
                 "credentials_key_file", "looser than 0600");
  chmod(creds.c_str(), 0600);
  testing::WriteFile(creds, std::string(31, 'k'));
  ExpectRejected(absl::StrCat("credentials_key_file: ", creds, "\n"),
                 "credentials_key_file");
}

// In a gateway config the errors carry the section.
TEST_F(AuthConfigTest, SectionIsPartOfTheName) {
  auto reader = config::ConfigReader::FromString(
      "auth_service:\n  eap_retries: 99\n");
  ASSERT_TRUE(reader.ok());
  AuthServiceConfig config;
  reader->PushSection("auth_service");
  ReadAuthServiceConfig(*reader, &config);
  reader->PopSection();
  EXPECT_THAT(std::string(reader->Finish().message()),
              HasSubstr("'auth_service.eap_retries'"));
}

}  // namespace
}  // namespace vpn::auth
