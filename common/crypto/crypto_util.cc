// Parts of the interface that need no BoringSSL: secret buffers, constant-time
// comparison, the allocating conveniences and the RFC 7427 identifier tables.
// Linked both into the `crypto` library and into the provider object.
#include <cstring>
#include <utility>

#include "common/crypto/crypto.h"

namespace vpn::crypto {

void SecureZero(void* data, size_t size) {
  if (data == nullptr || size == 0) return;
  std::memset(data, 0, size);
  // The empty asm with a memory clobber makes the stores observable.
  __asm__ __volatile__("" : : "r"(data) : "memory");
}

bool ConstantTimeEquals(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

SecretBytes::SecretBytes(size_t size)
    : data_(size ? new uint8_t[size]() : nullptr), size_(size) {}

SecretBytes::SecretBytes(ByteSpan data) : SecretBytes(data.size()) {
  if (!data.empty()) std::memcpy(data_.get(), data.data(), data.size());
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Wipe(); }

void SecretBytes::Wipe() {
  SecureZero(data_.get(), size_);
  data_.reset();
  size_ = 0;
}

SecretBytes SecretBytes::Slice(size_t offset, size_t length) const {
  if (offset > size_ || length > size_ - offset) return SecretBytes();
  return SecretBytes(span().subspan(offset, length));
}

absl::StatusOr<Bytes> CbcCipher::Encrypt(ByteSpan iv,
                                         ByteSpan plaintext) const {
  Bytes out(plaintext.size());
  absl::Status status = Encrypt(iv, plaintext, absl::MakeSpan(out));
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<Bytes> CbcCipher::Decrypt(ByteSpan iv,
                                         ByteSpan ciphertext) const {
  Bytes out(ciphertext.size());
  absl::Status status = Decrypt(iv, ciphertext, absl::MakeSpan(out));
  if (!status.ok()) return status;
  return out;
}

Bytes Mac::Compute(ByteSpan data) const {
  Bytes tag(tag_size());
  if (!Compute({data}, absl::MakeSpan(tag)).ok()) return {};
  return tag;
}

SecretBytes Prf::Compute(ByteSpan data) const {
  SecretBytes out(output_size());
  if (!Compute({data}, out.mutable_span()).ok()) return SecretBytes();
  return out;
}

namespace {

struct AlgorithmIdentifierEntry {
  SignatureScheme scheme;
  Bytes der;
};

// DER AlgorithmIdentifiers (RFC 7427 §3 and Appendix A; RFC 8420 for
// Ed25519). The first entry for a scheme is the one we send; later ones are
// alternative encodings peers use (absent instead of NULL parameters).
const std::vector<AlgorithmIdentifierEntry>& AlgorithmIdentifiers() {
  static const auto* const kTable = new std::vector<AlgorithmIdentifierEntry>{
      // sha{256,384,512}WithRSAEncryption, NULL parameters.
      {SignatureScheme::kRsaPkcs1Sha256,
       {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0b, 0x05, 0x00}},
      {SignatureScheme::kRsaPkcs1Sha384,
       {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0c, 0x05, 0x00}},
      {SignatureScheme::kRsaPkcs1Sha512,
       {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0d, 0x05, 0x00}},
      {SignatureScheme::kRsaPkcs1Sha256,
       {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0b}},
      {SignatureScheme::kRsaPkcs1Sha384,
       {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0c}},
      {SignatureScheme::kRsaPkcs1Sha512,
       {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0d}},
      // RSASSA-PSS: hashAlgorithm [0], maskGenAlgorithm [1] = MGF1 with the
      // same hash, saltLength [2] = hash length; trailerField default.
      {SignatureScheme::kRsaPssSha256,
       {0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0a, 0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
        0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a,
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
        0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20}},
      {SignatureScheme::kRsaPssSha384,
       {0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0a, 0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
        0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a,
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
        0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
        0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x30}},
      {SignatureScheme::kRsaPssSha512,
       {0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x0a, 0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
        0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a,
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
        0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x40}},
      // ecdsa-with-SHA{256,384,512}, parameters absent (RFC 5758).
      {SignatureScheme::kEcdsaSha256,
       {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03,
        0x02}},
      {SignatureScheme::kEcdsaSha384,
       {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03,
        0x03}},
      {SignatureScheme::kEcdsaSha512,
       {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03,
        0x04}},
      // id-Ed25519 (RFC 8410), parameters absent.
      {SignatureScheme::kEd25519, {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}},
  };
  return *kTable;
}

}  // namespace

absl::StatusOr<Bytes> SignatureAlgorithmIdentifier(SignatureScheme scheme) {
  for (const auto& entry : AlgorithmIdentifiers()) {
    if (entry.scheme == scheme) return entry.der;
  }
  return absl::InvalidArgumentError(
      "signature scheme has no RFC 7427 AlgorithmIdentifier");
}

absl::StatusOr<SignatureScheme> SignatureSchemeFromAlgorithmIdentifier(
    ByteSpan der) {
  for (const auto& entry : AlgorithmIdentifiers()) {
    if (ByteSpan(entry.der) == der) return entry.scheme;
  }
  return absl::InvalidArgumentError(
      "unsupported signature AlgorithmIdentifier");
}

}  // namespace vpn::crypto
