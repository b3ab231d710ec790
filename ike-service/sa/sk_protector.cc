#include "ike-service/sa/sk_protector.h"

#include "absl/strings/str_cat.h"

namespace vpn::ike {
namespace {

constexpr size_t kAeadSaltSize = 4;
constexpr size_t kAeadIvSize = 8;  // RFC 5282 §3.1, RFC 7634 §2

}  // namespace

absl::StatusOr<std::unique_ptr<SkProtector>> SkProtector::Create(
    const ipsec::TransformSet& transforms, crypto::ByteSpan encryption_key,
    crypto::ByteSpan integrity_key) {
  absl::StatusOr<ipsec::KeySizes> sizes = ipsec::KeySizesFor(transforms);
  if (!sizes.ok()) return sizes.status();
  if (encryption_key.size() != sizes->encryption_key ||
      integrity_key.size() != sizes->integrity_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key sizes ", encryption_key.size(), "/", integrity_key.size(),
        " do not fit ", transforms.ToString()));
  }
  const crypto::Provider& provider = crypto::GetProvider();
  std::unique_ptr<SkProtector> protector(new SkProtector());
  if (transforms.is_aead()) {
    absl::StatusOr<crypto::AeadAlgorithm> algorithm = ipsec::AeadAlgorithmFor(transforms);
    if (!algorithm.ok()) return algorithm.status();
    const size_t key_size = encryption_key.size() - kAeadSaltSize;
    absl::StatusOr<std::unique_ptr<crypto::Aead>> aead =
        provider.NewAead(*algorithm, encryption_key.subspan(0, key_size));
    if (!aead.ok()) return aead.status();
    protector->aead_ = std::move(*aead);
    protector->salt_.assign(encryption_key.begin() + key_size, encryption_key.end());
    protector->iv_size_ = kAeadIvSize;
    protector->icv_size_ = protector->aead_->tag_size();
    return protector;
  }
  absl::StatusOr<crypto::CbcAlgorithm> algorithm = ipsec::CbcAlgorithmFor(transforms);
  if (!algorithm.ok()) return algorithm.status();
  absl::StatusOr<std::unique_ptr<crypto::CbcCipher>> cbc =
      provider.NewCbcCipher(*algorithm, encryption_key);
  if (!cbc.ok()) return cbc.status();
  absl::StatusOr<crypto::IntegrityAlgorithm> integrity =
      ipsec::IntegrityAlgorithmFor(transforms.integrity);
  if (!integrity.ok()) return integrity.status();
  absl::StatusOr<std::unique_ptr<crypto::Mac>> mac =
      provider.NewMac(*integrity, integrity_key);
  if (!mac.ok()) return mac.status();
  protector->cbc_ = std::move(*cbc);
  protector->mac_ = std::move(*mac);
  protector->block_size_ = protector->cbc_->block_size();
  protector->iv_size_ = protector->block_size_;
  protector->icv_size_ = protector->mac_->tag_size();
  return protector;
}

size_t SkProtector::PaddedSize(size_t plaintext_size) const {
  // Inner payloads, padding, and the one-byte Pad Length, to a whole block.
  const size_t unpadded = plaintext_size + 1;
  return (unpadded + block_size_ - 1) / block_size_ * block_size_;
}

size_t SkProtector::SealedSize(size_t plaintext_size) const {
  return iv_size_ + PaddedSize(plaintext_size) + icv_size_;
}

absl::StatusOr<crypto::Bytes> SkProtector::Seal(crypto::ByteSpan prefix,
                                                crypto::ByteSpan plaintext) const {
  const size_t padded_size = PaddedSize(plaintext.size());
  crypto::Bytes body(iv_size_ + padded_size + icv_size_, 0);
  crypto::MutableByteSpan iv(body.data(), iv_size_);
  crypto::MutableByteSpan text(body.data() + iv_size_, padded_size);
  crypto::MutableByteSpan icv(body.data() + iv_size_ + padded_size, icv_size_);
  crypto::GetProvider().RandomBytes(iv);
  std::copy(plaintext.begin(), plaintext.end(), text.begin());
  // Zero padding; the last byte counts it (§3.14).
  text[padded_size - 1] = static_cast<uint8_t>(padded_size - 1 - plaintext.size());

  if (aead_ != nullptr) {
    crypto::Bytes nonce(salt_);
    nonce.insert(nonce.end(), iv.begin(), iv.end());
    if (absl::Status s = aead_->SealInPlace(nonce, text, prefix, icv); !s.ok()) {
      return s;
    }
    return body;
  }
  if (absl::Status s = cbc_->Encrypt(iv, text, text); !s.ok()) return s;
  const crypto::ByteSpan covered[] = {prefix,
                                      crypto::ByteSpan(body.data(), iv_size_ + padded_size)};
  if (absl::Status s = mac_->Compute(covered, icv); !s.ok()) return s;
  return body;
}

absl::StatusOr<crypto::Bytes> SkProtector::Open(crypto::ByteSpan prefix,
                                                crypto::ByteSpan body) const {
  if (body.size() < iv_size_ + icv_size_ + block_size_) {
    return absl::InvalidArgumentError("Encrypted payload too short");
  }
  const size_t text_size = body.size() - iv_size_ - icv_size_;
  if (text_size % block_size_ != 0) {
    return absl::InvalidArgumentError(
        "Encrypted payload is not a whole number of cipher blocks");
  }
  const crypto::ByteSpan iv = body.subspan(0, iv_size_);
  const crypto::ByteSpan icv = body.subspan(iv_size_ + text_size);
  crypto::Bytes text(body.begin() + iv_size_, body.begin() + iv_size_ + text_size);

  if (aead_ != nullptr) {
    crypto::Bytes nonce(salt_);
    nonce.insert(nonce.end(), iv.begin(), iv.end());
    if (absl::Status s = aead_->OpenInPlace(nonce, absl::MakeSpan(text), prefix, icv);
        !s.ok()) {
      return absl::DataLossError("integrity check of the Encrypted payload failed");
    }
  } else {
    const crypto::ByteSpan covered[] = {prefix, body.subspan(0, iv_size_ + text_size)};
    if (!mac_->Verify(covered, icv)) {
      return absl::DataLossError("integrity check of the Encrypted payload failed");
    }
    if (absl::Status s = cbc_->Decrypt(iv, text, absl::MakeSpan(text)); !s.ok()) {
      return s;
    }
  }
  const size_t pad_length = text.back();
  if (pad_length + 1 > text.size()) {
    return absl::InvalidArgumentError("Pad Length exceeds the Encrypted payload");
  }
  text.resize(text.size() - pad_length - 1);
  return text;
}

}  // namespace vpn::ike
