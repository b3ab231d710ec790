// Starts each real service binary (and `gateway`) on free loopback ports and
// checks, over real sockets, what every service must serve: grpc.health.v1,
// server reflection, /metrics, JSON logs, and a clean exit on SIGTERM.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fs/read_file.h"
#include "common/rpc/credentials.h"
#include "common/rpc/probes.h"
#include "common/testing/child_process.h"
#include "proto/vpn/v1/auth.grpc.pb.h"
#include "proto/vpn/v1/management.grpc.pb.h"

namespace vpn {
namespace {

using ::testing::Contains;
using ::testing::Not;
using ::testing::HasSubstr;
using testing::ChildProcess;
using testing::RunfilePath;

int IntField(const std::string& line, const std::string& key) {
  std::smatch match;
  if (!std::regex_search(line, match, std::regex("\"" + key + "\":([0-9]+)"))) {
    return -1;
  }
  return std::stoi(match[1]);
}

std::string WriteFile(const std::string& dir, const std::string& name,
                      const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// Every line a service writes is one JSON object.
void ExpectJsonLines(const std::string& output) {
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    EXPECT_TRUE(line.front() == '{' && line.back() == '}') << line;
  }
}

struct ServiceBinary {
  const char* name;
  const char* path;
  const char* config;        // YAML that keeps the test off privileged ports
  const char* api_service;   // a service the binary must list, or ""
};

constexpr char kLoopbackForwarder[] =
    "ike_listen: \"127.0.0.1:0\"\nnatt_listen: \"127.0.0.1:0\"\n";

class ServiceSmokeTest : public ::testing::TestWithParam<ServiceBinary> {};

TEST_P(ServiceSmokeTest, ServesHealthReflectionAndMetricsThenStopsOnSigterm) {
  const ServiceBinary& service = GetParam();
  const std::string config =
      WriteFile(testing::MakeTempDir("config"), "service.yaml", service.config);
  auto child = ChildProcess::Start({RunfilePath(service.path), "--config=" + config,
                                    "--grpc_listen=127.0.0.1:0",
                                    "--metrics_listen=127.0.0.1:0"});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<std::string> serving =
      (*child)->WaitForLine("\"msg\":\"serving\"", absl::Seconds(20));
  ASSERT_TRUE(serving.ok()) << serving.status();
  const int grpc_port = IntField(*serving, "grpc_port");
  const int metrics_port = IntField(*serving, "metrics_port");
  ASSERT_GT(grpc_port, 0) << *serving;
  ASSERT_GT(metrics_port, 0) << *serving;

  auto channel = rpc::MakeChannel(absl::StrCat("127.0.0.1:", grpc_port), {});
  ASSERT_TRUE(channel.ok());
  absl::StatusOr<std::string> health = rpc::CheckHealth(*channel);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");

  absl::StatusOr<std::vector<std::string>> services = rpc::ListServices(*channel);
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("grpc.health.v1.Health"));
  EXPECT_THAT(*services, Contains("grpc.reflection.v1alpha.ServerReflection"));
  if (*service.api_service != '\0') {
    EXPECT_THAT(*services, Contains(service.api_service));
  }

  absl::StatusOr<std::string> metrics = rpc::FetchMetrics("127.0.0.1", metrics_port);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  std::string build_info = absl::StrCat(service.name, "_build_info{");
  std::replace(build_info.begin(), build_info.end(), '-', '_');
  EXPECT_THAT(*metrics, HasSubstr(build_info));
  EXPECT_THAT(*metrics, HasSubstr("grpc_method=\"Check\""));
  EXPECT_THAT(*metrics, HasSubstr("grpc_server_handling_seconds_bucket"));

  (*child)->Signal(SIGTERM);
  absl::StatusOr<int> exit_code = (*child)->Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, 0) << (*child)->output();
  EXPECT_THAT((*child)->output(), HasSubstr("\"msg\":\"stopped\""));
  ExpectJsonLines((*child)->output());
}

// A bad config gives one clear line naming the field, and exit code 2.
void ExpectConfigRejected(const std::string& binary, const std::string& yaml,
                          const std::string& field) {
  const std::string dir = testing::MakeTempDir("config");
  const std::string path = WriteFile(dir, "bad.yaml", yaml);
  auto child = ChildProcess::Start({binary, "--config=" + path});
  ASSERT_TRUE(child.ok());
  absl::StatusOr<int> exit_code = (*child)->Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 2) << (*child)->output();
  const std::string output = (*child)->output();
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
  EXPECT_THAT(output, HasSubstr("'" + field + "'"));
  ExpectJsonLines(output);
}

TEST_P(ServiceSmokeTest, RejectsBadListenAddressNamingTheField) {
  ExpectConfigRejected(RunfilePath(GetParam().path),
                       "server:\n  grpc_listen: no-port-here\n",
                       "server.grpc_listen");
}

TEST_P(ServiceSmokeTest, RejectsUnknownFieldNamingIt) {
  ExpectConfigRejected(RunfilePath(GetParam().path),
                       "server:\n  grpc_listen: \"127.0.0.1:0\"\nservre: {}\n",
                       "servre");
}

TEST_P(ServiceSmokeTest, RejectsIncompleteTlsNamingTheMissingFile) {
  ExpectConfigRejected(RunfilePath(GetParam().path),
                       "server:\n  tls:\n    cert_file: /etc/hostname\n",
                       "server.tls.key_file");
}

INSTANTIATE_TEST_SUITE_P(
    AllServices, ServiceSmokeTest,
    ::testing::Values(
        ServiceBinary{"ike-service", "ike-service/ike-service", "", "vpn.v1.Management"},
        ServiceBinary{"auth-service", "auth-service/auth-service", "", "vpn.v1.Auth"},
        ServiceBinary{"mobility-service", "mobility-service/mobility-service", "",
                      "vpn.v1.Mobility"},
        ServiceBinary{"esp-forwarder", "esp-forwarder/esp-forwarder",
                      kLoopbackForwarder, "vpn.v1.IkeTransport"}),
    [](const ::testing::TestParamInfo<ServiceBinary>& info) {
      std::string name = info.param.name;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST(ServiceSmokeTest, RejectsServiceSpecificFieldNamingIt) {
  ExpectConfigRejected(RunfilePath("mobility-service/mobility-service"),
                       "outage_window: forever\n", "outage_window");
  ExpectConfigRejected(RunfilePath("ike-service/ike-service"),
                       "forwarders: [\"fwd:4500\", \"nope\"]\n", "forwarders[1]");
}

// Mutual TLS: a client with a certificate from the CA gets through; one
// without a client certificate does not.
TEST(ServiceSmokeTest, MutualTlsRequiresAClientCertificate) {
  const std::string dir = testing::MakeTempDir("mtls");
  const std::string make_certs = absl::StrCat(
      "set -e; cd ", dir, "; exec 2>openssl.log;",
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca;",
      "for who in server client; do "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout $who.key -out $who.csr -subj /CN=$who;"
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > $who.ext;"
      "openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-days 1 -out $who.pem -extfile $who.ext; done");
  ASSERT_EQ(testing::RunCommand(make_certs), 0) << "see " << dir << "/openssl.log";
  const std::string config = WriteFile(
      dir, "auth.yaml",
      absl::StrCat("server:\n  grpc_listen: \"127.0.0.1:0\"\n  tls:\n",
                   "    cert_file: ", dir, "/server.pem\n",
                   "    key_file: ", dir, "/server.key\n",
                   "    ca_file: ", dir, "/ca.pem\n"));
  auto child = ChildProcess::Start({RunfilePath("auth-service/auth-service"),
                                    "--config=" + config, "--metrics_listen=127.0.0.1:0"});
  ASSERT_TRUE(child.ok());
  absl::StatusOr<std::string> serving =
      (*child)->WaitForLine("\"msg\":\"serving\"", absl::Seconds(20));
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_THAT(*serving, HasSubstr("\"mtls\":true"));
  const std::string target = absl::StrCat("localhost:", IntField(*serving, "grpc_port"));

  auto with_cert = rpc::MakeChannel(
      target, {dir + "/client.pem", dir + "/client.key", dir + "/ca.pem"});
  ASSERT_TRUE(with_cert.ok());
  absl::StatusOr<std::string> health = rpc::CheckHealth(*with_cert);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");

  auto plaintext = rpc::MakeChannel(target, {});
  ASSERT_TRUE(plaintext.ok());
  EXPECT_FALSE(rpc::CheckHealth(*plaintext, "", absl::Seconds(2)).ok());

  grpc::SslCredentialsOptions no_client_cert;
  no_client_cert.pem_root_certs = *fs::ReadFile(dir + "/ca.pem");
  auto tls_only = grpc::CreateChannel(target, grpc::SslCredentials(no_client_cert));
  EXPECT_FALSE(rpc::CheckHealth(tls_only, "", absl::Seconds(2)).ok());

  (*child)->Signal(SIGTERM);
  absl::StatusOr<int> exit_code = (*child)->Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
}

// `gateway` runs the four services in one process with one /metrics, and
// serves only the operator's API, on a Unix socket only its owner can open.
TEST(GatewaySmokeTest, RunsAllFourServicesAndStopsOnSigterm) {
  const std::string dir = testing::MakeTempDir("gateway");
  // sun_path holds 108 bytes; the test's temporary directory is longer.
  char socket_dir[] = "/tmp/vpn-gw-XXXXXX";
  ASSERT_NE(::mkdtemp(socket_dir), nullptr);
  const std::string socket = std::string(socket_dir) + "/run/gateway.sock";
  const std::string config = WriteFile(
      dir, "gateway.yaml",
      absl::StrCat("metrics_listen: \"127.0.0.1:0\"\n"
                   "server: {grpc_listen: \"unix:", socket, "\"}\n"
                   "esp_forwarder: {ike_listen: \"127.0.0.1:0\", natt_listen: \"127.0.0.1:0\"}\n"));
  auto child = ChildProcess::Start({RunfilePath("gateway/gateway"), "--config=" + config});
  ASSERT_TRUE(child.ok());
  absl::StatusOr<std::string> up =
      (*child)->WaitForLine("\"msg\":\"gateway up\"", absl::Seconds(20));
  ASSERT_TRUE(up.ok()) << up.status();
  const std::string output = (*child)->output();
  // One gRPC server: no component serves its internal API.
  EXPECT_EQ(output.find("\"msg\":\"serving\""), output.rfind("\"msg\":\"serving\"")) << output;
  EXPECT_THAT(output, HasSubstr(absl::StrCat("\"grpc_listen\":\"unix:", socket, "\"")));
  struct stat st;
  ASSERT_EQ(::stat(socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  auto channel = rpc::MakeChannel("unix:" + socket, {});
  ASSERT_TRUE(channel.ok());
  absl::StatusOr<std::string> health = rpc::CheckHealth(*channel);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");
  {
    grpc::ClientContext context;
    v1::ListSasReply reply;
    EXPECT_TRUE(v1::Management::NewStub(*channel)->ListSas(&context, {}, &reply).ok());
  }
  {
    // The operator role may manage users but not sign.
    grpc::ClientContext context;
    v1::SignReply reply;
    EXPECT_EQ(v1::Auth::NewStub(*channel)->Sign(&context, {}, &reply).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::ClientContext list_context;
    v1::ListUsersReply users;
    EXPECT_TRUE(v1::Auth::NewStub(*channel)->ListUsers(&list_context, {}, &users).ok());
  }
  absl::StatusOr<std::vector<std::string>> services = rpc::ListServices(*channel);
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Not(Contains("vpn.v1.IkeTransport")));
  EXPECT_THAT(*services, Not(Contains("vpn.v1.Mobility")));

  absl::StatusOr<std::string> metrics =
      rpc::FetchMetrics("127.0.0.1", IntField(*up, "metrics_port"));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const char* gauge : {"ike_service_build_info", "auth_service_build_info",
                            "mobility_service_build_info",
                            "esp_forwarder_build_info"}) {
    EXPECT_THAT(*metrics, HasSubstr(gauge));
  }
  (*child)->Signal(SIGTERM);
  absl::StatusOr<int> exit_code = (*child)->Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << (*child)->output();
  ExpectJsonLines((*child)->output());
}

// With server.tls the operator's API is mTLS: the gateway certificate names
// the roles vpnctl checks, and only the operator role may manage.
TEST(GatewaySmokeTest, OperatorApiOverMutualTls) {
  const std::string dir = testing::MakeTempDir("gateway-tls");
  ASSERT_EQ(testing::RunCommand(RunfilePath("tools/service-pki.sh") + " " + dir + "/pki"), 0);
  const std::string pki = dir + "/pki";
  const std::string config = WriteFile(
      dir, "gateway.yaml",
      absl::StrCat("metrics_listen: \"127.0.0.1:0\"\n"
                   "server:\n  grpc_listen: \"127.0.0.1:0\"\n"
                   "  tls: {cert_file: ", pki, "/gateway.crt, key_file: ", pki,
                   "/gateway.key, ca_file: ", pki, "/ca.crt}\n"
                   "esp_forwarder: {ike_listen: \"127.0.0.1:0\", natt_listen: \"127.0.0.1:0\"}\n"));
  auto child = ChildProcess::Start({RunfilePath("gateway/gateway"), "--config=" + config});
  ASSERT_TRUE(child.ok());
  absl::StatusOr<std::string> serving =
      (*child)->WaitForLine("\"msg\":\"serving\"", absl::Seconds(20));
  ASSERT_TRUE(serving.ok()) << serving.status();
  const std::string target = absl::StrCat("127.0.0.1:", IntField(*serving, "grpc_port"));
  auto as = [&](const std::string& role) {
    auto channel = rpc::MakeChannel(
        target, {pki + "/" + role + ".crt", pki + "/" + role + ".key", pki + "/ca.crt"},
        "ike-service");
    EXPECT_TRUE(channel.ok());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListSasReply reply;
    return v1::Management::NewStub(*channel)->ListSas(&context, {}, &reply).error_code();
  };
  EXPECT_EQ(as("operator"), grpc::StatusCode::OK);
  EXPECT_EQ(as("esp-forwarder"), grpc::StatusCode::PERMISSION_DENIED);
  (*child)->Signal(SIGTERM);
  absl::StatusOr<int> exit_code = (*child)->Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << (*child)->output();
}

// Plaintext off this host needs an explicit insecure_plaintext.
TEST(GatewaySmokeTest, RefusesPlaintextOffLoopback) {
  ExpectConfigRejected(RunfilePath("gateway/gateway"),
                       "server: {grpc_listen: \"0.0.0.0:50051\"}\n", "server.tls");
  ExpectConfigRejected(RunfilePath("ike-service/ike-service"),
                       "server: {grpc_listen: \"0.0.0.0:50051\"}\n", "server.tls");
}

TEST(GatewaySmokeTest, RejectsBadSectionFieldNamingIt) {
  ExpectConfigRejected(RunfilePath("gateway/gateway"),
                       "esp_forwarder:\n  natt_listen: \"0.0.0.0:99999\"\n",
                       "esp_forwarder.natt_listen");
}

}  // namespace
}  // namespace vpn
