#include "auth-service/signer/auth_octets.h"

#include "absl/strings/str_cat.h"
#include "common/ipsec/transforms.h"

namespace vpn::auth {
namespace {

constexpr size_t kIkeHeaderSize = 28;       // RFC 7296 §3.1
constexpr size_t kGenericHeaderSize = 4;    // §3.2
constexpr size_t kProposalHeaderSize = 8;   // §3.3.1
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

uint16_t Be16(absl::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) << 8 | static_cast<uint8_t>(s[at + 1]));
}
uint32_t Be32(absl::string_view s, size_t at) {
  return static_cast<uint32_t>(Be16(s, at)) << 16 | Be16(s, at + 2);
}

AuthOctetsCheck Fail(AuthOctetsError error, std::string detail) {
  AuthOctetsCheck check;
  check.error = error;
  check.detail = std::move(detail);
  return check;
}

// The SA payload's body: exactly one IKE proposal (an IKE_SA_INIT response
// carries the one chosen) with exactly one PRF transform.
AuthOctetsCheck CheckSa(absl::string_view body, uint16_t* prf) {
  if (body.size() < kProposalHeaderSize) {
    return Fail(AuthOctetsError::kBadProposal, "SA payload without a proposal");
  }
  const uint8_t last = static_cast<uint8_t>(body[0]);
  const size_t length = Be16(body, 2);
  const uint8_t protocol = static_cast<uint8_t>(body[5]);
  const size_t spi_size = static_cast<uint8_t>(body[6]);
  const size_t transforms = static_cast<uint8_t>(body[7]);
  if (last != 0 || length != body.size()) {
    return Fail(AuthOctetsError::kBadProposal, "not exactly one proposal");
  }
  if (protocol != kProtocolIke || spi_size != 0) {
    return Fail(AuthOctetsError::kBadProposal, "not an IKE proposal");
  }
  size_t at = kProposalHeaderSize;
  size_t prfs = 0;
  for (size_t i = 0; i < transforms; ++i) {
    if (body.size() - at < kTransformHeaderSize) {
      return Fail(AuthOctetsError::kBadProposal, "transform truncated");
    }
    const uint8_t more = static_cast<uint8_t>(body[at]);
    const size_t transform_length = Be16(body, at + 2);
    if (transform_length < kTransformHeaderSize || transform_length > body.size() - at ||
        (more != 0 && more != 3) || (more == 0) != (i + 1 == transforms)) {
      return Fail(AuthOctetsError::kBadProposal, "bad transform length or chain");
    }
    if (static_cast<uint8_t>(body[at + 4]) == kTransformPrf) {
      ++prfs;
      *prf = Be16(body, at + 6);
    }
    at += transform_length;
  }
  if (at != body.size()) return Fail(AuthOctetsError::kBadProposal, "bytes after the transforms");
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
  if (message.size() < kIkeHeaderSize) {
    return Fail(AuthOctetsError::kResponseTruncated, "shorter than an IKE header");
  }
  const uint8_t version = static_cast<uint8_t>(message[17]);
  const uint8_t exchange = static_cast<uint8_t>(message[18]);
  const uint8_t flags = static_cast<uint8_t>(message[19]);
  if (version >> 4 != 2 || exchange != kIkeSaInit || (flags & kFlagResponse) == 0 ||
      (flags & kFlagInitiator) != 0 || Be32(message, 20) != 0) {
    return Fail(AuthOctetsError::kNotIkeSaInitResponse,
                "not an IKE_SA_INIT response from the responder with message ID 0");
  }
  if (Be32(message, 24) != message.size()) {
    return Fail(AuthOctetsError::kResponseTruncated, "the header's length is not the message's");
  }
  uint8_t next = static_cast<uint8_t>(message[16]);
  size_t at = kIkeHeaderSize;
  bool sa = false, ke = false, nonce = false;
  uint16_t prf = 0;
  while (next != 0) {
    if (message.size() - at < kGenericHeaderSize) {
      return Fail(AuthOctetsError::kBadPayloadChain, "payload header truncated");
    }
    const size_t length = Be16(message, at + 2);
    if (length < kGenericHeaderSize || length > message.size() - at) {
      return Fail(AuthOctetsError::kBadPayloadChain, "payload length out of bounds");
    }
    const absl::string_view body = message.substr(at + kGenericHeaderSize, length - kGenericHeaderSize);
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
    next = static_cast<uint8_t>(message[at]);
    at += length;
  }
  if (at != message.size()) {
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
