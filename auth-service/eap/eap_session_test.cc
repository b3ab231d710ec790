// EAP-MSCHAPv2 conversations between SessionManager + MsChapV2Server and a
// peer written from RFC 2759 (test_peer), with the RFC 2759 §9.2 values.
#include "auth-service/eap/eap_session.h"

#include <cstdio>
#include <fstream>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "auth-service/eap/brute_force_guard.h"
#include "auth-service/eap/eap_packet.h"
#include "auth-service/eap/mschapv2_server.h"
#include "auth-service/eap/test_peer.h"
#include "common/crypto/mschapv2.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vpn::auth::eap {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::TestPeer;
using Outcome = Result::Outcome;

Bytes Hex(absl::string_view hex) {
  std::string clean;
  for (char c : hex) {
    if (c != ' ') clean.push_back(c);
  }
  const std::string bytes = absl::HexStringToBytes(clean);
  return Bytes(bytes.begin(), bytes.end());
}

std::string ToHex(ByteSpan bytes) {
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// RFC 2759 §9.2.
const Bytes kAuthenticatorChallenge =
    Hex("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28");
const Bytes kPeerChallenge =
    Hex("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E");
const Bytes kNtResponse = Hex(
    "82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF");
constexpr char kAuthenticatorResponse[] =
    "S=407A5589115FD0D6209F510FE9C04566932CDA56";
const Bytes kPasswordHashHash =
    Hex("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F");

class MapCredentials : public CredentialSource {
 public:
  void Add(const std::string& user, const std::string& password) {
    auto unicode = crypto::mschapv2::PasswordToUnicode(password);
    hashes_[user] = ToHex(crypto::mschapv2::NtPasswordHash(
                              crypto::GetProvider(), unicode->span())
                              .span());
  }
  absl::StatusOr<crypto::SecretBytes> NtHash(absl::string_view user) override {
    ++lookups_;
    auto it = hashes_.find(std::string(user));
    if (it == hashes_.end()) return absl::NotFoundError("no such user");
    return crypto::SecretBytes(Hex(it->second));
  }
  int lookups_ = 0;

 private:
  std::map<std::string, std::string> hashes_;
};

// SHA-1 with the openssl CLI (another library than the provider).
std::string OpensslSha1Hex(const std::string& input) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(tmp ? tmp : "/tmp", "/sha1_in");
  std::ofstream(path, std::ios::binary) << input;
  FILE* pipe = popen(("/usr/bin/openssl dgst -sha1 -r " + path).c_str(), "r");
  if (pipe == nullptr) return "";
  char buf[128] = {};
  const size_t n = fread(buf, 1, sizeof(buf) - 1, pipe);
  pclose(pipe);
  return std::string(buf, n).substr(0, 40);
}

std::string AsString(ByteSpan bytes) {
  return std::string(bytes.begin(), bytes.end());
}

class EapSessionTest : public ::testing::Test {
 protected:
  EapSessionTest() {
    credentials_.Add("User", "clientPass");
    credentials_.Add("alice", "correct horse");
  }

  void MakeManager() {
    SessionOptions session_options;
    session_options.ttl = absl::Seconds(60);
    session_options.max_sessions = max_sessions_;
    session_options.max_sessions_per_address = per_address_;
    session_options.clock = [this] { return now_; };
    SessionObserver observer;
    observer.on_result = [this](absl::string_view r) {
      results_.push_back(std::string(r));
    };
    observer.on_active = [this](size_t n) { active_ = n; };
    manager_ = std::make_unique<SessionManager>(
        crypto::GetProvider(),
        [this](const PeerInfo& peer) {
          addresses_seen_.push_back(Bytes(peer.address.begin(),
                                          peer.address.end()));
          return std::make_unique<MsChapV2Server>(
              crypto::GetProvider(), credentials_, options_, peer.address);
        },
        session_options, observer);
  }

  // Runs a conversation to its end; returns the last result.
  Result Converse(TestPeer& peer, int max_rounds = 10) {
    if (manager_ == nullptr) MakeManager();
    absl::StatusOr<Result> result =
        manager_->Start(ToBytes("192.0.2.10"), address_);
    EXPECT_TRUE(result.ok());
    Result last = std::move(*result);
    for (int i = 0; i < max_rounds && last.outcome == Outcome::kContinue; ++i) {
      absl::StatusOr<Bytes> answer = peer.Answer(last.message);
      EXPECT_TRUE(answer.ok()) << answer.status();
      if (!answer.ok()) break;
      last = manager_->Round(last.session, *answer);
    }
    return last;
  }

  static Bytes ToBytes(absl::string_view text) {
    return Bytes(text.begin(), text.end());
  }

  MapCredentials credentials_;
  MsChapV2Options options_;
  size_t max_sessions_ = 100;
  size_t per_address_ = 128;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::unique_ptr<SessionManager> manager_;
  std::vector<std::string> results_;
  size_t active_ = 0;
  Bytes address_ = {192, 0, 2, 10};
  std::vector<Bytes> addresses_seen_;
};

// The whole conversation with the RFC 2759 §9.2 values: the NT-Response and
// the S= string match the published vector byte for byte, and the MSK is
// what strongSwan's eap_mschapv2 computes on both ends (RFC 3079
// MasterReceiveKey | MasterSendKey | 32 zero bytes), recomputed here with
// the openssl CLI.
TEST_F(EapSessionTest, Rfc2759VectorConversation) {
  options_.random = [](absl::Span<uint8_t> out) {
    std::copy(kAuthenticatorChallenge.begin(), kAuthenticatorChallenge.end(),
              out.begin());
  };
  MakeManager();
  TestPeer peer("User", "User", "clientPass", kPeerChallenge);

  absl::StatusOr<Result> start = manager_->Start(ToBytes("192.0.2.10"));
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(start->outcome, Outcome::kContinue);
  EXPECT_EQ(start->session.size(), 32u);
  auto identity_request = ParsePacket(start->message);
  ASSERT_TRUE(identity_request.ok());
  EXPECT_EQ(identity_request->code, Code::kRequest);
  EXPECT_EQ(identity_request->type, type::kIdentity);
  EXPECT_EQ(start->message.size(), 5u);
  EXPECT_EQ(active_, 1u);

  // Identity -> Challenge.
  auto answer = peer.Answer(start->message);
  ASSERT_TRUE(answer.ok());
  Result challenge = manager_->Round(start->session, *answer);
  ASSERT_EQ(challenge.outcome, Outcome::kContinue);
  auto challenge_packet = ParsePacket(challenge.message);
  ASSERT_TRUE(challenge_packet.ok());
  EXPECT_EQ(challenge_packet->identifier,
            static_cast<uint8_t>(identity_request->identifier + 1));
  auto parsed_challenge = ParseChallenge(*challenge_packet);
  ASSERT_TRUE(parsed_challenge.ok());
  EXPECT_EQ(ToHex(parsed_challenge->challenge), ToHex(kAuthenticatorChallenge));
  EXPECT_EQ(parsed_challenge->server_name, "vpn-gateway");
  // MS-Length = EAP Length - 5.
  EXPECT_EQ(challenge.message[7] << 8 | challenge.message[8],
            static_cast<int>(challenge.message.size()) - 5);

  // Response -> Success request carrying the RFC's authenticator response.
  answer = peer.Answer(challenge.message);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(ToHex(peer.nt_response()), ToHex(kNtResponse));
  Result success_request = manager_->Round(challenge.session, *answer);
  ASSERT_EQ(success_request.outcome, Outcome::kContinue);
  auto status = ParseStatusRequest(*ParsePacket(success_request.message));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->opcode, opcode::kSuccess);
  EXPECT_EQ(status->message.substr(0, 42), kAuthenticatorResponse);
  EXPECT_THAT(std::string(status->message), StartsWith(absl::StrCat(
                                                kAuthenticatorResponse, " M=")));

  // Success response (OpCode only) -> EAP-Success with the MSK.
  answer = peer.Answer(success_request.message);
  ASSERT_TRUE(answer.ok());
  EXPECT_TRUE(peer.server_authenticated());
  EXPECT_EQ(answer->size(), 6u);
  Result done = manager_->Round(challenge.session, *answer);
  ASSERT_EQ(done.outcome, Outcome::kSuccess);
  EXPECT_EQ(ToHex(done.message),
            absl::StrCat("03", ToHex(ByteSpan(*answer).subspan(1, 1)), "0004"));
  EXPECT_EQ(done.identity, "User");
  ASSERT_EQ(done.msk.size(), 64u);

  const std::string master = OpensslSha1Hex(
      AsString(kPasswordHashHash) + AsString(kNtResponse) +
      "This is the MPPE Master Key");
  ASSERT_EQ(master.size(), 40u);
  const std::string master16 = absl::HexStringToBytes(master.substr(0, 32));
  EXPECT_EQ(master.substr(0, 32), "fdece3717a8c838cb388e527ae3cdd31");  // RFC 3079
  const std::string pad1(40, '\0');
  const std::string pad2(40, '\xf2');
  const std::string receive = OpensslSha1Hex(
      master16 + pad1 +
      "On the client side, this is the send key; on the server side, it is "
      "the receive key." +
      pad2);
  const std::string send = OpensslSha1Hex(
      master16 + pad1 +
      "On the client side, this is the receive key; on the server side, it is "
      "the send key." +
      pad2);
  EXPECT_EQ(send.substr(0, 32), "8b7cdc149b993a1ba118cb153f56dccb");  // RFC 3079
  EXPECT_EQ(ToHex(done.msk.span()), receive.substr(0, 32) + send.substr(0, 32) +
                                        std::string(64, '0'));

  EXPECT_EQ(results_, std::vector<std::string>{"success"});
  EXPECT_EQ(active_, 0u);
  EXPECT_EQ(manager_->active_sessions(), 0u);
}

TEST_F(EapSessionTest, DomainPrefixIsStrippedForHashAndIdentity) {
  options_.random = [](absl::Span<uint8_t> out) {
    std::copy(kAuthenticatorChallenge.begin(), kAuthenticatorChallenge.end(),
              out.begin());
  };
  TestPeer peer("CORP\\User", "CORP\\User", "clientPass", kPeerChallenge);
  Result done = Converse(peer);
  EXPECT_EQ(done.outcome, Outcome::kSuccess);
  EXPECT_EQ(done.identity, "User");
  EXPECT_EQ(peer.authenticator_response(), kAuthenticatorResponse);
}

TEST_F(EapSessionTest, WrongPasswordFailsWithEapFailure) {
  TestPeer peer("alice", "alice", "wrong horse");
  Result done = Converse(peer);
  EXPECT_EQ(done.outcome, Outcome::kFailure);
  auto packet = ParsePacket(done.message);
  ASSERT_TRUE(packet.ok());
  EXPECT_EQ(packet->code, Code::kFailure);
  EXPECT_TRUE(done.msk.empty());
  EXPECT_TRUE(done.identity.empty());
  EXPECT_FALSE(peer.server_authenticated());
  EXPECT_EQ(results_, std::vector<std::string>{"failure"});
  EXPECT_EQ(manager_->active_sessions(), 0u);
}

TEST_F(EapSessionTest, UnknownUserFailsLikeAWrongPassword) {
  TestPeer peer("mallory", "mallory", "guess");
  Result done = Converse(peer);
  EXPECT_EQ(done.outcome, Outcome::kFailure);
  EXPECT_EQ(ParsePacket(done.message)->code, Code::kFailure);
  EXPECT_EQ(results_, std::vector<std::string>{"failure"});
}

// A locked-out user gets what a wrong password gets (an R=1 Failure
// request while retries remain, then EAP-Failure), with no credential
// lookup and no MSCHAPv2 crypto; the peer address reaches the limiter.
TEST_F(EapSessionTest, LockedOutUserFailsLikeAWrongPasswordWithoutCrypto) {
  BruteForceOptions limits;
  limits.max_failures_per_user = 2;
  limits.clock = [this] { return now_; };
  BruteForceGuard guard(limits);
  options_.limiter = &guard;
  options_.retries = 1;
  TestPeer wrong("alice", "CORP\\alice", "wrong 1");
  wrong.set_retry_with_password("wrong 2");
  EXPECT_EQ(Converse(wrong).outcome, Outcome::kFailure);
  EXPECT_EQ(credentials_.lookups_, 2);
  EXPECT_EQ(guard.locked_users(), 1u);
  ASSERT_EQ(addresses_seen_.size(), 1u);
  EXPECT_EQ(addresses_seen_[0], address_);

  TestPeer right("alice", "alice", "correct horse");
  right.set_retry_with_password("correct horse");
  Result done = Converse(right);
  EXPECT_EQ(done.outcome, Outcome::kFailure);
  EXPECT_EQ(ParsePacket(done.message)->code, Code::kFailure);
  EXPECT_THAT(right.failure_message(), StartsWith("E=691 R=1 C="));
  EXPECT_FALSE(right.server_authenticated());
  EXPECT_EQ(credentials_.lookups_, 2);  // nothing looked up while locked
  EXPECT_EQ(results_, (std::vector<std::string>{"failure", "failure"}));

  // Another user from the same address is fine; alice is after the lockout.
  TestPeer user("User", "User", "clientPass");
  EXPECT_EQ(Converse(user).outcome, Outcome::kSuccess);
  now_ += absl::Minutes(15);
  TestPeer later("alice", "alice", "correct horse");
  EXPECT_EQ(Converse(later).outcome, Outcome::kSuccess);
}

TEST_F(EapSessionTest, RetryWithTheRightPasswordSucceeds) {
  options_.retries = 1;
  TestPeer peer("alice", "alice", "wrong horse");
  peer.set_retry_with_password("correct horse");
  Result done = Converse(peer);
  EXPECT_EQ(done.outcome, Outcome::kSuccess);
  EXPECT_EQ(done.identity, "alice");
  EXPECT_THAT(peer.failure_message(), StartsWith("E=691 R=1 C="));
  EXPECT_THAT(peer.failure_message(), HasSubstr(" V=3 M="));
  EXPECT_TRUE(peer.server_authenticated());
}

TEST_F(EapSessionTest, RetriesAreBounded) {
  options_.retries = 2;
  TestPeer peer("alice", "alice", "wrong 1");
  peer.set_retry_with_password("wrong 2");
  Result done = Converse(peer, 20);
  EXPECT_EQ(done.outcome, Outcome::kFailure);
  EXPECT_EQ(ParsePacket(done.message)->code, Code::kFailure);
  // Identity, Response, 2 retries: the third wrong answer ends it.
  EXPECT_EQ(credentials_.lookups_, 3);
}

TEST_F(EapSessionTest, PeerMayDeclineARetry) {
  options_.retries = 1;
  TestPeer peer("alice", "alice", "wrong horse");  // no retry password
  Result done = Converse(peer);
  EXPECT_EQ(done.outcome, Outcome::kFailure);
  EXPECT_EQ(results_, std::vector<std::string>{"failure"});
}

// [MS-CHAP] §3.3.5.2: with failure_request, an R=0 Failure request, then
// EAP-Failure once the peer acknowledges it.
TEST_F(EapSessionTest, FailureRequestModeEndsOnThePeersAck) {
  options_.failure_request = true;
  TestPeer peer("alice", "alice", "wrong horse");
  Result done = Converse(peer);
  EXPECT_EQ(done.outcome, Outcome::kFailure);
  EXPECT_EQ(ParsePacket(done.message)->code, Code::kFailure);
  EXPECT_THAT(peer.failure_message(), StartsWith("E=691 R=0 C="));
  const std::vector<std::string> fields = absl::StrSplit(
      peer.failure_message(), ' ');
  ASSERT_GE(fields.size(), 5u);
  EXPECT_EQ(fields[2].size(), 2 + 32u);
  EXPECT_EQ(fields[3], "V=3");
}

TEST_F(EapSessionTest, PeerRejectingTheAuthenticatorResponseFails) {
  MakeManager();
  TestPeer peer("alice", "alice", "correct horse");
  Result r = *manager_->Start({});
  r = manager_->Round(r.session, *peer.Answer(r.message));
  r = manager_->Round(r.session, *peer.Answer(r.message));
  ASSERT_EQ(r.outcome, Outcome::kContinue);
  const uint8_t id = r.message[1];
  r = manager_->Round(r.session, BuildPeerStatus(id, opcode::kFailure));
  EXPECT_EQ(r.outcome, Outcome::kFailure);
  EXPECT_TRUE(r.msk.empty());
}

// A retransmitted response gets the identical reply, including at the end.
TEST_F(EapSessionTest, RetransmissionsAreIdempotent) {
  MakeManager();
  TestPeer peer("alice", "alice", "correct horse");
  Result r = *manager_->Start({});
  const std::string session = r.session;
  Bytes identity = *peer.Answer(r.message);
  Result challenge = manager_->Round(session, identity);
  Result again = manager_->Round(session, identity);
  EXPECT_EQ(ToHex(again.message), ToHex(challenge.message));
  EXPECT_EQ(again.outcome, Outcome::kContinue);

  Bytes response = *peer.Answer(challenge.message);
  Result success_request = manager_->Round(session, response);
  EXPECT_EQ(ToHex(manager_->Round(session, response).message),
            ToHex(success_request.message));
  EXPECT_EQ(credentials_.lookups_, 1);  // verified once

  Bytes ack = *peer.Answer(success_request.message);
  Result done = manager_->Round(session, ack);
  ASSERT_EQ(done.outcome, Outcome::kSuccess);
  Result done_again = manager_->Round(session, ack);
  EXPECT_EQ(done_again.outcome, Outcome::kSuccess);
  EXPECT_EQ(ToHex(done_again.msk.span()), ToHex(done.msk.span()));
  EXPECT_EQ(results_, std::vector<std::string>{"success"});

  // A stale duplicate of an earlier round gets its old reply.
  EXPECT_EQ(ToHex(manager_->Round(session, identity).message),
            ToHex(challenge.message));
  EXPECT_EQ(manager_->Round(session, ack).outcome, Outcome::kSuccess);
  // Anything new after the end is a failure and changes nothing.
  Bytes other = ack;
  other.push_back(0);  // padding makes it a different message
  EXPECT_EQ(manager_->Round(session, other).outcome, Outcome::kFailure);
  EXPECT_EQ(manager_->Round(session, ack).outcome, Outcome::kSuccess);
  EXPECT_EQ(results_, std::vector<std::string>{"success"});
}

TEST_F(EapSessionTest, WrongIdentifierFails) {
  MakeManager();
  TestPeer peer("alice", "alice", "correct horse");
  Result r = *manager_->Start({});
  Bytes identity = *peer.Answer(r.message);
  identity[1] ^= 0x5a;
  Result bad = manager_->Round(r.session, identity);
  EXPECT_EQ(bad.outcome, Outcome::kFailure);
  auto packet = ParsePacket(bad.message);
  ASSERT_TRUE(packet.ok());
  EXPECT_EQ(packet->code, Code::kFailure);
  EXPECT_EQ(packet->identifier, r.message[1]);
  EXPECT_EQ(results_, std::vector<std::string>{"protocol_error"});
  // The session is over; a correct answer now fails too.
  identity[1] ^= 0x5a;
  EXPECT_EQ(manager_->Round(r.session, identity).outcome, Outcome::kFailure);
}

TEST_F(EapSessionTest, WrongTypesAndNakFail) {
  MakeManager();
  TestPeer peer("alice", "alice", "correct horse");
  {
    // Not an Identity response to the Identity request.
    Result r = *manager_->Start({});
    const uint8_t data[] = {0x10};
    EXPECT_EQ(manager_->Round(r.session, BuildResponse(r.message[1], 4, data))
                  .outcome,
              Outcome::kFailure);
  }
  {
    // Nak (only EAP-MD5 acceptable) to the MSCHAPv2 challenge.
    Result r = *manager_->Start({});
    r = manager_->Round(r.session, *peer.Answer(r.message));
    ASSERT_EQ(r.outcome, Outcome::kContinue);
    const uint8_t md5[] = {4};
    Result nak =
        manager_->Round(r.session, BuildResponse(r.message[1], type::kNak, md5));
    EXPECT_EQ(nak.outcome, Outcome::kFailure);
    EXPECT_EQ(ParsePacket(nak.message)->code, Code::kFailure);
  }
  {
    // A Request (code 1) from the peer.
    Result r = *manager_->Start({});
    Bytes request = BuildIdentityRequest(r.message[1]);
    EXPECT_EQ(manager_->Round(r.session, request).outcome, Outcome::kFailure);
  }
  {
    // MS-CHAPv2 Challenge opcode in a response.
    Result r = *manager_->Start({});
    r = manager_->Round(r.session, *peer.Answer(r.message));
    Bytes bad = BuildChallengeRequest(r.message[1], 1, Bytes(16), "x");
    bad[0] = static_cast<uint8_t>(Code::kResponse);
    EXPECT_EQ(manager_->Round(r.session, bad).outcome, Outcome::kFailure);
  }
  EXPECT_EQ(results_, (std::vector<std::string>{"protocol_error", "failure",
                                                 "protocol_error",
                                                 "protocol_error"}));
}

// Every truncation of every valid response fails cleanly.
TEST_F(EapSessionTest, TruncatedPacketsFailWithoutCrashing) {
  MakeManager();
  TestPeer peer("alice", "alice", "correct horse");
  Result r = *manager_->Start({});
  std::vector<Bytes> answers;
  while (r.outcome == Outcome::kContinue) {
    Bytes answer = *peer.Answer(r.message);
    answers.push_back(answer);
    r = manager_->Round(r.session, answer);
  }
  ASSERT_EQ(r.outcome, Outcome::kSuccess);
  for (size_t stage = 0; stage < answers.size(); ++stage) {
    for (size_t n = 0; n < answers[stage].size(); ++n) {
      // Drive a fresh conversation to `stage`, then send a truncated packet.
      TestPeer p("alice", "alice", "correct horse");
      Result s = *manager_->Start({});
      for (size_t k = 0; k < stage; ++k) {
        s = manager_->Round(s.session, *p.Answer(s.message));
      }
      const Bytes real = *p.Answer(s.message);
      const Bytes truncated(real.begin(),
                            real.begin() + std::min(n, real.size()));
      Result bad = manager_->Round(s.session, truncated);
      EXPECT_EQ(bad.outcome, Outcome::kFailure) << stage << "/" << n;
      EXPECT_TRUE(bad.msk.empty());
    }
  }
}

TEST_F(EapSessionTest, SessionsExpireAfterTheTtl) {
  MakeManager();
  TestPeer peer("alice", "alice", "correct horse");
  Result r = *manager_->Start({});
  EXPECT_EQ(manager_->active_sessions(), 1u);
  now_ += absl::Seconds(59);
  r = manager_->Round(r.session, *peer.Answer(r.message));
  ASSERT_EQ(r.outcome, Outcome::kContinue);  // progress restarts the TTL
  now_ += absl::Seconds(61);
  Result late = manager_->Round(r.session, *peer.Answer(r.message));
  EXPECT_EQ(late.outcome, Outcome::kFailure);
  EXPECT_EQ(ParsePacket(late.message)->code, Code::kFailure);
  EXPECT_EQ(manager_->active_sessions(), 0u);
  EXPECT_EQ(results_,
            (std::vector<std::string>{"expired", "unknown_session"}));

  // Abandoned sessions are swept.
  ASSERT_TRUE(manager_->Start({}).ok());
  ASSERT_TRUE(manager_->Start({}).ok());
  EXPECT_EQ(manager_->Sweep(), 2u);
  now_ += absl::Seconds(61);
  EXPECT_EQ(manager_->Sweep(), 0u);
  EXPECT_EQ(manager_->stored_sessions(), 0u);
  EXPECT_EQ(active_, 0u);
  EXPECT_EQ(std::count(results_.begin(), results_.end(), "expired"), 3);
}

TEST_F(EapSessionTest, FinishedSessionsLingerThenGo) {
  MakeManager();
  TestPeer peer("alice", "alice", "correct horse");
  ASSERT_EQ(Converse(peer).outcome, Outcome::kSuccess);
  EXPECT_EQ(manager_->stored_sessions(), 1u);
  now_ += absl::Seconds(11);
  manager_->Sweep();
  EXPECT_EQ(manager_->stored_sessions(), 0u);
  EXPECT_EQ(results_, std::vector<std::string>{"success"});  // not "expired"
}

TEST_F(EapSessionTest, SessionCountIsBounded) {
  max_sessions_ = 2;
  MakeManager();
  ASSERT_TRUE(manager_->Start({}).ok());
  ASSERT_TRUE(manager_->Start({}).ok());
  absl::StatusOr<Result> third = manager_->Start({});
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  now_ += absl::Seconds(61);
  EXPECT_TRUE(manager_->Start({}).ok());
}

// One address cannot take the whole table; others still get sessions, and
// the address gets one again when one of its sessions is swept.
TEST_F(EapSessionTest, SessionsPerAddressAreBounded) {
  per_address_ = 2;
  MakeManager();
  const Bytes a = {192, 0, 2, 10}, b = {192, 0, 2, 11};
  ASSERT_TRUE(manager_->Start({}, a).ok());
  now_ += absl::Seconds(30);
  ASSERT_TRUE(manager_->Start({}, a).ok());
  absl::StatusOr<Result> third = manager_->Start({}, a);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(manager_->Start({}, b).ok());
  EXPECT_TRUE(manager_->Start({}).ok());  // no address: not counted
  EXPECT_TRUE(manager_->Start({}).ok());
  now_ += absl::Seconds(31);  // the first one expires
  manager_->Sweep();
  EXPECT_TRUE(manager_->Start({}, a).ok());
  EXPECT_EQ(manager_->Start({}, a).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(EapSessionTest, UnknownSessionFails) {
  MakeManager();
  const Bytes answer = BuildResponse(7, type::kIdentity, {});
  Result r = manager_->Round("0123456789abcdef0123456789abcdef", answer);
  EXPECT_EQ(r.outcome, Outcome::kFailure);
  EXPECT_EQ(ToHex(r.message), "04070004");
  EXPECT_EQ(manager_->Round("", {}).outcome, Outcome::kFailure);
}

}  // namespace
}  // namespace vpn::auth::eap
