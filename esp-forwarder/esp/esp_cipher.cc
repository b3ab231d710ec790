#include "esp-forwarder/esp/esp_cipher.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "esp-forwarder/esp/esp_codec.h"

namespace vpn::forwarder::esp {

ipsec::TransformSet EspAlgorithms::ToTransformSet() const {
  ipsec::TransformSet t;
  t.encryption = encryption;
  t.encryption_key_bits = encryption_key_bits;
  t.integrity = integrity;
  t.esn = esn ? 1 : 0;
  return t;
}

absl::StatusOr<std::unique_ptr<EspCipher>> EspCipher::Create(
    const EspAlgorithms& algorithms, crypto::ByteSpan encryption_key,
    crypto::ByteSpan integrity_key) {
  const ipsec::TransformSet transforms = algorithms.ToTransformSet();
  absl::StatusOr<ipsec::KeySizes> sizes = ipsec::KeySizesFor(transforms);
  if (!sizes.ok()) return sizes.status();
  if (encryption_key.size() != sizes->encryption_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ESP encryption key is ", encryption_key.size(), " bytes; ",
        transforms.ToString(), " needs ", sizes->encryption_key));
  }
  if (integrity_key.size() != sizes->integrity_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ESP integrity key is ", integrity_key.size(), " bytes; ",
        transforms.ToString(), " needs ", sizes->integrity_key));
  }
  const crypto::Provider& provider = crypto::GetProvider();
  std::unique_ptr<EspCipher> cipher(new EspCipher());
  cipher->esn_ = algorithms.esn;
  switch (algorithms.encryption) {
    case crypto::transform::kEncrAesGcm16: {
      const size_t key_size = encryption_key.size() - 4;
      auto algorithm = ipsec::AeadAlgorithmFor(transforms);
      if (!algorithm.ok()) return algorithm.status();
      auto aead = provider.NewAead(*algorithm, encryption_key.subspan(0, key_size));
      if (!aead.ok()) return aead.status();
      cipher->aead_ = std::move(*aead);
      std::memcpy(cipher->salt_, encryption_key.data() + key_size, 4);
      cipher->iv_size_ = 8;
      cipher->icv_size_ = cipher->aead_->tag_size();
      cipher->align_ = 4;
      return cipher;
    }
    case crypto::transform::kEncrAesCbc:
    case crypto::transform::kEncr3Des: {
      auto algorithm = ipsec::CbcAlgorithmFor(transforms);
      if (!algorithm.ok()) return algorithm.status();
      auto cbc = provider.NewCbcCipher(*algorithm, encryption_key);
      if (!cbc.ok()) return cbc.status();
      if (algorithms.integrity == 0) {
        return absl::InvalidArgumentError("a CBC cipher needs an integrity algorithm");
      }
      auto integrity = ipsec::IntegrityAlgorithmFor(algorithms.integrity);
      if (!integrity.ok()) return integrity.status();
      auto mac = provider.NewMac(*integrity, integrity_key);
      if (!mac.ok()) return mac.status();
      cipher->cbc_ = std::move(*cbc);
      cipher->mac_ = std::move(*mac);
      cipher->iv_size_ = cipher->cbc_->block_size();
      cipher->align_ = cipher->cbc_->block_size();
      cipher->icv_size_ = cipher->mac_->tag_size();
      return cipher;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported ESP encryption ", algorithms.encryption));
}

EspCipher::~EspCipher() { crypto::SecureZero(salt_, sizeof(salt_)); }

size_t EspCipher::AeadInputs(const uint8_t* esp, uint32_t seq_high, uint8_t nonce[12],
                             uint8_t aad[12]) const {
  // RFC 4106 §4-5: nonce = salt | IV; AAD = SPI | [seq high |] seq low.
  std::memcpy(nonce, salt_, 4);
  std::memcpy(nonce + 4, esp + 8, 8);
  std::memcpy(aad, esp, 4);
  if (!esn_) {
    std::memcpy(aad + 4, esp + 4, 4);
    return 8;
  }
  WriteBe32(aad + 4, seq_high);
  std::memcpy(aad + 8, esp + 4, 4);
  return 12;
}

absl::Status EspCipher::Seal(uint8_t* esp, size_t plain_len, uint32_t seq_high) const {
  uint8_t* iv = esp + 8;
  uint8_t* body = iv + iv_size_;
  uint8_t* icv = body + plain_len;
  if (aead_ != nullptr) {
    uint8_t nonce[12], aad[12];
    const size_t aad_len = AeadInputs(esp, seq_high, nonce, aad);
    return aead_->SealInPlace(crypto::ByteSpan(nonce, 12),
                              crypto::MutableByteSpan(body, plain_len),
                              crypto::ByteSpan(aad, aad_len),
                              crypto::MutableByteSpan(icv, icv_size_));
  }
  crypto::GetProvider().RandomBytes(absl::MakeSpan(iv, iv_size_));
  absl::Status encrypted = cbc_->Encrypt(crypto::ByteSpan(iv, iv_size_),
                                         crypto::ByteSpan(body, plain_len),
                                         crypto::MutableByteSpan(body, plain_len));
  if (!encrypted.ok()) return encrypted;
  // RFC 4303 §2.2.1 / §3.3.2.1: with ESN the high bits follow the payload
  // in the ICV computation only.
  uint8_t high[4];
  WriteBe32(high, seq_high);
  const crypto::ByteSpan parts[] = {crypto::ByteSpan(esp, 8 + iv_size_ + plain_len),
                                    crypto::ByteSpan(high, 4)};
  return mac_->Compute(absl::MakeConstSpan(parts, esn_ ? 2 : 1),
                       crypto::MutableByteSpan(icv, icv_size_));
}

bool EspCipher::Open(uint8_t* esp, size_t cipher_len, uint32_t seq_high) const {
  uint8_t* iv = esp + 8;
  uint8_t* body = iv + iv_size_;
  const uint8_t* icv = body + cipher_len;
  if (aead_ != nullptr) {
    uint8_t nonce[12], aad[12];
    const size_t aad_len = AeadInputs(esp, seq_high, nonce, aad);
    return aead_
        ->OpenInPlace(crypto::ByteSpan(nonce, 12), crypto::MutableByteSpan(body, cipher_len),
                      crypto::ByteSpan(aad, aad_len), crypto::ByteSpan(icv, icv_size_))
        .ok();
  }
  uint8_t high[4];
  WriteBe32(high, seq_high);
  const crypto::ByteSpan parts[] = {crypto::ByteSpan(esp, 8 + iv_size_ + cipher_len),
                                    crypto::ByteSpan(high, 4)};
  if (!mac_->Verify(absl::MakeConstSpan(parts, esn_ ? 2 : 1),
                    crypto::ByteSpan(icv, icv_size_))) {
    return false;
  }
  return cbc_->Decrypt(crypto::ByteSpan(iv, iv_size_), crypto::ByteSpan(body, cipher_len),
                       crypto::MutableByteSpan(body, cipher_len))
      .ok();
}

}  // namespace vpn::forwarder::esp
