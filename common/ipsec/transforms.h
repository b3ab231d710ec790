// IKEv2 transform IDs shared by IKE and ESP: the transforms negotiated for an
// IKE or CHILD SA, and what they imply:
// key sizes and the crypto objects that implement them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/crypto.h"

namespace vpn::ipsec {

// IANA IKEv2 transform IDs (RFC 7296 §3.3.2); 0 = absent.
struct TransformSet {
  uint16_t encryption = 0;
  uint16_t encryption_key_bits = 0;  // Key Length attribute; 0 when absent
  uint16_t prf = 0;
  uint16_t integrity = 0;
  uint16_t key_exchange = 0;
  uint16_t esn = 0;

  bool is_aead() const;
  std::string ToString() const;  // "aes256-sha1-modp1024"
};

// Key and IV sizes of a transform set's encryption and integrity.
struct KeySizes {
  size_t encryption_key = 0;  // includes the 4-byte salt of AEAD transforms
  size_t integrity_key = 0;
  size_t prf_output = 0;      // also the size of SK_d, SK_pi and SK_pr
};

// Fails with kInvalidArgument for a transform this gateway does not implement.
absl::StatusOr<KeySizes> KeySizesFor(const TransformSet& transforms);

absl::StatusOr<crypto::PrfAlgorithm> PrfAlgorithmFor(uint16_t prf_id);
// The PRFs this gateway implements (HMAC-SHA1/-SHA2), by output size.
absl::StatusOr<size_t> PrfOutputSize(uint16_t prf_id);
absl::StatusOr<crypto::IntegrityAlgorithm> IntegrityAlgorithmFor(uint16_t integ_id);
absl::StatusOr<crypto::KeyExchangeGroup> KeyExchangeGroupFor(uint16_t group_id);

// The cipher an ENCR transform names (with its Key Length): an AEAD for
// AES-GCM-16 and ChaCha20-Poly1305, a CBC cipher for AES-CBC and 3DES.
absl::StatusOr<crypto::AeadAlgorithm> AeadAlgorithmFor(const TransformSet& transforms);
absl::StatusOr<crypto::CbcAlgorithm> CbcAlgorithmFor(const TransformSet& transforms);

}  // namespace vpn::ipsec
