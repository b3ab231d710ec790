// Key derivation for IKE and CHILD SAs (RFC 7296 §2.13, §2.14, §2.17,
// §2.18), and the PRF formulas of the AUTH payload (§2.15). All of an SA's
// keys are derived here and nowhere else.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/crypto/crypto.h"
#include "common/ipsec/transforms.h"

namespace vpn::ike {

struct IkeSaKeys {
  crypto::SecretBytes sk_d;
  crypto::SecretBytes sk_ai, sk_ar;  // empty for AEAD transforms
  crypto::SecretBytes sk_ei, sk_er;  // AEAD keys end with their 4-byte salt
  crypto::SecretBytes sk_pi, sk_pr;
};

// SKEYSEED = prf(Ni | Nr, g^ir), then
// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
absl::StatusOr<IkeSaKeys> DeriveIkeSaKeys(const ipsec::TransformSet& transforms,
                                          crypto::ByteSpan nonce_i,
                                          crypto::ByteSpan nonce_r,
                                          crypto::ByteSpan shared_secret,
                                          uint64_t spi_i, uint64_t spi_r);

// IKE SA rekey (§2.18): SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr),
// with the old SA's PRF; the rest as above with the new SA's transforms.
absl::StatusOr<IkeSaKeys> DeriveRekeyedIkeSaKeys(
    uint16_t old_prf, crypto::ByteSpan old_sk_d,
    const ipsec::TransformSet& transforms, crypto::ByteSpan nonce_i,
    crypto::ByteSpan nonce_r, crypto::ByteSpan shared_secret, uint64_t spi_i,
    uint64_t spi_r);

// A CHILD SA's keys (§2.17): KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr),
// taken in the order initiator-to-responder encryption and integrity, then
// responder-to-initiator encryption and integrity.
struct ChildSaKeys {
  crypto::SecretBytes encryption_i, integrity_i;  // protects initiator → responder
  crypto::SecretBytes encryption_r, integrity_r;  // protects responder → initiator
};
absl::StatusOr<ChildSaKeys> DeriveChildSaKeys(
    uint16_t ike_prf, crypto::ByteSpan sk_d, const ipsec::TransformSet& esp,
    crypto::ByteSpan shared_secret, crypto::ByteSpan nonce_i,
    crypto::ByteSpan nonce_r);

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
