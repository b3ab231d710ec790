// Runs the real esp-forwarder binary and real ike-service transport clients
// against real UDP sockets on loopback, with mutual TLS and one certificate
// per role (tools/service-pki.sh).
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/rpc/credentials.h"
#include "common/rpc/probes.h"
#include "common/testing/child_process.h"
#include "ike-service/transport/ike_transport_client.h"

namespace vpn::forwarder {
namespace {

using testing::ChildProcess;

// A 28-byte IKE header with the given SPIs, then `body`.
std::vector<uint8_t> IkeMessage(uint64_t initiator_spi, uint64_t responder_spi,
                                const std::string& body) {
  std::vector<uint8_t> message(28, 0);
  for (int k = 0; k < 8; ++k) {
    message[k] = static_cast<uint8_t>(initiator_spi >> (56 - 8 * k));
    message[8 + k] = static_cast<uint8_t>(responder_spi >> (56 - 8 * k));
  }
  message[17] = 0x20;  // version 2.0
  message[18] = 34;    // IKE_SA_INIT
  message.insert(message.end(), body.begin(), body.end());
  return message;
}

class ClientSocket {
 public:
  ClientSocket() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  }
  ~ClientSocket() { close(fd_); }

  void SendTo(uint16_t port, const std::vector<uint8_t>& data) {
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&address),
           sizeof(address));
  }

  // The next datagram and the port it came from; empty on timeout.
  std::vector<uint8_t> Receive(uint16_t* from_port, int timeout_ms = 3000) {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) != 1) return {};
    std::vector<uint8_t> buffer(65536);
    sockaddr_in from = {};
    socklen_t length = sizeof(from);
    ssize_t n = recvfrom(fd_, buffer.data(), buffer.size(), 0,
                         reinterpret_cast<sockaddr*>(&from), &length);
    *from_port = ntohs(from.sin_port);
    buffer.resize(n < 0 ? 0 : n);
    return buffer;
  }

 private:
  int fd_;
};

// What one fake ike-service replica received.
struct Inbox {
  absl::Mutex mu;
  std::vector<std::pair<size_t, v1::IkeDatagram>> datagrams ABSL_GUARDED_BY(mu);

  bool WaitFor(size_t count) {
    absl::MutexLock lock(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return datagrams.size() >= count;
    };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5));
  }
};

class IkeRelayIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new std::string(testing::MakeTempDir("pki"));
    ASSERT_EQ(testing::RunCommand(
                  absl::StrCat(testing::RunfilePath("tools/service-pki.sh"), " ", *pki_)),
              0);
  }
  static rpc::TlsFiles Files(const std::string& name) {
    return {*pki_ + "/" + name + ".crt", *pki_ + "/" + name + ".key", *pki_ + "/ca.crt"};
  }

  void SetUp() override { StartForwarder("127.0.0.1:0"); }

  void StartForwarder(const std::string& grpc_listen) {
    const std::string dir = testing::MakeTempDir("relay");
    const std::string config = dir + "/forwarder.yaml";
    const rpc::TlsFiles tls = Files("esp-forwarder");
    std::ofstream(config) << "server: {grpc_listen: \"" << grpc_listen << "\", "
                             "metrics_listen: \"127.0.0.1:0\",\n"
                             "  tls: {cert_file: " << tls.cert_file << ", key_file: "
                          << tls.key_file << ", ca_file: " << tls.ca_file << "}}\n"
                             "ike_listen: \"127.0.0.1:0\"\n"
                             "natt_listen: \"127.0.0.1:0\"\n";
    auto child = ChildProcess::Start(
        {testing::RunfilePath("esp-forwarder/esp-forwarder"), "--config=" + config});
    ASSERT_TRUE(child.ok());
    forwarder_ = std::move(*child);
    auto listening = forwarder_->WaitForLine("listening for IKE", absl::Seconds(20));
    ASSERT_TRUE(listening.ok()) << listening.status();
    std::smatch match;
    ASSERT_TRUE(std::regex_search(
        *listening, match,
        std::regex("\"ike\":\"127.0.0.1:([0-9]+)\",\"natt\":\"127.0.0.1:([0-9]+)\"")))
        << *listening;
    ike_port_ = std::stoi(match[1]);
    natt_port_ = std::stoi(match[2]);
    auto serving = forwarder_->WaitForLine("\"msg\":\"serving\"", absl::Seconds(20));
    ASSERT_TRUE(serving.ok()) << serving.status();
    ASSERT_TRUE(std::regex_search(*serving, match, std::regex("\"grpc_port\":([0-9]+)")));
    grpc_target_ = absl::StrCat("127.0.0.1:", match[1].str());
    ASSERT_TRUE(std::regex_search(*serving, match, std::regex("\"metrics_port\":([0-9]+)")));
    metrics_port_ = std::stoi(match[1]);
  }

  void TearDown() override { StopForwarder(); }

  void StopForwarder() {
    if (forwarder_ == nullptr) return;
    forwarder_->Signal(SIGTERM);
    auto exit_code = forwarder_->Wait(absl::Seconds(15));
    ASSERT_TRUE(exit_code.ok());
    EXPECT_EQ(*exit_code, 0) << forwarder_->output();
    forwarder_.reset();
  }

  std::unique_ptr<ike::IkeTransportClient> StartReplica(const std::string& name,
                                                        Inbox* inbox) {
    auto client = std::make_unique<ike::IkeTransportClient>(
        name, std::vector<std::string>{grpc_target_}, Files("ike-service"),
        [inbox](size_t forwarder, const v1::IkeDatagram& datagram) {
          absl::MutexLock lock(&inbox->mu);
          inbox->datagrams.emplace_back(forwarder, datagram);
        });
    client->Start();
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!client->AllConnected() && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_TRUE(client->AllConnected());
    // The forwarder registers the replica when it reads the hello.
    forwarder_->WaitForLine(absl::StrCat("\"replica\":\"", name, "\""),
                            absl::Seconds(5))
        .IgnoreError();
    return client;
  }

  // Opens a Relay stream as `role` and says hello as `name`; the stream's
  // status once the forwarder ends it (or OK while it stays open).
  grpc::Status Hello(const rpc::TlsFiles& tls, const std::string& name) {
    auto channel = rpc::MakeChannel(grpc_target_, tls, "esp-forwarder");
    EXPECT_TRUE(channel.ok());
    auto stub = v1::IkeTransport::NewStub(*channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    auto stream = stub->Relay(&context);
    v1::IkeTransportUp hello;
    hello.mutable_hello()->set_replica(name);
    stream->Write(hello);
    v1::IkeDatagram ignored;
    while (stream->Read(&ignored)) {
    }
    grpc::Status status = stream->Finish();
    return status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? grpc::Status::OK
                                                                       : status;
  }

  static std::string* pki_;
  std::unique_ptr<ChildProcess> forwarder_;
  uint16_t ike_port_ = 0;
  uint16_t natt_port_ = 0;
  int metrics_port_ = 0;
  std::string grpc_target_;
};

std::string* IkeRelayIntegrationTest::pki_ = nullptr;

TEST_F(IkeRelayIntegrationTest, RelaysBothWaysOnPort500And4500) {
  Inbox inbox;
  auto replica = StartReplica("ike-0", &inbox);
  ClientSocket client;

  const std::vector<uint8_t> init = IkeMessage(0x1122334455667788, 0, "hello");
  client.SendTo(ike_port_, init);
  ASSERT_TRUE(inbox.WaitFor(1));
  v1::IkeDatagram received;
  size_t forwarder = 0;
  {
    absl::MutexLock lock(&inbox.mu);
    std::tie(forwarder, received) = inbox.datagrams[0];
  }
  EXPECT_EQ(received.initiator_spi(), 0x1122334455667788u);
  EXPECT_EQ(received.responder_spi(), 0u);
  EXPECT_FALSE(received.udp_encapsulated());
  EXPECT_EQ(received.payload(), std::string(init.begin(), init.end()));
  EXPECT_EQ(received.local().port(), ike_port_);
  EXPECT_EQ(received.remote().ip(), std::string("\x7f\x00\x00\x01", 4));

  // The reply leaves from port 500's socket, to the client's address.
  v1::IkeDatagram reply;
  *reply.mutable_local() = received.local();
  *reply.mutable_remote() = received.remote();
  const std::vector<uint8_t> response = IkeMessage(0x1122334455667788, 0xaabb, "reply");
  reply.set_payload(std::string(response.begin(), response.end()));
  ASSERT_TRUE(replica->Send(forwarder, reply));
  uint16_t from_port = 0;
  EXPECT_EQ(client.Receive(&from_port), response);
  EXPECT_EQ(from_port, ike_port_);

  // On 4500, IKE carries the non-ESP marker, which the relay strips and adds.
  std::vector<uint8_t> framed = {0, 0, 0, 0};
  const std::vector<uint8_t> auth = IkeMessage(0x1122334455667788, 0xaabb, "auth");
  framed.insert(framed.end(), auth.begin(), auth.end());
  client.SendTo(natt_port_, {0xff});  // a NAT keepalive is not relayed
  client.SendTo(natt_port_, framed);
  ASSERT_TRUE(inbox.WaitFor(2));
  {
    absl::MutexLock lock(&inbox.mu);
    ASSERT_EQ(inbox.datagrams.size(), 2u);
    received = inbox.datagrams[1].second;
  }
  EXPECT_TRUE(received.udp_encapsulated());
  EXPECT_EQ(received.responder_spi(), 0xaabbu);
  EXPECT_EQ(received.payload(), std::string(auth.begin(), auth.end()));
  reply.set_udp_encapsulated(true);
  *reply.mutable_local() = received.local();
  ASSERT_TRUE(replica->Send(forwarder, reply));
  std::vector<uint8_t> expected = {0, 0, 0, 0};
  expected.insert(expected.end(), response.begin(), response.end());
  EXPECT_EQ(client.Receive(&from_port), expected);
  EXPECT_EQ(from_port, natt_port_);

  // Too short to be IKE, or ESP with no SA yet: dropped, not relayed.
  client.SendTo(ike_port_, {1, 2, 3});
  client.SendTo(natt_port_, {0, 0, 0, 1, 0, 0, 0, 1, 0xde, 0xad});
  absl::SleepFor(absl::Milliseconds(200));
  absl::MutexLock lock(&inbox.mu);
  EXPECT_EQ(inbox.datagrams.size(), 2u);
}

TEST_F(IkeRelayIntegrationTest, KeepsEachSaOnOneReplicaAndSpreadsNewOnes) {
  Inbox inbox_a, inbox_b;
  auto replica_a = StartReplica("ike-a", &inbox_a);
  auto replica_b = StartReplica("ike-b", &inbox_b);
  ClientSocket client;
  constexpr int kSas = 40;
  // Each SA's IKE_SA_INIT and a retransmit.
  for (int round = 0; round < 2; ++round) {
    for (uint64_t spi = 1; spi <= kSas; ++spi) {
      client.SendTo(ike_port_, IkeMessage(spi * 0x9e3779b97f4a7c15ull, 0, "x"));
    }
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (absl::Now() < give_up) {
    size_t total;
    {
      absl::MutexLock a(&inbox_a.mu);
      absl::MutexLock b(&inbox_b.mu);
      total = inbox_a.datagrams.size() + inbox_b.datagrams.size();
    }
    if (total >= 2 * kSas) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::MutexLock a(&inbox_a.mu);
  absl::MutexLock b(&inbox_b.mu);
  ASSERT_EQ(inbox_a.datagrams.size() + inbox_b.datagrams.size(), 2u * kSas);
  std::set<uint64_t> on_a, on_b;
  for (const auto& [f, d] : inbox_a.datagrams) on_a.insert(d.initiator_spi());
  for (const auto& [f, d] : inbox_b.datagrams) on_b.insert(d.initiator_spi());
  for (uint64_t spi : on_a) EXPECT_EQ(on_b.count(spi), 0u) << "SA on both replicas";
  EXPECT_GT(on_a.size(), 5u);
  EXPECT_GT(on_b.size(), 5u);
}

TEST_F(IkeRelayIntegrationTest, ReplicaReconnectsAfterForwarderRestart) {
  Inbox inbox;
  auto replica = StartReplica("ike-0", &inbox);
  const std::string grpc_listen = grpc_target_;
  StopForwarder();
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (replica->AllConnected() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(replica->AllConnected());

  StartForwarder(grpc_listen);  // same gRPC port, new UDP ports
  ASSERT_TRUE(forwarder_->WaitForLine("\"replica\":\"ike-0\"", absl::Seconds(10)).ok())
      << forwarder_->output();
  ClientSocket client;
  client.SendTo(ike_port_, IkeMessage(42, 0, "after restart"));
  ASSERT_TRUE(inbox.WaitFor(1));
  absl::MutexLock lock(&inbox.mu);
  EXPECT_EQ(inbox.datagrams[0].second.initiator_spi(), 42u);
}

// The relay takeover attack: a second hello for a live replica's name, from
// ike-service's certificate or any other, never replaces the first stream.
TEST_F(IkeRelayIntegrationTest, RefusesImpostorsAndASecondStreamForALiveReplica) {
  Inbox inbox;
  auto replica = StartReplica("ike-0", &inbox);

  EXPECT_EQ(Hello(Files("esp-forwarder"), "ike-0").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Hello(Files("operator"), "ike-0").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Hello(rpc::TlsFiles{}, "ike-0").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Hello({*pki_ + "/other-ca-ike-service.crt", *pki_ + "/other-ca-ike-service.key",
                   *pki_ + "/ca.crt"},
                  "ike-0")
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  grpc::Status twin = Hello(Files("ike-service"), "ike-0");
  EXPECT_EQ(twin.error_code(), grpc::StatusCode::ALREADY_EXISTS) << twin.error_message();

  // The first stream still gets the clients' datagrams.
  ClientSocket client;
  client.SendTo(ike_port_, IkeMessage(7, 0, "still here"));
  ASSERT_TRUE(inbox.WaitFor(1));
  EXPECT_TRUE(replica->AllConnected());
  EXPECT_TRUE(
      forwarder_->WaitForLine("refused a second stream for a connected replica", absl::Seconds(1))
          .ok());
  EXPECT_TRUE(forwarder_->WaitForLine("\"msg\":\"call denied\"", absl::Seconds(1)).ok());
}

// A replica that stops reading its stream (a stuck or stopped process) must
// not hold up the data plane's threads, which relay IKE from UDP 4500: its
// datagrams queue and then drop, counted, and the other replica keeps
// getting its own promptly.
TEST_F(IkeRelayIntegrationTest, AStuckReplicaHoldsUpNothing) {
  Inbox inbox;
  auto healthy = StartReplica("ike-a", &inbox);
  auto channel = rpc::MakeChannel(grpc_target_, Files("ike-service"), "esp-forwarder");
  ASSERT_TRUE(channel.ok());
  auto stub = v1::IkeTransport::NewStub(*channel);
  grpc::ClientContext stuck_context;
  auto stuck = stub->Relay(&stuck_context);
  v1::IkeTransportUp hello;
  hello.mutable_hello()->set_replica("ike-stuck");
  ASSERT_TRUE(stuck->Write(hello));  // and never reads
  ASSERT_TRUE(forwarder_->WaitForLine("\"replica\":\"ike-stuck\"", absl::Seconds(5)).ok());

  // IKE messages of 1 KB on UDP 4500 (non-ESP marker, RFC 3948 2.2),
  // about half of them for the stuck replica, until its queue overflows:
  // past what gRPC's flow control lets through to a stream nobody reads.
  ClientSocket client;
  const std::string body(1024, 'x');
  auto queue_drops = [this]() -> double {
    absl::StatusOr<std::string> metrics = rpc::FetchMetrics("127.0.0.1", metrics_port_);
    std::smatch match;
    if (!metrics.ok() ||
        !std::regex_search(*metrics, match,
                           std::regex("forwarder_ike_datagrams_total\\{direction=\"dropped_"
                                      "queue_full\"\\} ([0-9.e+]+)"))) {
      return 0;
    }
    return std::stod(match[1]);
  };
  uint64_t sent = 0;
  for (int round = 0; round < 100 && queue_drops() == 0; ++round) {
    for (int k = 0; k < 2000; ++k) {
      ++sent;
      std::vector<uint8_t> message = IkeMessage(sent * 0x9e3779b97f4a7c15ull, 0, body);
      message.insert(message.begin(), 4, 0);
      client.SendTo(natt_port_, message);
      if (k % 500 == 0) absl::SleepFor(absl::Milliseconds(2));
    }
  }
  EXPECT_GT(queue_drops(), 0.0) << "after " << sent << " datagrams";
  // Then probes: the healthy replica gets its share within a second.
  size_t before;
  {
    absl::MutexLock lock(&inbox.mu);
    before = inbox.datagrams.size();
  }
  for (uint64_t i = 1; i <= 100; ++i) {
    std::vector<uint8_t> message = IkeMessage(0xabcdef0000000000ull + i, 0, "probe");
    message.insert(message.begin(), 4, 0);
    client.SendTo(natt_port_, message);
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(1);
  size_t probes = 0;
  while (absl::Now() < give_up) {
    {
      absl::MutexLock lock(&inbox.mu);
      probes = 0;
      for (size_t k = before; k < inbox.datagrams.size(); ++k) {
        if (inbox.datagrams[k].second.payload().find("probe") != std::string::npos) ++probes;
      }
    }
    if (probes >= 20) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(probes, 20u) << "of 100 probes, about half of them the healthy replica's";

  stuck_context.TryCancel();
}

}  // namespace
}  // namespace vpn::forwarder
