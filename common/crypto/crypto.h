// The project's one crypto interface. Every IKE, EAP and ESP algorithm is
// reached through it; only boringssl_provider.cc includes BoringSSL headers.
//
// The implementation lives in a dlopen()ed shared object (see
// provider_loader.cc for why). Everything crossing that boundary is an
// abstract class, a plain value type or absl::Status(Or); nothing throws.
// Objects are immutable once created: Aead, CbcCipher, Mac, Prf, KeyExchange,
// keys, certificates and trust stores may be used from several threads.
// Note: this Abseil build's absl::string_view is not std::string_view; the
// interface uses std::string_view.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace vpn::crypto {

using Bytes = std::vector<uint8_t>;
using ByteSpan = absl::Span<const uint8_t>;
using MutableByteSpan = absl::Span<uint8_t>;

// The bytes of a string (a protobuf `bytes` field, a label), as a view.
// Debian's absl::string_view is not std::string_view: one overload each.
inline ByteSpan AsBytes(const char* data, size_t size) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(data), size);
}
inline ByteSpan AsBytes(const std::string& s) { return AsBytes(s.data(), s.size()); }
inline ByteSpan AsBytes(std::string_view s) { return AsBytes(s.data(), s.size()); }
inline ByteSpan AsBytes(absl::string_view s) { return AsBytes(s.data(), s.size()); }

// Bumped whenever a virtual interface below changes; the loader refuses a
// provider object built against another version.
inline constexpr int kProviderAbiVersion = 1;

// Key material: fixed size, move-only, zeroed when destroyed or overwritten.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);  // zero-filled
  explicit SecretBytes(ByteSpan data);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  SecretBytes Copy() const { return SecretBytes(span()); }
  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  ByteSpan span() const { return ByteSpan(data_.get(), size_); }
  MutableByteSpan mutable_span() { return MutableByteSpan(data_.get(), size_); }
  // Sub-range copy, e.g. to split KEYMAT into SK_d, SK_ai, ...
  SecretBytes Slice(size_t offset, size_t length) const;

 private:
  void Wipe();
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

// Constant-time equality; false when sizes differ.
bool ConstantTimeEquals(ByteSpan a, ByteSpan b);

// Overwrites memory so the compiler cannot elide it.
void SecureZero(void* data, size_t size);

// ---------------------------------------------------------------------------
// IKEv2 transform IDs (IANA "IKEv2 Parameters", RFC 7296 §3.3.2).
// ---------------------------------------------------------------------------
namespace transform {
// Transform Type 1 (Encryption Algorithm). AES takes a Key Length attribute.
inline constexpr uint16_t kEncr3Des = 3;
inline constexpr uint16_t kEncrAesCbc = 12;
inline constexpr uint16_t kEncrAesGcm16 = 20;
inline constexpr uint16_t kEncrChaCha20Poly1305 = 28;
}  // namespace transform

// ---------------------------------------------------------------------------
// AEAD: RFC 4106 (ESP) / RFC 5282 (IKE SK) AES-GCM with 16-byte ICV, RFC 7634.
// The key excludes the 4-byte salt; the caller builds the 12-byte nonce as
// salt || 8-byte IV.
// ---------------------------------------------------------------------------
enum class AeadAlgorithm {
  kAes128Gcm16,
  kAes256Gcm16,
  kChaCha20Poly1305,
};

class Aead {
 public:
  virtual ~Aead() = default;
  virtual size_t key_size() const = 0;
  virtual size_t nonce_size() const = 0;
  virtual size_t tag_size() const = 0;
  // Returns ciphertext || tag.
  virtual absl::StatusOr<Bytes> Seal(ByteSpan nonce, ByteSpan plaintext,
                                     ByteSpan aad) const = 0;
  // Takes ciphertext || tag; fails with kDataLoss on a forged or truncated tag.
  virtual absl::StatusOr<Bytes> Open(ByteSpan nonce, ByteSpan ciphertext,
                                     ByteSpan aad) const = 0;
  // Zero-copy forms for the ESP data plane: encrypt/decrypt `in_out` in
  // place; the tag lives in a separate caller buffer of tag_size() bytes.
  // OpenInPlace fails with kDataLoss (and zeroes `in_out`) on a bad tag.
  virtual absl::Status SealInPlace(ByteSpan nonce, MutableByteSpan in_out,
                                   ByteSpan aad, MutableByteSpan tag) const = 0;
  virtual absl::Status OpenInPlace(ByteSpan nonce, MutableByteSpan in_out,
                                   ByteSpan aad, ByteSpan tag) const = 0;
};

// ---------------------------------------------------------------------------
// CBC block ciphers without padding (IKE and ESP pad themselves).
// ---------------------------------------------------------------------------
enum class CbcAlgorithm {
  kAes128Cbc,  // ENCR_AES_CBC, key length 128
  kAes192Cbc,  // ENCR_AES_CBC, key length 192
  kAes256Cbc,  // ENCR_AES_CBC, key length 256
  k3DesCbc,    // ENCR_3DES
};

class CbcCipher {
 public:
  virtual ~CbcCipher() = default;
  virtual size_t key_size() const = 0;
  virtual size_t block_size() const = 0;  // also the IV size
  // `in` must be a whole number of blocks; `out` must be as large as `in`
  // and may be the same buffer (in-place).
  virtual absl::Status Encrypt(ByteSpan iv, ByteSpan in,
                               MutableByteSpan out) const = 0;
  virtual absl::Status Decrypt(ByteSpan iv, ByteSpan in,
                               MutableByteSpan out) const = 0;

  // Allocating conveniences.
  absl::StatusOr<Bytes> Encrypt(ByteSpan iv, ByteSpan plaintext) const;
  absl::StatusOr<Bytes> Decrypt(ByteSpan iv, ByteSpan ciphertext) const;
};

// ---------------------------------------------------------------------------
// Hashes (values are the RFC 7427 §7 "Hash Algorithm" IDs) and HMAC.
// ---------------------------------------------------------------------------
enum class HashAlgorithm : uint16_t {
  kSha1 = 1,
  kSha256 = 2,
  kSha384 = 3,
  kSha512 = 4,
};

// Transform Type 3 (Integrity Algorithm) IDs.
enum class IntegrityAlgorithm : uint16_t {
  kHmacSha1_96 = 2,
  kHmacSha256_128 = 12,
  kHmacSha384_192 = 13,
  kHmacSha512_256 = 14,
};

// Transform Type 2 (Pseudorandom Function) IDs.
enum class PrfAlgorithm : uint16_t {
  kHmacSha1 = 2,
  kHmacSha256 = 5,
  kHmacSha384 = 6,
  kHmacSha512 = 7,
};

// A keyed HMAC whose output may be truncated (integrity transforms).
class Mac {
 public:
  virtual ~Mac() = default;
  virtual size_t key_size() const = 0;  // the transform's key size
  virtual size_t tag_size() const = 0;  // truncated output size
  // Writes tag_size() bytes over the concatenation of `parts`.
  virtual absl::Status Compute(absl::Span<const ByteSpan> parts,
                               MutableByteSpan tag) const = 0;
  // Constant-time check; false for a wrong tag or a tag of the wrong size.
  virtual bool Verify(absl::Span<const ByteSpan> parts, ByteSpan tag) const = 0;

  Bytes Compute(ByteSpan data) const;
  bool Verify(ByteSpan data, ByteSpan tag) const {
    const ByteSpan parts[] = {data};
    return Verify(absl::MakeConstSpan(parts), tag);
  }
};

// An IKE PRF (HMAC, any key length) with prf+ (RFC 7296 §2.13).
class Prf {
 public:
  virtual ~Prf() = default;
  virtual size_t output_size() const = 0;
  // Writes output_size() bytes over the concatenation of `parts`.
  virtual absl::Status Compute(absl::Span<const ByteSpan> parts,
                               MutableByteSpan out) const = 0;
  // prf+(K, S) = T1 | T2 | ..., Tn = prf(K, Tn-1 | S | n), cut to `length`.
  // Fails if more than 255 blocks would be needed.
  virtual absl::StatusOr<SecretBytes> PrfPlus(ByteSpan seed,
                                              size_t length) const = 0;

  SecretBytes Compute(ByteSpan data) const;
};

// ---------------------------------------------------------------------------
// Key exchange: Transform Type 4 (Key Exchange Method) IDs.
// ---------------------------------------------------------------------------
enum class KeyExchangeGroup : uint16_t {
  kModp1024 = 2,     // RFC 2409 group 2
  kModp2048 = 14,    // RFC 3526
  kModp3072 = 15,    // RFC 3526
  kEcp256 = 19,      // RFC 5903
  kEcp384 = 20,      // RFC 5903
  kCurve25519 = 31,  // RFC 8031
};

// One side of a key exchange; holds the private value for its lifetime.
class KeyExchange {
 public:
  virtual ~KeyExchange() = default;
  virtual KeyExchangeGroup group() const = 0;
  // Our KE payload data: MODP g^x big-endian padded to the prime's length
  // (RFC 7296 §3.4); ECP x || y (RFC 5903 §7); X25519 the 32-byte u
  // (RFC 8031 §2).
  virtual ByteSpan public_value() const = 0;
  // g^ir: MODP padded to the prime's length, ECP the x coordinate only
  // (RFC 5903 §7), X25519 32 bytes. Rejects peer values of the wrong size,
  // MODP values outside 1 < y < p-1, points not on the curve, and an
  // all-zero X25519 result, with kInvalidArgument.
  virtual absl::StatusOr<SecretBytes> ComputeSharedSecret(
      ByteSpan peer_public_value) const = 0;
};

// ---------------------------------------------------------------------------
// Signatures and keys.
// ---------------------------------------------------------------------------
// IKEv2 Authentication Method values (RFC 7296 §3.8, RFC 4754, RFC 7427).
namespace auth_method {
inline constexpr uint8_t kRsaSignature = 1;
inline constexpr uint8_t kSharedKey = 2;
inline constexpr uint8_t kEcdsaSha256P256 = 9;
inline constexpr uint8_t kEcdsaSha384P384 = 10;
inline constexpr uint8_t kEcdsaSha512P521 = 11;
inline constexpr uint8_t kDigitalSignature = 14;
}  // namespace auth_method

enum class SignatureScheme {
  // RSASSA-PKCS1-v1_5. Auth method 1 uses kRsaPkcs1Sha1.
  kRsaPkcs1Sha1,
  kRsaPkcs1Sha256,
  kRsaPkcs1Sha384,
  kRsaPkcs1Sha512,
  // RSASSA-PSS, MGF1 with the same hash, salt length = hash length.
  kRsaPssSha256,
  kRsaPssSha384,
  kRsaPssSha512,
  // ECDSA with a DER Ecdsa-Sig-Value (RFC 7427 method 14); any curve.
  kEcdsaSha256,
  kEcdsaSha384,
  kEcdsaSha512,
  // ECDSA with the fixed-size r || s encoding of RFC 4754 (methods 9-11);
  // the key's curve must match.
  kEcdsaP256Sha256Raw,
  kEcdsaP384Sha384Raw,
  kEcdsaP521Sha512Raw,
  // PureEdDSA (RFC 8420).
  kEd25519,
};

// The RFC 7427 §3 AlgorithmIdentifier DER for the AUTH payload (including
// the RSASSA-PSS parameters). Fails for the raw-ECDSA schemes and SHA-1.
absl::StatusOr<Bytes> SignatureAlgorithmIdentifier(SignatureScheme scheme);
// The reverse; kInvalidArgument for anything this provider does not support.
absl::StatusOr<SignatureScheme> SignatureSchemeFromAlgorithmIdentifier(
    ByteSpan der);

enum class KeyType {
  kRsa,
  kEcP256,
  kEcP384,
  kEcP521,
  kEd25519,
};

class PublicKey {
 public:
  virtual ~PublicKey() = default;
  virtual KeyType type() const = 0;
  virtual size_t bits() const = 0;
  // DER SubjectPublicKeyInfo.
  virtual Bytes spki_der() const = 0;
  // OK or kInvalidArgument (bad signature, or scheme unfit for the key).
  virtual absl::Status Verify(SignatureScheme scheme, ByteSpan data,
                              ByteSpan signature) const = 0;
};

class PrivateKey {
 public:
  virtual ~PrivateKey() = default;
  virtual KeyType type() const = 0;
  virtual std::unique_ptr<PublicKey> public_key() const = 0;
  // Hashes `data` as the scheme says and signs it.
  virtual absl::StatusOr<Bytes> Sign(SignatureScheme scheme,
                                     ByteSpan data) const = 0;
};

// ---------------------------------------------------------------------------
// X.509.
// ---------------------------------------------------------------------------
enum class ExtendedKeyUsage {
  kServerAuth,       // 1.3.6.1.5.5.7.3.1
  kClientAuth,       // 1.3.6.1.5.5.7.3.2
  kIpsecIke,         // 1.3.6.1.5.5.7.3.17 (RFC 4945)
  kIkeIntermediate,  // 1.3.6.1.5.5.8.2.2 (Windows)
  kAny,              // 2.5.29.37.0
};

struct SubjectAltNames {
  std::vector<std::string> dns_names;
  std::vector<std::string> emails;
  std::vector<Bytes> ip_addresses;  // 4 or 16 bytes, network order
};

class Certificate {
 public:
  virtual ~Certificate() = default;
  virtual ByteSpan der() const = 0;
  // One-line RFC 2253 rendering, e.g. "CN=vpn.example.com,O=Example".
  virtual std::string subject() const = 0;
  virtual std::string issuer() const = 0;
  // DER of the subject Name (what an ID_DER_ASN1_DN payload carries).
  virtual Bytes subject_der() const = 0;
  virtual std::string serial_hex() const = 0;
  virtual absl::Time not_before() const = 0;
  virtual absl::Time not_after() const = 0;
  virtual SubjectAltNames subject_alt_names() const = 0;
  // Whether the extendedKeyUsage extension is present at all.
  virtual bool has_extended_key_usage() const = 0;
  virtual bool HasExtendedKeyUsage(ExtendedKeyUsage usage) const = 0;
  virtual bool is_ca() const = 0;
  virtual std::unique_ptr<PublicKey> public_key() const = 0;
};

struct VerifyOptions {
  absl::Time time = absl::Now();
  // When the leaf carries an extendedKeyUsage extension, it must list one of
  // these (or anyExtendedKeyUsage). Empty: no EKU check.
  std::vector<ExtendedKeyUsage> acceptable_ekus = {
      ExtendedKeyUsage::kServerAuth, ExtendedKeyUsage::kIkeIntermediate};
  // Demand the extension itself (Windows clients do for server certs).
  bool require_eku_extension = false;
  // Identity the leaf's subjectAltName must contain (skipped when empty).
  std::string dns_name;  // compared case-insensitively
  std::string email;
  Bytes ip_address;
  // Fail when some certificate's issuer has no CRL loaded. When false, certs
  // are checked against whatever CRLs are loaded.
  bool require_crl = false;
};

// A configured set of CA certificates and CRLs.
class TrustStore {
 public:
  virtual ~TrustStore() = default;
  // Builds a chain from `leaf` through `intermediates` to a CA in the store
  // and checks signatures, validity at options.time, EKU, SAN and CRLs.
  // kPermissionDenied with the reason when the chain is not acceptable.
  virtual absl::Status Verify(
      const Certificate& leaf,
      absl::Span<const Certificate* const> intermediates,
      const VerifyOptions& options) const = 0;
};

// ---------------------------------------------------------------------------
// The algorithm provider; implemented by the dlopen()ed BoringSSL object.
// ---------------------------------------------------------------------------
class Provider {
 public:
  virtual ~Provider() = default;

  virtual absl::StatusOr<std::unique_ptr<Aead>> NewAead(AeadAlgorithm algorithm,
                                                        ByteSpan key) const = 0;
  virtual absl::StatusOr<std::unique_ptr<CbcCipher>> NewCbcCipher(
      CbcAlgorithm algorithm, ByteSpan key) const = 0;
  virtual absl::StatusOr<std::unique_ptr<Mac>> NewMac(
      IntegrityAlgorithm algorithm, ByteSpan key) const = 0;
  virtual absl::StatusOr<std::unique_ptr<Prf>> NewPrf(PrfAlgorithm algorithm,
                                                      ByteSpan key) const = 0;
  virtual Bytes Hash(HashAlgorithm algorithm,
                     absl::Span<const ByteSpan> parts) const = 0;

  // A fresh private value.
  virtual absl::StatusOr<std::unique_ptr<KeyExchange>> NewKeyExchange(
      KeyExchangeGroup group) const = 0;
  // A given private value (big-endian exponent/scalar; X25519 raw 32 bytes),
  // for known-answer tests.
  virtual absl::StatusOr<std::unique_ptr<KeyExchange>>
  NewKeyExchangeFromPrivateKey(KeyExchangeGroup group,
                               ByteSpan private_key) const = 0;

  // PEM: PKCS#8, or traditional RSA / EC private keys (unencrypted).
  virtual absl::StatusOr<std::unique_ptr<PrivateKey>> LoadPrivateKeyPem(
      std::string_view pem) const = 0;
  // Generates a key (tests, benchmarks, raw-public-key setups). RSA uses
  // `rsa_bits`; others ignore it.
  virtual absl::StatusOr<std::unique_ptr<PrivateKey>> GeneratePrivateKey(
      KeyType type, int rsa_bits) const = 0;
  virtual absl::StatusOr<std::unique_ptr<PublicKey>> ParsePublicKeyDer(
      ByteSpan spki_der) const = 0;

  virtual absl::StatusOr<std::unique_ptr<Certificate>> ParseCertificateDer(
      ByteSpan der) const = 0;
  // All certificates in a PEM bundle (at least one, else an error).
  virtual absl::StatusOr<std::vector<std::unique_ptr<Certificate>>>
  ParseCertificatesPem(std::string_view pem) const = 0;
  // `cas_pem`: one or more CA certificates. `crls`: zero or more CRLs, PEM
  // (any number) or a single DER CRL.
  virtual absl::StatusOr<std::unique_ptr<TrustStore>> NewTrustStore(
      std::string_view cas_pem, std::string_view crls) const = 0;

  virtual void RandomBytes(absl::Span<uint8_t> out) const = 0;

  // MSCHAPv2 primitives (RFC 2759); see mschapv2.h for the protocol steps.
  virtual Bytes Md4(ByteSpan data) const = 0;
  // DES-ECB of one 8-byte block under a 7-byte key, expanded to 8 bytes
  // with parity bits as RFC 2759 §8.6 DesEncrypt() does.
  virtual absl::StatusOr<Bytes> DesEncryptBlock(ByteSpan key7,
                                                ByteSpan block8) const = 0;
};

// Loads the provider object once and returns it. Exits with a clear message
// if the object cannot be found or loaded.
const Provider& GetProvider();

}  // namespace vpn::crypto
