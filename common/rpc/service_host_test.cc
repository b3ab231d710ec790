// ServiceHost's authorization hook over real sockets: certificates from
// tools/service-pki.sh, a Unix socket, loopback plaintext and
// insecure_plaintext.
#include "common/rpc/service_host.h"

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/rpc/credentials.h"
#include "common/testing/child_process.h"
#include "proto/grpc/health/v1/health.grpc.pb.h"
#include "proto/vpn/v1/forwarder.grpc.pb.h"

namespace vpn::rpc {
namespace {

using ::testing::HasSubstr;

// Counters is the operator's (and ike-service's); InstallSa ike-service's.
class FakeForwarder final : public v1::Forwarder::Service {
 public:
  grpc::Status Counters(grpc::ServerContext*, const v1::CountersRequest*,
                        v1::CountersReply*) override {
    ++calls;
    return grpc::Status::OK;
  }
  grpc::Status InstallSa(grpc::ServerContext*, const v1::InstallSaRequest*,
                         v1::InstallSaReply*) override {
    ++calls;
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

// common/rpc:probes' CheckHealth brings its own reflection descriptors, which
// clash with the server's in one binary; the health stub alone does not.
grpc::Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckResponse reply;
  return grpc::health::v1::Health::NewStub(channel)->Check(&context, {}, &reply);
}

class ServiceHostTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new std::string(testing::MakeTempDir("pki"));
    ASSERT_EQ(testing::RunCommand(absl::StrCat(testing::RunfilePath("tools/service-pki.sh"),
                                               " ", *pki_)),
              0);
  }
  static TlsFiles Files(const std::string& name) {
    return {*pki_ + "/" + name + ".crt", *pki_ + "/" + name + ".key", *pki_ + "/ca.crt"};
  }

  void Start(ServerOptions options) {
    auto metrics = MetricsEndpoint::Start("");
    ASSERT_TRUE(metrics.ok());
    metrics_ = std::move(*metrics);
    auto host = ServiceHost::Start("test-service", options, {&forwarder_}, *metrics_);
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    target_ = absl::StrCat("127.0.0.1:", host_->port());
  }

  grpc::Status CallCounters(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::CountersReply reply;
    return v1::Forwarder::NewStub(channel)->Counters(&context, {}, &reply);
  }
  grpc::Status CallInstall(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::InstallSaReply reply;
    return v1::Forwarder::NewStub(channel)->InstallSa(&context, {}, &reply);
  }
  // The server holds esp-forwarder's certificate.
  std::shared_ptr<grpc::Channel> Channel(const std::string& role,
                                         const std::string& server = "esp-forwarder") {
    auto channel = MakeChannel(target_, role.empty() ? TlsFiles{} : Files(role), server);
    EXPECT_TRUE(channel.ok());
    return *channel;
  }
  double Denied(const std::string& method, const std::string& caller) {
    for (const auto& family : metrics_->registry().Collect()) {
      if (family.name != "grpc_server_denied_total") continue;
      for (const auto& metric : family.metric) {
        std::map<std::string, std::string> labels;
        for (const auto& label : metric.label) labels[label.name] = label.value;
        if (labels["method"] == method && labels["caller"] == caller) return metric.counter.value;
      }
    }
    return 0;
  }
  ServerOptions MutualTls() {
    ServerOptions options;
    options.grpc_listen = "127.0.0.1:0";
    options.tls = Files("esp-forwarder");
    return options;
  }

  static std::string* pki_;
  FakeForwarder forwarder_;
  std::unique_ptr<MetricsEndpoint> metrics_;
  std::unique_ptr<ServiceHost> host_;
  std::string target_;
};
std::string* ServiceHostTest::pki_ = nullptr;

TEST_F(ServiceHostTest, MutualTlsGrantsByRole) {
  Start(MutualTls());
  EXPECT_TRUE(CallCounters(Channel("operator")).ok());
  EXPECT_TRUE(CallInstall(Channel("ike-service")).ok());
  EXPECT_EQ(forwarder_.calls, 2);

  grpc::Status wrong_role = CallInstall(Channel("operator"));
  EXPECT_EQ(wrong_role.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(wrong_role.error_message(), HasSubstr("/vpn.v1.Forwarder/InstallSa"));
  EXPECT_EQ(CallCounters(Channel("mobility-service")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(forwarder_.calls, 2) << "a denied call must not reach the handler";
  EXPECT_EQ(Denied("/vpn.v1.Forwarder/InstallSa", "operator"), 1);
  EXPECT_EQ(Denied("/vpn.v1.Forwarder/Counters", "mobility-service"), 1);
}

TEST_F(ServiceHostTest, MutualTlsRefusesNoCertificateAndAForeignCa) {
  Start(MutualTls());
  EXPECT_FALSE(CallCounters(Channel("")).ok());
  auto foreign = MakeChannel(target_,
                             {*pki_ + "/other-ca-ike-service.crt",
                              *pki_ + "/other-ca-ike-service.key", *pki_ + "/ca.crt"},
                             "esp-forwarder");
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(CallInstall(*foreign).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(forwarder_.calls, 0);
}

TEST_F(ServiceHostTest, ClientChecksTheServerRole) {
  Start(MutualTls());
  EXPECT_TRUE(CallCounters(Channel("operator", "esp-forwarder")).ok());
  // The server holds the esp-forwarder certificate, not auth-service's.
  EXPECT_EQ(CallCounters(Channel("operator", "auth-service")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ServiceHostTest, LoopbackPlaintextAnswersOnlyHealth) {
  ServerOptions options;
  options.grpc_listen = "127.0.0.1:0";
  Start(options);
  grpc::Status health = CheckHealth(Channel(""));
  ASSERT_TRUE(health.ok()) << health.error_message();
  EXPECT_EQ(CallCounters(Channel("")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Denied("/vpn.v1.Forwarder/Counters", "unauthenticated"), 1);
}

TEST_F(ServiceHostTest, InsecurePlaintextTrustsEveryCaller) {
  ServerOptions options;
  options.grpc_listen = "127.0.0.1:0";
  options.insecure_plaintext = true;
  Start(options);
  EXPECT_TRUE(CallCounters(Channel("")).ok());
  EXPECT_TRUE(CallInstall(Channel("")).ok());
}

TEST_F(ServiceHostTest, UnixSocketIsTheOwnersAndGrantsTheOperatorRole) {
  // sun_path holds 108 bytes; the test's temporary directory is longer.
  char dir[] = "/tmp/vpn-sock-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/run/management.sock";
  ServerOptions options;
  options.grpc_listen = "unix:" + path;
  Start(options);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600);
  target_ = "unix:" + path;
  EXPECT_TRUE(CallCounters(Channel("")).ok());
  EXPECT_EQ(CallInstall(Channel("")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Denied("/vpn.v1.Forwarder/InstallSa", "plaintext"), 1);
}

// The kubelet's probes carry no certificate: a plaintext port answers
// health checks and nothing else, beside the mTLS one.
TEST_F(ServiceHostTest, HealthPortServesOnlyHealth) {
  ServerOptions options = MutualTls();
  options.health_listen = "127.0.0.1:0";
  Start(options);
  ASSERT_GT(host_->health_port(), 0);
  auto probe = MakeChannel(absl::StrCat("127.0.0.1:", host_->health_port()), {});
  ASSERT_TRUE(probe.ok());
  EXPECT_TRUE(CheckHealth(*probe).ok());
  EXPECT_EQ(CallCounters(*probe).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(forwarder_.calls, 0);
  EXPECT_FALSE(CheckHealth(Channel("")).ok()) << "the mTLS port still wants a certificate";
}

TEST(TransportSecurityTest, PlaintextOnlyOnThisHost) {
  ServerOptions options;
  for (const char* local : {"127.0.0.1:1", "127.1.2.3:1", "[::1]:1", "localhost:1",
                            "unix:/run/x.sock"}) {
    options.grpc_listen = local;
    EXPECT_TRUE(CheckTransportSecurity(options, "server.tls").ok()) << local;
  }
  for (const char* remote : {"0.0.0.0:50052", "[::]:1", "10.0.0.1:1", "auth-service:1"}) {
    options.grpc_listen = remote;
    absl::Status status = CheckTransportSecurity(options, "server.tls");
    EXPECT_THAT(status.message(), HasSubstr("'server.tls'")) << remote;
    options.insecure_plaintext = true;
    EXPECT_TRUE(CheckTransportSecurity(options, "server.tls").ok()) << remote;
    options.insecure_plaintext = false;
    options.tls.cert_file = "x";
    EXPECT_TRUE(CheckTransportSecurity(options, "server.tls").ok()) << remote;
    options.tls = {};
  }
}

}  // namespace
}  // namespace vpn::rpc
