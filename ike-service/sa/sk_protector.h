// Protects the Encrypted payload (SK, RFC 7296 §3.14) of IKE messages in
// one direction: CBC encryption with HMAC integrity, or an AEAD (RFC 5282
// for AES-GCM, RFC 7634 for ChaCha20-Poly1305).
#pragma once

#include <cstddef>
#include <memory>

#include "absl/status/statusor.h"
#include "common/crypto/crypto.h"
#include "common/ipsec/transforms.h"

namespace vpn::ike {

class SkProtector {
 public:
  // `encryption_key` and `integrity_key` are SK_e and SK_a of one direction
  // (an AEAD's key ends with its 4-byte salt; it has no integrity key).
  static absl::StatusOr<std::unique_ptr<SkProtector>> Create(
      const ipsec::TransformSet& transforms, crypto::ByteSpan encryption_key,
      crypto::ByteSpan integrity_key);

  size_t iv_size() const { return iv_size_; }
  size_t icv_size() const { return icv_size_; }

  // Size of IV | ciphertext (inner payloads, padding, pad length) | ICV for
  // an inner plaintext of `plaintext_size` bytes.
  size_t SealedSize(size_t plaintext_size) const;

  // Returns IV | ciphertext | ICV. `prefix` is every byte of the final
  // message before the IV: the IKE header, any unencrypted payloads and the
  // SK payload header, with their final lengths. An AEAD authenticates it as
  // associated data; CBC+HMAC covers it with the ICV.
  absl::StatusOr<crypto::Bytes> Seal(crypto::ByteSpan prefix,
                                     crypto::ByteSpan plaintext) const;

  // The reverse: checks the ICV, decrypts, and strips the padding. `body` is
  // IV | ciphertext | ICV. A bad ICV gives kDataLoss.
  absl::StatusOr<crypto::Bytes> Open(crypto::ByteSpan prefix,
                                     crypto::ByteSpan body) const;

 private:
  SkProtector() = default;
  size_t PaddedSize(size_t plaintext_size) const;

  std::unique_ptr<crypto::Aead> aead_;
  crypto::Bytes salt_;
  std::unique_ptr<crypto::CbcCipher> cbc_;
  std::unique_ptr<crypto::Mac> mac_;
  size_t iv_size_ = 0;
  size_t icv_size_ = 0;
  size_t block_size_ = 1;
};

}  // namespace vpn::ike
