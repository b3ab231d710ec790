#include "auth-service/eap/mschapv2_server.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/mschapv2.h"

namespace vpn::auth::eap {
namespace {

constexpr int kErrorAuthenticationFailure = 691;  // RFC 2759 §6

std::string HexUpper(ByteSpan bytes) {
  return absl::AsciiStrToUpper(absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size())));
}

// A per-process random hash, verified against when the user does not exist
// so unknown users cost the same work as wrong passwords.
const crypto::SecretBytes& DummyHash(const crypto::Provider& provider) {
  static const crypto::SecretBytes* hash = [&provider] {
    auto* h = new crypto::SecretBytes(16);
    provider.RandomBytes(h->mutable_span());
    return h;
  }();
  return *hash;
}

}  // namespace

MsChapV2Server::MsChapV2Server(const crypto::Provider& provider,
                               CredentialSource& credentials,
                               MsChapV2Options options,
                               ByteSpan peer_address)
    : provider_(provider),
      credentials_(credentials),
      options_(std::move(options)),
      peer_address_(peer_address.begin(), peer_address.end()),
      challenge_(kChallengeSize),
      retries_left_(options_.retries) {}

absl::string_view MsChapV2Server::UserPart(absl::string_view name) {
  const size_t slash = name.find('\\');
  return slash == absl::string_view::npos ? name : name.substr(slash + 1);
}

void MsChapV2Server::NewChallenge() {
  if (options_.random) {
    options_.random(absl::MakeSpan(challenge_));
  } else {
    provider_.RandomBytes(absl::MakeSpan(challenge_));
  }
}

std::string MsChapV2Server::FailureMessage(bool retry) const {
  return absl::StrCat("E=", kErrorAuthenticationFailure, " R=", retry ? 1 : 0,
                      " C=", HexUpper(challenge_),
                      " V=3 M=Authentication failed");
}

MsChapV2Server::Step MsChapV2Server::Fail(std::string reason) {
  state_ = State::kIdle;
  msk_ = crypto::SecretBytes();
  Step step;
  step.kind = Step::Kind::kFailure;
  step.reason = std::move(reason);
  return step;
}

absl::StatusOr<Bytes> MsChapV2Server::Initiate(uint8_t identifier) {
  if (state_ != State::kIdle) {
    return absl::FailedPreconditionError("EAP-MSCHAPv2 already started");
  }
  NewChallenge();
  ms_chapv2_id_ = identifier;
  state_ = State::kExpectResponse;
  return BuildChallengeRequest(identifier, ms_chapv2_id_, challenge_,
                               options_.server_name);
}

absl::StatusOr<MsChapV2Server::Step> MsChapV2Server::Process(
    const Packet& response, uint8_t next_identifier) {
  absl::StatusOr<PeerMessage> message = ParsePeerMessage(response);
  if (!message.ok()) return message.status();
  switch (state_) {
    case State::kExpectResponse:
      if (message->opcode == opcode::kResponse) {
        return ProcessResponse(message->response, next_identifier);
      }
      if (message->opcode == opcode::kFailure) {
        // The peer gives up (declines a retry).
        return Fail("peer ended EAP-MSCHAPv2 with a Failure response");
      }
      break;
    case State::kExpectSuccessAck:
      if (message->opcode == opcode::kSuccess) {
        state_ = State::kIdle;
        Step step;
        step.kind = Step::Kind::kSuccess;
        step.msk = std::move(msk_);
        step.identity = std::move(user_);
        return step;
      }
      if (message->opcode == opcode::kFailure) {
        return Fail("peer rejected the authenticator response");
      }
      break;
    case State::kExpectFailureAck:
      if (message->opcode == opcode::kFailure) {
        return Fail("authentication failed; peer acknowledged");
      }
      break;
    case State::kIdle:
      return absl::FailedPreconditionError("EAP-MSCHAPv2 not in progress");
  }
  return MakeEapError(EapError::kBadOpCode,
                      absl::StrCat("unexpected opcode ", message->opcode));
}

absl::StatusOr<MsChapV2Server::Step> MsChapV2Server::ProcessResponse(
    const Response& response, uint8_t next_identifier) {
  const absl::string_view user = UserPart(response.name);
  const std::string_view user_std(user.data(), user.size());
  AttemptLimiter* const limiter = options_.limiter;
  if (limiter != nullptr && !limiter->Begin(user, peer_address_)) {
    return Reject("attempt refused: too many failures (locked out)",
                  response.ms_chapv2_id, next_identifier);
  }
  auto finish = [&](AttemptLimiter::Outcome outcome) {
    if (limiter != nullptr) limiter->Finish(user, peer_address_, outcome);
  };
  absl::StatusOr<crypto::SecretBytes> hash =
      user.empty() ? absl::NotFoundError("empty user name")
                   : credentials_.NtHash(user);
  if (!hash.ok() && !absl::IsNotFound(hash.status())) {
    finish(AttemptLimiter::Outcome::kNotChecked);
    return absl::UnavailableError(
        absl::StrCat("credential lookup failed: ", hash.status().message()));
  }
  const bool known = hash.ok();
  const ByteSpan password_hash =
      known ? hash->span() : DummyHash(provider_).span();
  // Constant time in the NT-Response; unknown users do the same work.
  const bool verified =
      crypto::mschapv2::VerifyNtResponse(
          provider_, challenge_, response.peer_challenge, user_std, password_hash,
          response.nt_response) &&
      known;
  finish(verified ? AttemptLimiter::Outcome::kSuccess
                  : AttemptLimiter::Outcome::kFailure);

  if (verified) {
    absl::StatusOr<std::string> authenticator =
        crypto::mschapv2::GenerateAuthenticatorResponse(
            provider_, password_hash, response.nt_response,
            response.peer_challenge, challenge_, user_std);
    absl::StatusOr<crypto::SecretBytes> msk = crypto::mschapv2::DeriveMsk(
        provider_, password_hash, response.nt_response);
    if (!authenticator.ok()) return authenticator.status();
    if (!msk.ok()) return msk.status();
    msk_ = *std::move(msk);
    user_ = std::string(user);
    state_ = State::kExpectSuccessAck;
    Step step;
    step.kind = Step::Kind::kContinue;
    // RFC 2759 §5: the Success packet echoes the Response's identifier.
    step.request = BuildStatusRequest(
        next_identifier, opcode::kSuccess, response.ms_chapv2_id,
        absl::StrCat(*authenticator, " M=Welcome"));
    return step;
  }

  return Reject(known ? "wrong password" : "unknown or disabled user",
                response.ms_chapv2_id, next_identifier);
}

MsChapV2Server::Step MsChapV2Server::Reject(std::string reason,
                                            uint8_t ms_chapv2_id,
                                            uint8_t next_identifier) {
  if (retries_left_ > 0) {
    --retries_left_;
    NewChallenge();
    state_ = State::kExpectResponse;
    Step step;
    step.kind = Step::Kind::kContinue;
    step.reason = reason;
    step.request =
        BuildStatusRequest(next_identifier, opcode::kFailure, ms_chapv2_id,
                           FailureMessage(true));
    return step;
  }
  if (options_.failure_request) {
    NewChallenge();  // the C= field is required even when R=0
    state_ = State::kExpectFailureAck;
    Step step;
    step.kind = Step::Kind::kContinue;
    step.reason = reason;
    step.request =
        BuildStatusRequest(next_identifier, opcode::kFailure, ms_chapv2_id,
                           FailureMessage(false));
    return step;
  }
  return Fail(std::move(reason));
}

}  // namespace vpn::auth::eap
