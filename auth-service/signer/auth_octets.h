// What auth-service agrees to sign with the gateway key: RFC 7296 §2.15
// ResponderSignedOctets and nothing else, so that whoever may call Sign
// cannot use the key as a general signing oracle.
//
//   ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//
// RealMessage2 must parse as an IKE_SA_INIT response (header, payload chain,
// one IKE proposal with a PRF, KE and Nonce payloads, no SK), NonceIData is
// 16 to 256 octets (§3.9), and MACedIDForR is as long as that PRF's output.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vpn::auth {

enum class AuthOctetsError {
  kResponseTruncated,    // shorter than its header or a payload says
  kNotIkeSaInitResponse, // version, exchange type, flags or message ID
  kBadPayloadChain,      // a length or a payload that has no place there
  kBadProposal,          // not exactly one IKE proposal with one PRF
  kMissingPayload,       // no SA, KE or Nonce
  kUnsupportedPrf,
  kBadNonceLength,
  kBadMacLength,
};
const char* AuthOctetsErrorName(AuthOctetsError error);

struct AuthOctetsCheck {
  bool ok = false;
  AuthOctetsError error = AuthOctetsError::kResponseTruncated;
  std::string detail;  // for the INVALID_ARGUMENT message
  uint16_t prf = 0;    // the response's PRF transform ID
};

// Checks the three parts; never reads past any of them.
AuthOctetsCheck CheckResponderSignedOctets(absl::string_view ike_sa_init_response,
                                           absl::string_view initiator_nonce,
                                           absl::string_view maced_id);

}  // namespace vpn::auth
