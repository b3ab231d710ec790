// The gateway's IKEv2 AUTH signatures (RFC 7296 §2.15) with its private key,
// which never leaves auth-service.
//
// When the peer announced RFC 7427 hashes (SIGNATURE_HASH_ALGORITHMS), the
// signature uses auth method 14 with the best common hash: RSA keys sign
// RSASSA-PKCS1-v1_5 with SHA-256 (then SHA-384, SHA-512), the encoding
// Windows and strongSwan accept most widely; ECDSA keys prefer the hash that
// matches their curve; Ed25519 needs the Identity hash (RFC 8420). The AUTH
// data is then the 1-octet length of the ASN.1 AlgorithmIdentifier, the
// AlgorithmIdentifier and the signature (RFC 7427 §3). Otherwise the key's
// classic method: 1 (RSA PKCS#1 v1.5 SHA-1, RFC 7296 §3.8) or 9/10/11
// (ECDSA P-256/384/521 with SHA-256/384/512 and raw r||s, RFC 4754).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/crypto/crypto.h"

namespace vpn::auth {

// RFC 7427 §7 hash algorithm IDs as announced in SIGNATURE_HASH_ALGORITHMS.
namespace hash_id {
inline constexpr uint32_t kSha1 = 1;
inline constexpr uint32_t kSha256 = 2;
inline constexpr uint32_t kSha384 = 3;
inline constexpr uint32_t kSha512 = 4;
inline constexpr uint32_t kIdentity = 5;
}  // namespace hash_id

class GatewaySigner {
 public:
  struct Signature {
    uint8_t auth_method = 0;
    crypto::Bytes auth_data;
  };

  // `chain_pem`: the gateway certificate first, then intermediates.
  // `key_pem`: its private key. Fails unless the key matches the leaf.
  static absl::StatusOr<std::unique_ptr<GatewaySigner>> Load(
      const crypto::Provider& provider, absl::string_view chain_pem,
      absl::string_view key_pem);

  absl::StatusOr<Signature> Sign(crypto::ByteSpan signed_octets,
                                 absl::Span<const uint32_t> peer_hashes) const;

  const std::vector<crypto::Bytes>& chain_der() const { return chain_der_; }
  crypto::KeyType key_type() const { return key_->type(); }
  const std::string& subject() const { return subject_; }
  // The earliest notAfter of the chain it sends: after it, peers that check
  // the chain refuse this gateway (RFC 5280 §4.1.2.5).
  absl::Time not_after() const { return not_after_; }

 private:
  GatewaySigner(std::unique_ptr<crypto::PrivateKey> key,
                std::vector<crypto::Bytes> chain_der, std::string subject,
                absl::Time not_after)
      : key_(std::move(key)),
        chain_der_(std::move(chain_der)),
        subject_(std::move(subject)),
        not_after_(not_after) {}

  std::unique_ptr<crypto::PrivateKey> key_;
  std::vector<crypto::Bytes> chain_der_;
  std::string subject_;
  absl::Time not_after_;
};

}  // namespace vpn::auth
