// Starts the real auth-service binary with a config and drives vpn.v1.Auth
// over a socket: users through PutUser, full EAP-MSCHAPv2 conversations,
// signing, certificate validation, metrics, and a restart on the same store.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <regex>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "auth-service/eap/eap_packet.h"
#include "auth-service/eap/test_peer.h"
#include "auth-service/testing/test_util.h"
#include "common/crypto/crypto.h"
#include "common/crypto/mschapv2.h"
#include "common/rpc/credentials.h"
#include "common/rpc/probes.h"
#include "common/testing/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/vpn/v1/auth.grpc.pb.h"

namespace vpn::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using vpn::testing::ChildProcess;
using vpn::testing::RunfilePath;

int IntField(const std::string& line, const std::string& key) {
  std::smatch match;
  if (!std::regex_search(line, match, std::regex("\"" + key + "\":([0-9]+)"))) {
    return -1;
  }
  return std::stoi(match[1]);
}

crypto::ByteSpan Span(const std::string& s) {
  return crypto::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// One running auth-service and a stub for it.
struct Running {
  std::unique_ptr<ChildProcess> child;
  std::unique_ptr<vpn::v1::Auth::Stub> stub;
  int metrics_port = 0;
};

// The one stub calls as ike-service (EAP, Sign) and as the operator (users):
// these tests are about auth-service's answers; who may call what is
// common/rpc's service_host_test and test/trust's.
Running Start(const std::string& config_path) {
  Running running;
  const std::string config = testing::MakeTempDir("auth-config") + "/auth.yaml";
  testing::WriteFile(config, (config_path.empty() ? "" : testing::ReadFile(config_path)) +
                                 "\nserver: {insecure_plaintext: true}\n");
  std::vector<std::string> argv = {RunfilePath("auth-service/auth-service"),
                                   "--grpc_listen=127.0.0.1:0",
                                   "--metrics_listen=127.0.0.1:0", "--config=" + config};
  auto child = ChildProcess::Start(argv);
  EXPECT_TRUE(child.ok());
  if (!child.ok()) return running;
  running.child = std::move(*child);
  auto serving =
      running.child->WaitForLine("\"msg\":\"serving\"", absl::Seconds(30));
  EXPECT_TRUE(serving.ok()) << running.child->output();
  if (!serving.ok()) return running;
  running.metrics_port = IntField(*serving, "metrics_port");
  auto channel = rpc::MakeChannel(
      absl::StrCat("127.0.0.1:", IntField(*serving, "grpc_port")), {});
  EXPECT_TRUE(channel.ok());
  running.stub = vpn::v1::Auth::NewStub(*channel);
  return running;
}

void Stop(Running& running) {
  running.stub.reset();  // closes the channel, so shutdown has no grace wait
  running.child->Signal(SIGTERM);
  auto code = running.child->Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << running.child->output();
}

// Runs a whole EAP conversation over gRPC with a test peer, from
// `peer_address` (4 bytes).
vpn::v1::EapReply Converse(vpn::v1::Auth::Stub& stub,
                           eap::testing::TestPeer& peer,
                           const std::string& peer_address =
                               std::string("\xc0\x00\x02\x0a", 4)) {
  grpc::ClientContext start_context;
  vpn::v1::EapStartRequest start;
  start.set_initiator_spi(0x0102030405060708ull);
  start.set_peer_identity("192.0.2.10");
  start.set_peer_address(peer_address);
  vpn::v1::EapReply reply;
  grpc::Status status = stub.EapStart(&start_context, start, &reply);
  EXPECT_TRUE(status.ok()) << status.error_message();
  for (int i = 0; i < 8 && reply.outcome() == vpn::v1::EapReply::CONTINUE;
       ++i) {
    absl::StatusOr<crypto::Bytes> answer = peer.Answer(Span(reply.eap_message()));
    EXPECT_TRUE(answer.ok()) << answer.status();
    if (!answer.ok()) break;
    vpn::v1::EapRoundRequest round;
    round.set_session(reply.session());
    round.set_eap_message(answer->data(), answer->size());
    grpc::ClientContext context;
    status = stub.EapRound(&context, round, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  return reply;
}

grpc::Status PutUser(vpn::v1::Auth::Stub& stub, const std::string& name,
                     const std::string& password) {
  grpc::ClientContext context;
  vpn::v1::PutUserRequest request;
  request.set_name(name);
  request.set_password(password);
  vpn::v1::Empty empty;
  return stub.PutUser(&context, request, &empty);
}

class AuthServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pki = testing::MakeTestPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new std::string(*pki);
  }
  static std::string P(const std::string& f) { return *pki_ + "/" + f; }

  std::string WriteConfig(const std::string& extra = "") {
    const std::string dir = testing::MakeTempDir("auth");
    const std::string key = dir + "/credentials.key";
    testing::WriteFile(key, std::string(32, '\x5a'));
    chmod(key.c_str(), 0600);
    const std::string path = dir + "/auth.yaml";
    testing::WriteFile(
        path,
        absl::StrCat("data_dir: ", dir, "/data\n",
                     "credentials_key_file: ", key, "\n",
                     "gateway_cert_file: ", P("gateway_rsa_chain.pem"), "\n",
                     "gateway_key_file: ", P("gateway_rsa.key"), "\n",
                     "ca_file: ", P("ca.pem"), "\n",
                     "crl_files: [", P("crl.pem"), "]\n",
                     "eap_retries: 1\n", extra));
    return path;
  }

  static std::string* pki_;
};

std::string* AuthServiceTest::pki_ = nullptr;

TEST_F(AuthServiceTest, UsersEapSigningAndValidationOverGrpc) {
  const std::string config = WriteConfig();
  Running auth = Start(config);
  ASSERT_NE(auth.stub, nullptr);
  vpn::v1::Auth::Stub& stub = *auth.stub;

  // Users.
  ASSERT_TRUE(PutUser(stub, "alice", "correct horse battery").ok());
  ASSERT_TRUE(PutUser(stub, "bob", "hunter2").ok());
  EXPECT_EQ(PutUser(stub, "bad/name", "x").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  {
    grpc::ClientContext context;
    vpn::v1::ListUsersReply users;
    ASSERT_TRUE(stub.ListUsers(&context, {}, &users).ok());
    ASSERT_EQ(users.users_size(), 2);
    EXPECT_EQ(users.users(0).name(), "alice");
    EXPECT_EQ(users.users(1).name(), "bob");
  }

  // A full EAP-MSCHAPv2 conversation; the MSK is what the peer derives.
  eap::testing::TestPeer alice("alice", "alice", "correct horse battery");
  vpn::v1::EapReply done = Converse(stub, alice);
  ASSERT_EQ(done.outcome(), vpn::v1::EapReply::SUCCESS);
  EXPECT_TRUE(alice.server_authenticated());
  EXPECT_EQ(done.eap_identity(), "alice");
  EXPECT_EQ(done.eap_message().substr(0, 1), "\x03");
  ASSERT_EQ(done.msk().size(), 64u);
  {
    const crypto::Provider& p = crypto::GetProvider();
    auto unicode = crypto::mschapv2::PasswordToUnicode("correct horse battery");
    const crypto::SecretBytes hash =
        crypto::mschapv2::NtPasswordHash(p, unicode->span());
    auto msk = crypto::mschapv2::DeriveMsk(p, hash.span(), alice.nt_response());
    ASSERT_TRUE(msk.ok());
    EXPECT_EQ(testing::ToHex(Span(done.msk())), testing::ToHex(msk->span()));
  }

  // Wrong password, then the right one on the retry (eap_retries: 1).
  eap::testing::TestPeer retry("bob", "bob", "hunter3");
  retry.set_retry_with_password("hunter2");
  EXPECT_EQ(Converse(stub, retry).outcome(), vpn::v1::EapReply::SUCCESS);
  // Wrong twice: EAP-Failure.
  eap::testing::TestPeer wrong("bob", "bob", "nope");
  wrong.set_retry_with_password("still nope");
  vpn::v1::EapReply failed = Converse(stub, wrong);
  EXPECT_EQ(failed.outcome(), vpn::v1::EapReply::FAILURE);
  EXPECT_EQ(failed.eap_message().substr(0, 1), "\x04");
  EXPECT_TRUE(failed.msk().empty());
  {
    grpc::ClientContext context;
    vpn::v1::EapRoundRequest round;
    round.set_session("no-such-session");
    round.set_eap_message(std::string("\x02\x01\x00\x05\x01", 5));
    vpn::v1::EapReply reply;
    ASSERT_TRUE(stub.EapRound(&context, round, &reply).ok());
    EXPECT_EQ(reply.outcome(), vpn::v1::EapReply::FAILURE);
  }

  // Sign (RFC 7427 and classic) over ResponderSignedOctets, verified with
  // the openssl CLI.
  const std::string response = testing::IkeSaInitResponse();
  const std::string nonce(32, 'n'), maced_id(20, 'm');  // PRF HMAC-SHA1
  const std::string dir = testing::MakeTempDir("sign");
  testing::WriteFile(dir + "/data", response + nonce + maced_id);
  for (bool rfc7427 : {true, false}) {
    grpc::ClientContext context;
    vpn::v1::SignRequest request;
    request.set_ike_sa_init_response(response);
    request.set_initiator_nonce(nonce);
    request.set_maced_id(maced_id);
    if (rfc7427) {
      request.add_peer_hash_algorithms(2);
      request.add_peer_hash_algorithms(4);
    }
    vpn::v1::SignReply reply;
    grpc::Status status = stub.Sign(&context, request, &reply);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(reply.auth_method(), rfc7427 ? 14u : 1u);
    EXPECT_EQ(reply.certificate_chain_der_size(), 2);
    std::string signature = reply.auth_data();
    if (rfc7427) signature = signature.substr(1 + signature[0]);
    testing::WriteFile(dir + "/sig", signature);
    auto verified = testing::Run(absl::StrCat(
        "openssl pkeyutl -verify -certin -inkey ", P("gateway_rsa.pem"),
        " -rawin -digest ", rfc7427 ? "sha256" : "sha1", " -in ", dir,
        "/data -sigfile ", dir, "/sig"));
    EXPECT_TRUE(verified.ok()) << verified.status();
  }
  // Anything else is refused before the key is touched.
  for (const auto& [message, nonce_size, mac_size] :
       {std::tuple<std::string, size_t, size_t>{"chosen octets", 32, 20},
        {testing::IkeSaInitResponse(2, 0x08), 32, 20},
        {response, 8, 20},
        {response, 32, 32}}) {
    grpc::ClientContext context;
    vpn::v1::SignRequest request;
    request.set_ike_sa_init_response(message);
    request.set_initiator_nonce(std::string(nonce_size, 'n'));
    request.set_maced_id(std::string(mac_size, 'm'));
    vpn::v1::SignReply reply;
    EXPECT_EQ(stub.Sign(&context, request, &reply).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext context;
    vpn::v1::GatewayCertificateReply reply;
    ASSERT_TRUE(stub.GatewayCertificate(&context, {}, &reply).ok());
    ASSERT_EQ(reply.certificate_chain_der_size(), 2);
    const crypto::Bytes leaf = testing::ChainDer(P("gateway_rsa.pem"))[0];
    EXPECT_EQ(reply.certificate_chain_der(0), std::string(leaf.begin(), leaf.end()));
  }

  // ValidateCertificate: a good client and a revoked one (both signed with
  // the openssl CLI, RFC 7427 ECDSA / classic RSA).
  const std::string kClientOctets = "initiator signed octets";
  auto validate = [&](const std::string& cert, const std::string& key,
                      const std::string& identity, uint32_t method,
                      const std::string& digest) {
    testing::WriteFile(dir + "/data", kClientOctets);
    EXPECT_TRUE(testing::Run(absl::StrCat("openssl pkeyutl -sign -inkey ", P(key),
                                          " -rawin -digest ", digest, " -in ",
                                          dir, "/data -out ", dir, "/csig"))
                    .ok());
    std::string auth_data = testing::ReadFile(dir + "/csig");
    if (method == 14) {
      const crypto::Bytes alg = testing::FromHex("300a06082a8648ce3d040302");
      auth_data = std::string(1, static_cast<char>(alg.size())) +
                  std::string(alg.begin(), alg.end()) + auth_data;
    }
    vpn::v1::ValidateCertificateRequest request;
    for (const crypto::Bytes& der : testing::ChainDer(P(cert))) {
      request.add_chain_der(der.data(), der.size());
    }
    request.set_identity(identity);
    request.set_identity_type(2);
    request.set_auth_method(method);
    request.set_signed_octets(kClientOctets);
    request.set_auth_data(auth_data);
    grpc::ClientContext context;
    vpn::v1::ValidateCertificateReply reply;
    EXPECT_TRUE(stub.ValidateCertificate(&context, request, &reply).ok());
    return reply;
  };
  vpn::v1::ValidateCertificateReply good =
      validate("client_rsa.pem", "client_rsa.key", "client.example.com", 1, "sha1");
  EXPECT_TRUE(good.valid()) << good.reason();
  EXPECT_THAT(good.subject(), HasSubstr("client.example.com"));
  vpn::v1::ValidateCertificateReply revoked = validate(
      "client_revoked.pem", "client_revoked.key", "plain.example.com", 14, "sha256");
  EXPECT_FALSE(revoked.valid());
  EXPECT_THAT(revoked.reason(), HasSubstr("revoked"));

  // Metrics.
  auto metrics = rpc::FetchMetrics("127.0.0.1", auth.metrics_port);
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics, HasSubstr("auth_eap_results_total{result=\"success\"} 2"));
  EXPECT_THAT(*metrics, HasSubstr("auth_eap_results_total{result=\"failure\"} 1"));
  EXPECT_THAT(*metrics, HasSubstr("auth_eap_sessions_active 0"));
  EXPECT_THAT(*metrics, HasSubstr("auth_signatures_total 2"));
  EXPECT_THAT(*metrics,
              HasSubstr("auth_certificate_validations_total{result=\"valid\"} 1"));
  EXPECT_THAT(*metrics,
              HasSubstr("auth_certificate_validations_total{result=\"invalid\"} 1"));
  {
    // The gateway chain's earliest notAfter, for the expiry alert.
    auto chain = crypto::GetProvider().ParseCertificatesPem(
        testing::ReadFile(P("gateway_rsa_chain.pem")));
    ASSERT_TRUE(chain.ok()) << chain.status();
    absl::Time earliest = absl::InfiniteFuture();
    for (const auto& cert : *chain) earliest = std::min(earliest, cert->not_after());
    EXPECT_GT(earliest, absl::Now());
    EXPECT_THAT(*metrics, HasSubstr(absl::StrCat(
                              "auth_gateway_certificate_expiry_timestamp_seconds ",
                              absl::ToUnixSeconds(earliest), "\n")));
  }

  // Delete alice; her EAP now fails. bob survives a restart (sealed hash in
  // the embedded store, same credentials key).
  {
    grpc::ClientContext context;
    vpn::v1::DeleteUserRequest request;
    request.set_name("alice");
    vpn::v1::Empty empty;
    ASSERT_TRUE(stub.DeleteUser(&context, request, &empty).ok());
    grpc::ClientContext again;
    EXPECT_EQ(stub.DeleteUser(&again, request, &empty).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  eap::testing::TestPeer deleted("alice", "alice", "correct horse battery");
  EXPECT_EQ(Converse(stub, deleted).outcome(), vpn::v1::EapReply::FAILURE);

  Stop(auth);
  const std::string log = auth.child->output();
  EXPECT_THAT(log, Not(HasSubstr("correct horse")));
  EXPECT_THAT(log, Not(HasSubstr("hunter")));

  Running restarted = Start(config);
  ASSERT_NE(restarted.stub, nullptr);
  eap::testing::TestPeer bob("bob", "bob", "hunter2");
  EXPECT_EQ(Converse(*restarted.stub, bob).outcome(),
            vpn::v1::EapReply::SUCCESS);
  Stop(restarted);
}

// With no config: EAP fails cleanly for unknown users, and the calls that
// need configuration say what is missing.
TEST_F(AuthServiceTest, EmptyConfigStartsAndFailsCleanly) {
  Running auth = Start("");
  ASSERT_NE(auth.stub, nullptr);
  eap::testing::TestPeer nobody("nobody", "nobody", "x");
  EXPECT_EQ(Converse(*auth.stub, nobody).outcome(), vpn::v1::EapReply::FAILURE);
  {
    grpc::ClientContext context;
    vpn::v1::SignRequest request;
    request.set_ike_sa_init_response(testing::IkeSaInitResponse());
    vpn::v1::SignReply reply;
    grpc::Status status = auth.stub->Sign(&context, request, &reply);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(status.error_message(), "no gateway key configured");
  }
  {
    grpc::ClientContext context;
    vpn::v1::ValidateCertificateReply reply;
    EXPECT_EQ(auth.stub->ValidateCertificate(&context, {}, &reply).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  // Users work, in the temporary store.
  ASSERT_TRUE(PutUser(*auth.stub, "carol", "pw").ok());
  eap::testing::TestPeer carol("carol", "carol", "pw");
  EXPECT_EQ(Converse(*auth.stub, carol).outcome(), vpn::v1::EapReply::SUCCESS);
  Stop(auth);
  EXPECT_THAT(auth.child->output(), HasSubstr("temporary store"));
}

TEST_F(AuthServiceTest, LooseKeyFileModeIsAConfigError) {
  const std::string dir = testing::MakeTempDir("loose");
  const std::string key = dir + "/gateway.key";
  testing::WriteFile(key, testing::ReadFile(P("gateway_ec.key")));
  chmod(key.c_str(), 0644);
  const std::string config = dir + "/auth.yaml";
  testing::WriteFile(config, absl::StrCat("gateway_cert_file: ",
                                          P("gateway_ec.pem"),
                                          "\ngateway_key_file: ", key, "\n"));
  auto child = ChildProcess::Start(
      {RunfilePath("auth-service/auth-service"), "--config=" + config});
  ASSERT_TRUE(child.ok());
  auto code = (*child)->Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
  const std::string output = (*child)->output();
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
  EXPECT_THAT(output, HasSubstr("'gateway_key_file'"));
  EXPECT_THAT(output, HasSubstr("looser than 0600"));
}

// Polls the metrics page until it contains `needle` (gauges are updated by
// the once-a-second housekeeping).
bool WaitForMetric(int port, const std::string& needle,
                   absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto metrics = rpc::FetchMetrics("127.0.0.1", port);
    if (metrics.ok() && metrics->find(needle) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return false;
}

// Lockouts per user and per address over gRPC: a locked user fails even
// with the right password, from any address, exactly like a wrong password
// (R=1 Failure request, then EAP-Failure); an address that sprayed guesses
// is refused for every user; others are unaffected; a log line and metrics
// say what happened.
TEST_F(AuthServiceTest, BruteForceAttemptsAreRefusedLikeFailures) {
  const std::string config = WriteConfig(
      "max_failures_per_user: 3\nmax_failures_per_address: 5\n"
      "failure_window: 10m\nlockout: 10m\n");
  Running auth = Start(config);
  ASSERT_NE(auth.stub, nullptr);
  vpn::v1::Auth::Stub& stub = *auth.stub;
  ASSERT_TRUE(PutUser(stub, "alice", "right-pw").ok());
  ASSERT_TRUE(PutUser(stub, "bob", "bob-pw").ok());
  const std::string a("\xcb\x00\x71\x05", 4);        // 203.0.113.5
  const std::string b("\xc6\x33\x64\x02", 4);        // 198.51.100.2
  const std::string c("\xc6\x33\x64\x03", 4);        // 198.51.100.3
  const std::string d(std::string(15, '\0') + "\x01", 16);  // ::1

  // Three wrong passwords lock alice (each peer declines the retry).
  for (int i = 0; i < 3; ++i) {
    eap::testing::TestPeer wrong("alice", "alice", absl::StrCat("guess", i));
    vpn::v1::EapReply reply = Converse(stub, wrong, a);
    EXPECT_EQ(reply.outcome(), vpn::v1::EapReply::FAILURE);
    EXPECT_THAT(wrong.failure_message(), ::testing::StartsWith("E=691 R=1"));
  }
  // Now even the right password fails, from another address, the same way.
  eap::testing::TestPeer locked("alice", "alice", "right-pw");
  vpn::v1::EapReply refused = Converse(stub, locked, b);
  EXPECT_EQ(refused.outcome(), vpn::v1::EapReply::FAILURE);
  EXPECT_EQ(refused.eap_message().substr(0, 1), "\x04");
  EXPECT_TRUE(refused.msk().empty());
  EXPECT_THAT(locked.failure_message(), ::testing::StartsWith("E=691 R=1"));
  EXPECT_FALSE(locked.server_authenticated());
  // bob is not affected, from the attacker's address either (3 of 5).
  eap::testing::TestPeer bob("bob", "bob", "bob-pw");
  EXPECT_EQ(Converse(stub, bob, a).outcome(), vpn::v1::EapReply::SUCCESS);

  // Spraying unknown users from one address locks the address.
  for (int i = 0; i < 5; ++i) {
    eap::testing::TestPeer spray(absl::StrCat("user", i),
                                 absl::StrCat("user", i), "123456");
    EXPECT_EQ(Converse(stub, spray, c).outcome(), vpn::v1::EapReply::FAILURE);
  }
  eap::testing::TestPeer bob_from_c("bob", "bob", "bob-pw");
  EXPECT_EQ(Converse(stub, bob_from_c, c).outcome(),
            vpn::v1::EapReply::FAILURE);
  eap::testing::TestPeer bob_from_d("bob", "bob", "bob-pw");
  EXPECT_EQ(Converse(stub, bob_from_d, d).outcome(),
            vpn::v1::EapReply::SUCCESS);

  {
    grpc::ClientContext context;
    vpn::v1::EapStartRequest start;
    start.set_peer_address("12345");
    vpn::v1::EapReply reply;
    EXPECT_EQ(stub.EapStart(&context, start, &reply).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  EXPECT_TRUE(WaitForMetric(auth.metrics_port,
                            "auth_bruteforce_locked{scope=\"user\"} 1"));
  auto metrics = rpc::FetchMetrics("127.0.0.1", auth.metrics_port);
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics,
              HasSubstr("auth_bruteforce_refusals_total{scope=\"user\"} 1"));
  EXPECT_THAT(*metrics,
              HasSubstr("auth_bruteforce_refusals_total{scope=\"address\"} 1"));
  EXPECT_THAT(*metrics,
              HasSubstr("auth_bruteforce_lockouts_total{scope=\"user\"} 1"));
  EXPECT_THAT(*metrics,
              HasSubstr("auth_bruteforce_lockouts_total{scope=\"address\"} 1"));
  EXPECT_THAT(*metrics, HasSubstr("auth_bruteforce_locked{scope=\"address\"} 1"));
  EXPECT_THAT(*metrics, HasSubstr("auth_eap_results_total{result=\"failure\"} 10"));

  Stop(auth);
  const std::string log = auth.child->output();
  EXPECT_THAT(log, ::testing::ContainsRegex(
                       "brute-force lockout.*\"scope\":\"user\",\"user\":"
                       "\"alice\",\"address\":\"203.0.113.5\",\"failures\":3"));
  EXPECT_THAT(log, ::testing::ContainsRegex(
                       "EAP attempt refused.*\"scope\":\"user\",\"user\":"
                       "\"alice\",\"address\":\"198.51.100.2\",\"failures\":3,"
                       "\"refused\":1,\"locked_until\":\"20[0-9-]+T"));
  EXPECT_THAT(log, ::testing::ContainsRegex(
                       "EAP attempt refused.*\"scope\":\"address\",\"user\":"
                       "\"bob\",\"address\":\"198.51.100.3\""));
  EXPECT_THAT(log, Not(HasSubstr("right-pw")));
}

// The README's one-liner gives the RFC 2759 §9.2 NT hash.
std::string NtHashWithOpenssl(const std::string& password) {
  auto out = testing::Run(absl::StrCat(
      "printf %s '", password,
      "' | iconv -t UTF-16LE | openssl dgst -md4 -provider legacy "
      "-provider default"));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return "";
  const size_t eq = out->rfind("= ");
  return eq == std::string::npos ? "" : out->substr(eq + 2, 32);
}

void WriteUsersFile(const std::string& path, const std::string& yaml) {
  // Replaced by rename, as an operator's editor or a Kubernetes secret does.
  testing::WriteFile(path + ".new", yaml);
  chmod((path + ".new").c_str(), 0600);
  ASSERT_EQ(rename((path + ".new").c_str(), path.c_str()), 0);
}

// Users from users_file authenticate through whole EAP conversations; a
// change is picked up within a few seconds, leaving API users alone; a bad
// file on reload keeps the previous users and is counted.
TEST_F(AuthServiceTest, UsersFileLoadsAndReloadsWhileRunning) {
  EXPECT_EQ(NtHashWithOpenssl("clientPass"), "44ebba8d5312b8d611474411f56989ae");
  const std::string dir = testing::MakeTempDir("users");
  const std::string users = dir + "/users.yaml";
  WriteUsersFile(users, absl::StrCat("users:\n  - name: User\n    nt_hash: ",
                                     NtHashWithOpenssl("clientPass"), "\n"));
  Running auth = Start(WriteConfig(absl::StrCat("users_file: ", users, "\n")));
  ASSERT_NE(auth.stub, nullptr);
  vpn::v1::Auth::Stub& stub = *auth.stub;

  eap::testing::TestPeer user("User", "CORP\\User", "clientPass");
  vpn::v1::EapReply done = Converse(stub, user);
  ASSERT_EQ(done.outcome(), vpn::v1::EapReply::SUCCESS);
  EXPECT_EQ(done.eap_identity(), "User");
  EXPECT_TRUE(user.server_authenticated());
  EXPECT_EQ(PutUser(stub, "User", "other").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(PutUser(stub, "api", "api-pw").ok());
  {
    grpc::ClientContext context;
    vpn::v1::ListUsersReply listed;
    ASSERT_TRUE(stub.ListUsers(&context, {}, &listed).ok());
    ASSERT_EQ(listed.users_size(), 2);
    EXPECT_EQ(listed.users(0).name(), "User");
    EXPECT_EQ(listed.users(1).name(), "api");
  }

  // User leaves, bob arrives.
  WriteUsersFile(users, absl::StrCat("users:\n  - name: bob\n    nt_hash: ",
                                     NtHashWithOpenssl("bob-pw"), "\n"));
  // (Trying bob in a loop meanwhile would lock him out: watch the metric.)
  const absl::Time changed = absl::Now();
  EXPECT_TRUE(WaitForMetric(auth.metrics_port,
                            "auth_users_file_reloads_total{result=\"ok\"} 1"));
  EXPECT_LT(absl::Now() - changed, absl::Seconds(5));  // polled every 2 s
  eap::testing::TestPeer bob("bob", "bob", "bob-pw");
  EXPECT_EQ(Converse(stub, bob).outcome(), vpn::v1::EapReply::SUCCESS);
  eap::testing::TestPeer gone("User", "User", "clientPass");
  EXPECT_EQ(Converse(stub, gone).outcome(), vpn::v1::EapReply::FAILURE);
  eap::testing::TestPeer api("api", "api", "api-pw");
  EXPECT_EQ(Converse(stub, api).outcome(), vpn::v1::EapReply::SUCCESS);

  // A plaintext password is refused; bob stays.
  WriteUsersFile(users, "users:\n  - name: bob\n    password: bob-pw2\n");
  EXPECT_TRUE(WaitForMetric(auth.metrics_port,
                            "auth_users_file_reloads_total{result=\"error\"} 1"));
  eap::testing::TestPeer still("bob", "bob", "bob-pw");
  EXPECT_EQ(Converse(stub, still).outcome(), vpn::v1::EapReply::SUCCESS);
  auto metrics = rpc::FetchMetrics("127.0.0.1", auth.metrics_port);
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics, HasSubstr("auth_users_file_reloads_total{result=\"ok\"} 1"));
  EXPECT_THAT(*metrics, HasSubstr("auth_users_file_users 1"));

  Stop(auth);
  const std::string log = auth.child->output();
  EXPECT_THAT(log, HasSubstr("\"msg\":\"users_file reloaded\""));
  EXPECT_THAT(log, HasSubstr("\"added\":1,\"updated\":0,\"removed\":1"));
  EXPECT_THAT(log, HasSubstr("users_file reload failed; keeping the previous users"));
  EXPECT_THAT(log, HasSubstr("line 3: users[0].password"));
  EXPECT_THAT(log, Not(HasSubstr("bob-pw2")));
}

TEST_F(AuthServiceTest, BadUsersFileAtStartIsAConfigError) {
  const std::string dir = testing::MakeTempDir("badusers");
  const std::string users = dir + "/users.yaml";
  WriteUsersFile(users, "users:\n  - name: alice\n    password: hunter2\n");
  auto child = ChildProcess::Start(
      {RunfilePath("auth-service/auth-service"),
       "--config=" + WriteConfig(absl::StrCat("users_file: ", users, "\n"))});
  ASSERT_TRUE(child.ok());
  auto code = (*child)->Wait(absl::Seconds(15));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
  const std::string output = (*child)->output();
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
  EXPECT_THAT(output, HasSubstr("'users_file'"));
  EXPECT_THAT(output, HasSubstr("line 3: users[0].password"));
  EXPECT_THAT(output, Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace vpn::auth
