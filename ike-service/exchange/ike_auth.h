// IKE_AUTH (RFC 7296 §1.2, §2.15, §2.16): the gateway's certificate
// signature, the client's EAP rounds or certificate, the configuration
// payload and the first CHILD SA.
#pragma once

#include <string>
#include <vector>

#include "ike-service/auth_client/authenticator.h"
#include "ike-service/codec/payloads.h"
#include "ike-service/exchange/exchange_result.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/pool/address_pool.h"
#include "ike-service/sa/ike_sa.h"

namespace vpn::ike {

struct AuthServices {
  Authenticator* authenticator = nullptr;
  AddressPool* pool_v4 = nullptr;  // null: no IPv4 virtual addresses
  AddressPool* pool_v6 = nullptr;
};

// Handles one IKE_AUTH request on `sa` (locked by the caller).
ExchangeResult HandleIkeAuth(IkeSa& sa, const std::vector<codec::Payload>& request,
                             const ResponderPolicy& policy, const AuthServices& services);

// AUTH for a shared secret (the EAP MSK): prf(prf(secret, "Key Pad for
// IKEv2"), signed_octets) (RFC 7296 §2.15).
absl::StatusOr<crypto::Bytes> SharedKeyAuth(uint16_t prf, crypto::ByteSpan secret,
                                            crypto::ByteSpan signed_octets);

// MACedIDForR/MACedIDForI = prf(SK_p, RestOfIDPayload) (RFC 7296 §2.15).
absl::StatusOr<crypto::SecretBytes> MacedId(uint16_t prf, crypto::ByteSpan sk_p,
                                            crypto::ByteSpan id_body);
// RealMessage | Nonce | MacedId (RFC 7296 §2.15).
absl::StatusOr<crypto::Bytes> SignedOctets(uint16_t prf, crypto::ByteSpan real_message,
                                           crypto::ByteSpan nonce, crypto::ByteSpan sk_p,
                                           crypto::ByteSpan id_body);

}  // namespace vpn::ike
