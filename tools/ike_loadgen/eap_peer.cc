#include "tools/ike_loadgen/eap_peer.h"

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/crypto/mschapv2.h"

namespace vpn::loadgen {
namespace {

constexpr uint8_t kCodeRequest = 1;
constexpr uint8_t kCodeResponse = 2;
constexpr uint8_t kCodeSuccess = 3;
constexpr uint8_t kCodeFailure = 4;
constexpr uint8_t kTypeIdentity = 1;
constexpr uint8_t kTypeMsChapV2 = 26;
constexpr uint8_t kOpChallenge = 1;
constexpr uint8_t kOpResponse = 2;
constexpr uint8_t kOpSuccess = 3;
constexpr uint8_t kOpFailure = 4;
constexpr size_t kChallengeSize = 16;

// The user part of "DOMAIN\user": the challenge hash uses it (RFC 2759 §4).
std::string UserPart(const std::string& name) {
  const size_t slash = name.rfind('\\');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

}  // namespace

crypto::Bytes EapPacket(uint8_t code, uint8_t identifier, uint8_t type,
                        crypto::ByteSpan type_data) {
  const bool has_type = code == kCodeRequest || code == kCodeResponse;
  const size_t length = 4 + (has_type ? 1 + type_data.size() : 0);
  crypto::Bytes packet = {code, identifier, static_cast<uint8_t>(length >> 8),
                          static_cast<uint8_t>(length)};
  if (has_type) {
    packet.push_back(type);
    packet.insert(packet.end(), type_data.begin(), type_data.end());
  }
  return packet;
}

EapMsChapV2Peer::EapMsChapV2Peer(std::string identity, std::string password)
    : identity_(std::move(identity)) {
  absl::StatusOr<crypto::SecretBytes> unicode = crypto::mschapv2::PasswordToUnicode(password);
  if (unicode.ok()) {
    password_hash_ = crypto::mschapv2::NtPasswordHash(crypto::GetProvider(), unicode->span());
  }
}

absl::StatusOr<EapMsChapV2Peer::Step> EapMsChapV2Peer::Process(crypto::ByteSpan packet) {
  if (packet.size() < 4 || ((size_t{packet[2]} << 8) | packet[3]) != packet.size()) {
    return absl::InvalidArgumentError("EAP length");
  }
  const uint8_t code = packet[0], identifier = packet[1];
  Step step;
  if (code == kCodeSuccess) {
    if (!server_verified_ || msk_.empty()) {
      return absl::FailedPreconditionError("EAP-Success before MSCHAPv2 Success");
    }
    step.kind = Step::Kind::kSuccess;
    return step;
  }
  if (code == kCodeFailure) {
    step.kind = Step::Kind::kFailure;
    step.reason = "EAP-Failure";
    return step;
  }
  if (code != kCodeRequest || packet.size() < 5) {
    return absl::InvalidArgumentError("EAP: not a request");
  }
  const uint8_t type = packet[4];
  if (type == kTypeIdentity) {
    step.response = EapPacket(
        kCodeResponse, identifier, kTypeIdentity,
        crypto::ByteSpan(reinterpret_cast<const uint8_t*>(identity_.data()), identity_.size()));
    return step;
  }
  if (type == kTypeMsChapV2) return ProcessMsChapV2(identifier, packet.subspan(5));
  // RFC 3748 5.3: a Nak proposing MSCHAPv2.
  const uint8_t nak[] = {kTypeMsChapV2};
  step.response = EapPacket(kCodeResponse, identifier, 3, nak);
  return step;
}

absl::StatusOr<EapMsChapV2Peer::Step> EapMsChapV2Peer::ProcessMsChapV2(uint8_t identifier,
                                                                       crypto::ByteSpan data) {
  // OpCode(1) MS-CHAPv2-ID(1) MS-Length(2) ...
  if (data.size() < 4) return absl::InvalidArgumentError("MSCHAPv2: short");
  const crypto::Provider& provider = crypto::GetProvider();
  const uint8_t opcode = data[0], ms_id = data[1];
  Step step;
  if (opcode == kOpChallenge) {
    // Value-Size(1) = 16, Challenge(16), Name.
    if (data.size() < 5 + kChallengeSize || data[4] != kChallengeSize) {
      return absl::InvalidArgumentError("MSCHAPv2 Challenge: bad value size");
    }
    if (password_hash_.empty()) return absl::InvalidArgumentError("password");
    const crypto::ByteSpan challenge = data.subspan(5, kChallengeSize);
    crypto::Bytes peer_challenge(kChallengeSize);
    provider.RandomBytes(absl::MakeSpan(peer_challenge));
    const std::string user = UserPart(identity_);
    absl::StatusOr<crypto::Bytes> nt = crypto::mschapv2::GenerateNtResponse(
        provider, challenge, peer_challenge, user, password_hash_.span());
    if (!nt.ok()) return nt.status();
    nt_response_ = std::move(*nt);
    absl::StatusOr<std::string> expected = crypto::mschapv2::GenerateAuthenticatorResponse(
        provider, password_hash_.span(), nt_response_, peer_challenge, challenge, user);
    if (!expected.ok()) return expected.status();
    expected_authenticator_response_ = std::move(*expected);
    // OpCode, MS-CHAPv2-ID, MS-Length, Value-Size 49, Peer-Challenge(16),
    // Reserved(8), NT-Response(24), Flags(1), Name.
    const size_t ms_length = 4 + 1 + 49 + identity_.size();
    crypto::Bytes body = {kOpResponse, ms_id, static_cast<uint8_t>(ms_length >> 8),
                          static_cast<uint8_t>(ms_length), 49};
    body.insert(body.end(), peer_challenge.begin(), peer_challenge.end());
    body.insert(body.end(), 8, 0);
    body.insert(body.end(), nt_response_.begin(), nt_response_.end());
    body.push_back(0);
    body.insert(body.end(), identity_.begin(), identity_.end());
    step.response = EapPacket(kCodeResponse, identifier, kTypeMsChapV2, body);
    return step;
  }
  const std::string message(reinterpret_cast<const char*>(data.data()) + 4, data.size() - 4);
  if (opcode == kOpSuccess) {
    if (nt_response_.empty()) return absl::FailedPreconditionError("Success before Response");
    // "S=<40 hex> M=<message>"; the M= part may be absent.
    const std::string s = std::string(absl::string_view(message).substr(0, 42));
    if (!crypto::ConstantTimeEquals(
            crypto::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()),
            crypto::ByteSpan(
                reinterpret_cast<const uint8_t*>(expected_authenticator_response_.data()),
                expected_authenticator_response_.size()))) {
      step.kind = Step::Kind::kFailure;
      step.reason = "MSCHAPv2: bad authenticator response";
      return step;
    }
    absl::StatusOr<crypto::SecretBytes> msk =
        crypto::mschapv2::DeriveMsk(provider, password_hash_.span(), nt_response_);
    if (!msk.ok()) return msk.status();
    msk_ = std::move(*msk);
    server_verified_ = true;
    const uint8_t ack[] = {kOpSuccess};
    step.response = EapPacket(kCodeResponse, identifier, kTypeMsChapV2, ack);
    return step;
  }
  if (opcode == kOpFailure) {
    step.kind = Step::Kind::kFailure;
    step.reason = "MSCHAPv2 Failure";
    for (absl::string_view token : absl::StrSplit(message, ' ')) {
      if (absl::StartsWith(token, "E=")) step.reason += " " + std::string(token);
    }
    return step;
  }
  return absl::InvalidArgumentError("MSCHAPv2: unknown opcode");
}

}  // namespace vpn::loadgen
