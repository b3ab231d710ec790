// One direction's ESP protection: AES-GCM-16 (RFC 4106) or a CBC cipher with
// HMAC (RFC 3602, RFC 2451, RFC 2404, RFC 4868), on buffers in place. Only
// the crypto interface (common/crypto/crypto.h) does the cryptography.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "common/crypto/crypto.h"
#include "common/ipsec/transforms.h"

namespace vpn::forwarder::esp {

// What a CHILD SA negotiated (IANA IKEv2 transform IDs).
struct EspAlgorithms {
  uint16_t encryption = 0;           // ENCR_AES_GCM_16, ENCR_AES_CBC, ENCR_3DES
  uint16_t encryption_key_bits = 0;  // Key Length attribute (AES)
  uint16_t integrity = 0;            // 0 for AEAD
  bool esn = false;

  ipsec::TransformSet ToTransformSet() const;
};

class EspCipher {
 public:
  // `encryption_key` includes the 4-byte salt for AES-GCM (RFC 4106 §8.1).
  static absl::StatusOr<std::unique_ptr<EspCipher>> Create(
      const EspAlgorithms& algorithms, crypto::ByteSpan encryption_key,
      crypto::ByteSpan integrity_key);
  ~EspCipher();

  bool aead() const { return aead_ != nullptr; }
  size_t iv_size() const { return iv_size_; }
  size_t icv_size() const { return icv_size_; }
  // The encrypted part (payload, padding, pad length, next header) is a
  // multiple of this.
  size_t align() const { return align_; }

  // `esp` = SPI | seq | IV | plaintext of `plain_len` bytes (padded); for
  // GCM the IV must already be there, for CBC it is drawn here. Encrypts in
  // place and writes icv_size() bytes of ICV right after the ciphertext.
  absl::Status Seal(uint8_t* esp, size_t plain_len, uint32_t seq_high) const;
  // The reverse: verifies the ICV after `cipher_len` bytes of ciphertext
  // and decrypts in place. False for a forged or corrupted packet.
  bool Open(uint8_t* esp, size_t cipher_len, uint32_t seq_high) const;

 private:
  EspCipher() = default;
  // The AEAD nonce and AAD of the ESP packet at `esp`; returns the AAD size.
  size_t AeadInputs(const uint8_t* esp, uint32_t seq_high, uint8_t nonce[12],
                    uint8_t aad[12]) const;

  bool esn_ = false;
  size_t iv_size_ = 0;
  size_t icv_size_ = 0;
  size_t align_ = 4;
  uint8_t salt_[4] = {};
  std::unique_ptr<crypto::Aead> aead_;
  std::unique_ptr<crypto::CbcCipher> cbc_;
  std::unique_ptr<crypto::Mac> mac_;
};

}  // namespace vpn::forwarder::esp
