#include "auth-service/eap/test_peer.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "auth-service/eap/mschapv2_server.h"
#include "common/crypto/mschapv2.h"

namespace vpn::auth::eap::testing {
namespace {

std::string Token(absl::string_view message, absl::string_view key) {
  for (absl::string_view token : absl::StrSplit(message, ' ')) {
    if (absl::StartsWith(token, key)) {
      return std::string(token.substr(key.size()));
    }
  }
  return "";
}

}  // namespace

TestPeer::TestPeer(std::string identity, std::string name, std::string password,
                   Bytes peer_challenge)
    : identity_(std::move(identity)),
      name_(std::move(name)),
      password_(std::move(password)),
      peer_challenge_(std::move(peer_challenge)) {}

absl::StatusOr<Bytes> TestPeer::Respond(uint8_t identifier,
                                        uint8_t ms_chapv2_id,
                                        ByteSpan challenge) {
  const crypto::Provider& provider = crypto::GetProvider();
  challenge_.assign(challenge.begin(), challenge.end());
  if (peer_challenge_.empty()) {
    peer_challenge_.resize(kChallengeSize);
    provider.RandomBytes(absl::MakeSpan(peer_challenge_));
  }
  auto unicode = crypto::mschapv2::PasswordToUnicode(password_);
  if (!unicode.ok()) return unicode.status();
  const crypto::SecretBytes hash =
      crypto::mschapv2::NtPasswordHash(provider, unicode->span());
  const std::string user(MsChapV2Server::UserPart(name_));  // std::string

  auto nt = crypto::mschapv2::GenerateNtResponse(provider, challenge_,
                                                 peer_challenge_, user,
                                                 hash.span());
  if (!nt.ok()) return nt.status();
  nt_response_ = *nt;
  auto expected = crypto::mschapv2::GenerateAuthenticatorResponse(
      provider, hash.span(), nt_response_, peer_challenge_, challenge_, user);
  if (!expected.ok()) return expected.status();
  auth_response_ = *expected;
  return BuildResponsePacket(identifier, ms_chapv2_id, peer_challenge_,
                             nt_response_, name_);
}

absl::StatusOr<Bytes> TestPeer::Answer(ByteSpan request) {
  absl::StatusOr<Packet> packet = ParsePacket(request);
  if (!packet.ok()) return packet.status();
  if (packet->code != Code::kRequest) {
    return absl::FailedPreconditionError("not a request");
  }
  if (packet->type == type::kIdentity) {
    const ByteSpan id(reinterpret_cast<const uint8_t*>(identity_.data()),
                      identity_.size());
    return BuildResponse(packet->identifier, type::kIdentity, id);
  }
  if (packet->type != type::kMsChapV2 || packet->type_data.empty()) {
    return absl::UnimplementedError("unsupported request");
  }
  if (packet->type_data[0] == opcode::kChallenge) {
    absl::StatusOr<Challenge> challenge = ParseChallenge(*packet);
    if (!challenge.ok()) return challenge.status();
    return Respond(packet->identifier, challenge->ms_chapv2_id,
                   challenge->challenge);
  }
  absl::StatusOr<StatusRequest> status = ParseStatusRequest(*packet);
  if (!status.ok()) return status.status();
  if (status->opcode == opcode::kSuccess) {
    const std::string s = Token(status->message, "S=");
    if ("S=" + s != auth_response_) {
      return absl::PermissionDeniedError("authenticator response mismatch");
    }
    server_authenticated_ = true;
    return BuildPeerStatus(packet->identifier, opcode::kSuccess);
  }
  failure_message_ = std::string(status->message);
  if (Token(status->message, "R=") == "1" && !retry_password_.empty()) {
    const std::string hex = Token(status->message, "C=");
    if (hex.size() != 2 * kChallengeSize ||
        hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return absl::InvalidArgumentError("bad C= in Failure request");
    }
    const std::string bytes = absl::HexStringToBytes(hex);
    password_ = retry_password_;
    peer_challenge_.clear();
    const Bytes challenge(bytes.begin(), bytes.end());
    return Respond(packet->identifier, status->ms_chapv2_id, challenge);
  }
  return BuildPeerStatus(packet->identifier, opcode::kFailure);
}

}  // namespace vpn::auth::eap::testing
