#include "auth-service/signer/auth_octets.h"

#include "absl/strings/str_cat.h"
#include "common/ipsec/transforms.h"
#include "common/wire/reader.h"

namespace vpn::auth {
namespace {

constexpr size_t kGenericHeaderSize = 4;    // RFC 7296 §3.2
constexpr size_t kTransformHeaderSize = 8;  // §3.3.2
constexpr uint8_t kIkeSaInit = 34;
constexpr uint8_t kFlagResponse = 0x20;
constexpr uint8_t kFlagInitiator = 0x08;
constexpr uint8_t kPayloadSa = 33;
constexpr uint8_t kPayloadKe = 34;
constexpr uint8_t kPayloadNonce = 40;
constexpr uint8_t kPayloadSk = 46;
constexpr uint8_t kPayloadSkf = 53;
constexpr uint8_t kProtocolIke = 1;
constexpr uint8_t kTransformPrf = 2;
constexpr size_t kMinNonce = 16;
constexpr size_t kMaxNonce = 256;

absl::Span<const uint8_t> Bytes(absl::string_view s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

AuthOctetsCheck Fail(AuthOctetsError error, std::string detail) {
  AuthOctetsCheck check;
  check.error = error;
  check.detail = std::move(detail);
  return check;
}

// The SA payload's body: exactly one IKE proposal (an IKE_SA_INIT response
// carries the one chosen) with exactly one PRF transform.
AuthOctetsCheck CheckSa(absl::Span<const uint8_t> body, uint16_t* prf) {
  wire::Reader proposal(body);
  uint8_t last = 0, reserved = 0, number = 0, protocol = 0, spi_size = 0, transforms = 0;
  uint16_t length = 0;
  if (!proposal.ReadU8(&last) || !proposal.ReadU8(&reserved) || !proposal.ReadU16(&length) ||
      !proposal.ReadU8(&number) || !proposal.ReadU8(&protocol) || !proposal.ReadU8(&spi_size) ||
      !proposal.ReadU8(&transforms)) {
    return Fail(AuthOctetsError::kBadProposal, "SA payload without a proposal");
  }
  if (last != 0 || length != body.size()) {
    return Fail(AuthOctetsError::kBadProposal, "not exactly one proposal");
  }
  if (protocol != kProtocolIke || spi_size != 0) {
    return Fail(AuthOctetsError::kBadProposal, "not an IKE proposal");
  }
  size_t prfs = 0;
  for (size_t i = 0; i < transforms; ++i) {
    uint8_t more = 0, type = 0;
    uint16_t transform_length = 0, id = 0;
    absl::Span<const uint8_t> attributes;
    if (!proposal.ReadU8(&more) || !proposal.ReadU8(&reserved) ||
        !proposal.ReadU16(&transform_length) || !proposal.ReadU8(&type) ||
        !proposal.ReadU8(&reserved) || !proposal.ReadU16(&id)) {
      return Fail(AuthOctetsError::kBadProposal, "transform truncated");
    }
    if (transform_length < kTransformHeaderSize ||
        !proposal.ReadSpan(transform_length - kTransformHeaderSize, &attributes) ||
        (more != 0 && more != 3) || (more == 0) != (i + 1 == transforms)) {
      return Fail(AuthOctetsError::kBadProposal, "bad transform length or chain");
    }
    if (type == kTransformPrf) {
      ++prfs;
      *prf = id;
    }
  }
  if (!proposal.empty()) return Fail(AuthOctetsError::kBadProposal, "bytes after the transforms");
  if (prfs != 1) return Fail(AuthOctetsError::kBadProposal, "not exactly one PRF");
  AuthOctetsCheck ok;
  ok.ok = true;
  return ok;
}

}  // namespace

const char* AuthOctetsErrorName(AuthOctetsError error) {
  switch (error) {
    case AuthOctetsError::kResponseTruncated:
      return "response_truncated";
    case AuthOctetsError::kNotIkeSaInitResponse:
      return "not_ike_sa_init_response";
    case AuthOctetsError::kBadPayloadChain:
      return "bad_payload_chain";
    case AuthOctetsError::kBadProposal:
      return "bad_proposal";
    case AuthOctetsError::kMissingPayload:
      return "missing_payload";
    case AuthOctetsError::kUnsupportedPrf:
      return "unsupported_prf";
    case AuthOctetsError::kBadNonceLength:
      return "bad_nonce_length";
    case AuthOctetsError::kBadMacLength:
      return "bad_mac_length";
  }
  return "unknown";
}

AuthOctetsCheck CheckResponderSignedOctets(absl::string_view message,
                                           absl::string_view initiator_nonce,
                                           absl::string_view maced_id) {
  wire::Reader reader(Bytes(message));
  uint8_t next = 0, version = 0, exchange = 0, flags = 0;
  uint32_t message_id = 0, length = 0;
  if (!reader.Skip(16) || !reader.ReadU8(&next) || !reader.ReadU8(&version) ||
      !reader.ReadU8(&exchange) || !reader.ReadU8(&flags) || !reader.ReadU32(&message_id) ||
      !reader.ReadU32(&length)) {
    return Fail(AuthOctetsError::kResponseTruncated, "shorter than an IKE header");
  }
  if (version >> 4 != 2 || exchange != kIkeSaInit || (flags & kFlagResponse) == 0 ||
      (flags & kFlagInitiator) != 0 || message_id != 0) {
    return Fail(AuthOctetsError::kNotIkeSaInitResponse,
                "not an IKE_SA_INIT response from the responder with message ID 0");
  }
  if (length != message.size()) {
    return Fail(AuthOctetsError::kResponseTruncated, "the header's length is not the message's");
  }
  bool sa = false, ke = false, nonce = false;
  uint16_t prf = 0;
  while (next != 0) {
    uint8_t following = 0, critical = 0;
    uint16_t payload_length = 0;
    absl::Span<const uint8_t> body;
    if (!reader.ReadU8(&following) || !reader.ReadU8(&critical) ||
        !reader.ReadU16(&payload_length)) {
      return Fail(AuthOctetsError::kBadPayloadChain, "payload header truncated");
    }
    if (payload_length < kGenericHeaderSize ||
        !reader.ReadSpan(payload_length - kGenericHeaderSize, &body)) {
      return Fail(AuthOctetsError::kBadPayloadChain, "payload length out of bounds");
    }
    switch (next) {
      case kPayloadSa: {
        if (sa) return Fail(AuthOctetsError::kBadPayloadChain, "two SA payloads");
        AuthOctetsCheck proposal = CheckSa(body, &prf);
        if (!proposal.ok) return proposal;
        sa = true;
        break;
      }
      case kPayloadKe:
        if (ke) return Fail(AuthOctetsError::kBadPayloadChain, "two KE payloads");
        ke = true;
        break;
      case kPayloadNonce:
        if (nonce) return Fail(AuthOctetsError::kBadPayloadChain, "two Nonce payloads");
        if (body.size() < kMinNonce || body.size() > kMaxNonce) {
          return Fail(AuthOctetsError::kBadPayloadChain, "Nr length out of 16..256");
        }
        nonce = true;
        break;
      case kPayloadSk:
      case kPayloadSkf:
        return Fail(AuthOctetsError::kBadPayloadChain, "an encrypted payload in IKE_SA_INIT");
      default:
        break;  // N, CERTREQ, V: carried as they are
    }
    next = following;
  }
  if (!reader.empty()) {
    return Fail(AuthOctetsError::kBadPayloadChain, "bytes after the last payload");
  }
  if (!sa || !ke || !nonce) {
    return Fail(AuthOctetsError::kMissingPayload, "an IKE_SA_INIT response has SA, KE and Nonce");
  }
  absl::StatusOr<size_t> prf_output = ipsec::PrfOutputSize(prf);
  if (!prf_output.ok()) return Fail(AuthOctetsError::kUnsupportedPrf, absl::StrCat("PRF ", prf));
  if (initiator_nonce.size() < kMinNonce || initiator_nonce.size() > kMaxNonce) {
    return Fail(AuthOctetsError::kBadNonceLength,
                absl::StrCat("initiator_nonce: ", initiator_nonce.size(),
                             " bytes, not 16 to 256"));
  }
  if (maced_id.size() != *prf_output) {
    return Fail(AuthOctetsError::kBadMacLength,
                absl::StrCat("maced_id: ", maced_id.size(), " bytes, the PRF gives ",
                             *prf_output));
  }
  AuthOctetsCheck ok;
  ok.ok = true;
  ok.prf = prf;
  return ok;
}

}  // namespace vpn::auth
