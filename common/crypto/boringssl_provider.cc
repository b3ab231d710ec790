// The BoringSSL implementation of the crypto interface. Built into
// libvpn_crypto_boringssl.so, which provider_loader.cc dlopen()s; this is the
// only file in the project that includes BoringSSL headers.
#include <openssl/aead.h>
#include <openssl/aes.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/curve25519.h>
#include <openssl/des.h>
#include <openssl/dh.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdh.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md4.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"

namespace vpn::crypto {
namespace {

// Takes BoringSSL's thread-local error queue into a message and clears it.
std::string DrainErrors(std::string_view what) {
  std::string message(what);
  uint32_t error;
  while ((error = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(error, buf, sizeof(buf));
    absl::StrAppend(&message, ": ", buf);
  }
  return message;
}

absl::Status InvalidArgument(std::string_view what) {
  return absl::InvalidArgumentError(DrainErrors(what));
}

absl::Status Internal(std::string_view what) {
  return absl::InternalError(DrainErrors(what));
}

const EVP_MD* Digest(HashAlgorithm algorithm) {
  switch (algorithm) {
    case HashAlgorithm::kSha1:
      return EVP_sha1();
    case HashAlgorithm::kSha256:
      return EVP_sha256();
    case HashAlgorithm::kSha384:
      return EVP_sha384();
    case HashAlgorithm::kSha512:
      return EVP_sha512();
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// AEAD.
// ---------------------------------------------------------------------------
class BoringAead final : public Aead {
 public:
  explicit BoringAead(const EVP_AEAD* aead) : aead_(aead) {}

  absl::Status Init(ByteSpan key) {
    if (key.size() != EVP_AEAD_key_length(aead_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("AEAD key must be ", EVP_AEAD_key_length(aead_),
                       " bytes, got ", key.size()));
    }
    if (!EVP_AEAD_CTX_init(ctx_.get(), aead_, key.data(), key.size(),
                           EVP_AEAD_DEFAULT_TAG_LENGTH, nullptr)) {
      return Internal("EVP_AEAD_CTX_init");
    }
    return absl::OkStatus();
  }

  size_t key_size() const override { return EVP_AEAD_key_length(aead_); }
  size_t nonce_size() const override { return EVP_AEAD_nonce_length(aead_); }
  size_t tag_size() const override { return EVP_AEAD_max_tag_len(aead_); }

  absl::StatusOr<Bytes> Seal(ByteSpan nonce, ByteSpan plaintext,
                             ByteSpan aad) const override {
    if (absl::Status s = CheckNonce(nonce); !s.ok()) return s;
    Bytes out(plaintext.size() + tag_size());
    size_t out_len = 0;
    if (!EVP_AEAD_CTX_seal(ctx_.get(), out.data(), &out_len, out.size(),
                           nonce.data(), nonce.size(), plaintext.data(),
                           plaintext.size(), aad.data(), aad.size())) {
      return Internal("AEAD seal");
    }
    out.resize(out_len);
    return out;
  }

  absl::StatusOr<Bytes> Open(ByteSpan nonce, ByteSpan ciphertext,
                             ByteSpan aad) const override {
    if (absl::Status s = CheckNonce(nonce); !s.ok()) return s;
    if (ciphertext.size() < tag_size()) {
      return absl::DataLossError("AEAD input shorter than its tag");
    }
    Bytes out(ciphertext.size() - tag_size());
    size_t out_len = 0;
    if (!EVP_AEAD_CTX_open(ctx_.get(), out.data(), &out_len, out.size(),
                           nonce.data(), nonce.size(), ciphertext.data(),
                           ciphertext.size(), aad.data(), aad.size())) {
      ERR_clear_error();
      return absl::DataLossError("AEAD authentication failed");
    }
    out.resize(out_len);
    return out;
  }

  absl::Status SealInPlace(ByteSpan nonce, MutableByteSpan in_out, ByteSpan aad,
                           MutableByteSpan tag) const override {
    if (absl::Status s = CheckNonce(nonce); !s.ok()) return s;
    if (tag.size() != tag_size()) {
      return absl::InvalidArgumentError("AEAD tag buffer has the wrong size");
    }
    size_t tag_len = 0;
    if (!EVP_AEAD_CTX_seal_scatter(ctx_.get(), in_out.data(), tag.data(),
                                   &tag_len, tag.size(), nonce.data(),
                                   nonce.size(), in_out.data(), in_out.size(),
                                   nullptr, 0, aad.data(), aad.size())) {
      return Internal("AEAD seal");
    }
    return absl::OkStatus();
  }

  absl::Status OpenInPlace(ByteSpan nonce, MutableByteSpan in_out, ByteSpan aad,
                           ByteSpan tag) const override {
    if (absl::Status s = CheckNonce(nonce); !s.ok()) return s;
    if (tag.size() != tag_size()) {
      return absl::DataLossError("AEAD tag has the wrong size");
    }
    if (!EVP_AEAD_CTX_open_gather(ctx_.get(), in_out.data(), nonce.data(),
                                  nonce.size(), in_out.data(), in_out.size(),
                                  tag.data(), tag.size(), aad.data(),
                                  aad.size())) {
      ERR_clear_error();
      return absl::DataLossError("AEAD authentication failed");
    }
    return absl::OkStatus();
  }

 private:
  absl::Status CheckNonce(ByteSpan nonce) const {
    if (nonce.size() != nonce_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("AEAD nonce must be ", nonce_size(), " bytes"));
    }
    return absl::OkStatus();
  }

  const EVP_AEAD* aead_;
  bssl::ScopedEVP_AEAD_CTX ctx_;  // cleansed on destruction
};

// ---------------------------------------------------------------------------
// CBC without padding.
// ---------------------------------------------------------------------------
absl::Status CheckCbcInput(ByteSpan iv, ByteSpan in, MutableByteSpan out,
                           size_t block) {
  if (iv.size() != block) {
    return absl::InvalidArgumentError(
        absl::StrCat("CBC IV must be ", block, " bytes"));
  }
  if (in.size() % block != 0) {
    return absl::InvalidArgumentError(
        "CBC input is not a whole number of blocks");
  }
  if (out.size() < in.size()) {
    return absl::InvalidArgumentError("CBC output buffer too small");
  }
  return absl::OkStatus();
}

class AesCbc final : public CbcCipher {
 public:
  ~AesCbc() override {
    OPENSSL_cleanse(&encrypt_key_, sizeof(encrypt_key_));
    OPENSSL_cleanse(&decrypt_key_, sizeof(decrypt_key_));
  }

  absl::Status Init(ByteSpan key, size_t expected_size) {
    if (key.size() != expected_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "AES-CBC key must be ", expected_size, " bytes, got ", key.size()));
    }
    key_size_ = key.size();
    const unsigned bits = static_cast<unsigned>(key.size() * 8);
    if (AES_set_encrypt_key(key.data(), bits, &encrypt_key_) != 0 ||
        AES_set_decrypt_key(key.data(), bits, &decrypt_key_) != 0) {
      return Internal("AES key schedule");
    }
    return absl::OkStatus();
  }

  size_t key_size() const override { return key_size_; }
  size_t block_size() const override { return AES_BLOCK_SIZE; }

  absl::Status Encrypt(ByteSpan iv, ByteSpan in,
                       MutableByteSpan out) const override {
    return Run(iv, in, out, AES_ENCRYPT);
  }
  absl::Status Decrypt(ByteSpan iv, ByteSpan in,
                       MutableByteSpan out) const override {
    return Run(iv, in, out, AES_DECRYPT);
  }

 private:
  absl::Status Run(ByteSpan iv, ByteSpan in, MutableByteSpan out,
                   int direction) const {
    if (absl::Status s = CheckCbcInput(iv, in, out, AES_BLOCK_SIZE); !s.ok()) {
      return s;
    }
    uint8_t ivec[AES_BLOCK_SIZE];
    std::memcpy(ivec, iv.data(), sizeof(ivec));
    AES_cbc_encrypt(in.data(), out.data(), in.size(),
                    direction == AES_ENCRYPT ? &encrypt_key_ : &decrypt_key_,
                    ivec, direction);
    return absl::OkStatus();
  }

  size_t key_size_ = 0;
  AES_KEY encrypt_key_;
  AES_KEY decrypt_key_;
};

class TripleDesCbc final : public CbcCipher {
 public:
  ~TripleDesCbc() override { OPENSSL_cleanse(schedules_, sizeof(schedules_)); }

  absl::Status Init(ByteSpan key) {
    if (key.size() != 24) {
      return absl::InvalidArgumentError(
          absl::StrCat("3DES key must be 24 bytes, got ", key.size()));
    }
    for (int i = 0; i < 3; ++i) {
      DES_cblock block;
      std::memcpy(block.bytes, key.data() + 8 * i, 8);
      DES_set_key(&block, &schedules_[i]);
      OPENSSL_cleanse(&block, sizeof(block));
    }
    return absl::OkStatus();
  }

  size_t key_size() const override { return 24; }
  size_t block_size() const override { return 8; }

  absl::Status Encrypt(ByteSpan iv, ByteSpan in,
                       MutableByteSpan out) const override {
    return Run(iv, in, out, DES_ENCRYPT);
  }
  absl::Status Decrypt(ByteSpan iv, ByteSpan in,
                       MutableByteSpan out) const override {
    return Run(iv, in, out, DES_DECRYPT);
  }

 private:
  absl::Status Run(ByteSpan iv, ByteSpan in, MutableByteSpan out,
                   int direction) const {
    if (absl::Status s = CheckCbcInput(iv, in, out, 8); !s.ok()) return s;
    DES_cblock ivec;
    std::memcpy(ivec.bytes, iv.data(), 8);
    DES_ede3_cbc_encrypt(in.data(), out.data(), in.size(), &schedules_[0],
                         &schedules_[1], &schedules_[2], &ivec, direction);
    return absl::OkStatus();
  }

  DES_key_schedule schedules_[3];
};

// ---------------------------------------------------------------------------
// HMAC: the keyed state is computed once; each call copies it.
// ---------------------------------------------------------------------------
class KeyedHmac {
 public:
  KeyedHmac() { HMAC_CTX_init(&keyed_); }
  ~KeyedHmac() { HMAC_CTX_cleanup(&keyed_); }
  KeyedHmac(const KeyedHmac&) = delete;
  KeyedHmac& operator=(const KeyedHmac&) = delete;

  absl::Status Init(const EVP_MD* md, ByteSpan key) {
    if (!HMAC_Init_ex(&keyed_, key.data(), key.size(), md, nullptr)) {
      return Internal("HMAC_Init_ex");
    }
    return absl::OkStatus();
  }

  size_t full_size() const { return HMAC_size(&keyed_); }

  // Writes the full HMAC into `out` (EVP_MAX_MD_SIZE bytes).
  absl::Status Run(absl::Span<const ByteSpan> parts, uint8_t* out) const {
    HMAC_CTX ctx;
    HMAC_CTX_init(&ctx);
    bool ok = HMAC_CTX_copy_ex(&ctx, &keyed_);
    for (ByteSpan part : parts) {
      ok = ok && HMAC_Update(&ctx, part.data(), part.size());
    }
    unsigned len = 0;
    ok = ok && HMAC_Final(&ctx, out, &len);
    HMAC_CTX_cleanup(&ctx);
    return ok ? absl::OkStatus() : Internal("HMAC");
  }

 private:
  HMAC_CTX keyed_;
};

class HmacMac final : public Mac {
 public:
  HmacMac(size_t key_size, size_t tag_size)
      : key_size_(key_size), tag_size_(tag_size) {}

  absl::Status Init(const EVP_MD* md, ByteSpan key) {
    if (key.size() != key_size_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "integrity key must be ", key_size_, " bytes, got ", key.size()));
    }
    return hmac_.Init(md, key);
  }

  size_t key_size() const override { return key_size_; }
  size_t tag_size() const override { return tag_size_; }

  absl::Status Compute(absl::Span<const ByteSpan> parts,
                       MutableByteSpan tag) const override {
    if (tag.size() != tag_size_) {
      return absl::InvalidArgumentError("MAC output buffer has the wrong size");
    }
    uint8_t full[EVP_MAX_MD_SIZE];
    absl::Status status = hmac_.Run(parts, full);
    if (status.ok()) std::memcpy(tag.data(), full, tag_size_);
    OPENSSL_cleanse(full, sizeof(full));
    return status;
  }

  bool Verify(absl::Span<const ByteSpan> parts, ByteSpan tag) const override {
    if (tag.size() != tag_size_) return false;
    uint8_t full[EVP_MAX_MD_SIZE];
    bool ok = hmac_.Run(parts, full).ok() &&
              CRYPTO_memcmp(full, tag.data(), tag_size_) == 0;
    OPENSSL_cleanse(full, sizeof(full));
    return ok;
  }

 private:
  size_t key_size_;
  size_t tag_size_;
  KeyedHmac hmac_;
};

class HmacPrf final : public Prf {
 public:
  absl::Status Init(const EVP_MD* md, ByteSpan key) {
    return hmac_.Init(md, key);
  }

  size_t output_size() const override { return hmac_.full_size(); }

  absl::Status Compute(absl::Span<const ByteSpan> parts,
                       MutableByteSpan out) const override {
    if (out.size() != output_size()) {
      return absl::InvalidArgumentError("PRF output buffer has the wrong size");
    }
    return hmac_.Run(parts, out.data());
  }

  absl::StatusOr<SecretBytes> PrfPlus(ByteSpan seed,
                                      size_t length) const override {
    const size_t block = output_size();
    const size_t blocks = (length + block - 1) / block;
    if (blocks > 255) {
      return absl::InvalidArgumentError("prf+ output longer than 255 blocks");
    }
    SecretBytes out(length);
    uint8_t t[EVP_MAX_MD_SIZE];
    size_t t_len = 0;
    for (size_t n = 1, offset = 0; n <= blocks; ++n, offset += block) {
      const uint8_t counter = static_cast<uint8_t>(n);
      absl::Status status =
          hmac_.Run({ByteSpan(t, t_len), seed, ByteSpan(&counter, 1)}, t);
      if (!status.ok()) {
        OPENSSL_cleanse(t, sizeof(t));
        return status;
      }
      t_len = block;
      std::memcpy(out.data() + offset, t, std::min(block, length - offset));
    }
    OPENSSL_cleanse(t, sizeof(t));
    return out;
  }

 private:
  KeyedHmac hmac_;
};

// ---------------------------------------------------------------------------
// Key exchange.
// ---------------------------------------------------------------------------
// RFC 2409 §6.2 (group 2) and RFC 3526 §3, §4 (groups 14, 15); generator 2.
constexpr char kModp1024[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";
constexpr char kModp2048[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";
constexpr char kModp3072[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";

class ModpKeyExchange final : public KeyExchange {
 public:
  explicit ModpKeyExchange(KeyExchangeGroup group) : group_(group) {}

  absl::Status Init(ByteSpan private_key) {
    const char* prime_hex = nullptr;
    unsigned exponent_bits = 0;  // at least twice the group's strength
    switch (group_) {
      case KeyExchangeGroup::kModp1024:
        prime_hex = kModp1024;
        exponent_bits = 256;
        break;
      case KeyExchangeGroup::kModp2048:
        prime_hex = kModp2048;
        exponent_bits = 320;
        break;
      case KeyExchangeGroup::kModp3072:
        prime_hex = kModp3072;
        exponent_bits = 384;
        break;
      default:
        return absl::InvalidArgumentError("not a MODP group");
    }
    BIGNUM* p = nullptr;
    if (!BN_hex2bn(&p, prime_hex)) return Internal("BN_hex2bn");
    bssl::UniquePtr<BIGNUM> g(BN_new());
    if (!g || !BN_set_word(g.get(), 2)) {
      BN_free(p);
      return Internal("BN_set_word");
    }
    dh_.reset(DH_new());
    if (!dh_ || !DH_set0_pqg(dh_.get(), p, nullptr, g.get())) {
      BN_free(p);
      return Internal("DH_set0_pqg");
    }
    g.release();
    prime_len_ = BN_num_bytes(p);
    if (!private_key.empty()) {
      bssl::UniquePtr<BIGNUM> x(
          BN_bin2bn(private_key.data(), private_key.size(), nullptr));
      if (!x || BN_is_zero(x.get()) || BN_cmp(x.get(), p) >= 0) {
        return absl::InvalidArgumentError("MODP private value out of range");
      }
      if (!DH_set0_key(dh_.get(), nullptr, x.get())) return Internal("DH key");
      x.release();
    } else if (!DH_set_length(dh_.get(), exponent_bits)) {
      return Internal("DH_set_length");
    }
    if (!DH_generate_key(dh_.get())) return Internal("DH_generate_key");
    public_value_.resize(prime_len_);
    if (!BN_bn2bin_padded(public_value_.data(), prime_len_,
                          DH_get0_pub_key(dh_.get()))) {
      return Internal("BN_bn2bin_padded");
    }
    return absl::OkStatus();
  }

  KeyExchangeGroup group() const override { return group_; }
  ByteSpan public_value() const override { return public_value_; }

  absl::StatusOr<SecretBytes> ComputeSharedSecret(
      ByteSpan peer) const override {
    if (peer.size() != prime_len_) {
      return absl::InvalidArgumentError(
          absl::StrCat("MODP public value must be ", prime_len_, " bytes, got ",
                       peer.size()));
    }
    bssl::UniquePtr<BIGNUM> y(BN_bin2bn(peer.data(), peer.size(), nullptr));
    if (!y) return Internal("BN_bin2bn");
    // 1 < y < p-1 (RFC 2631 §2.1.5 / NIST SP 800-56A partial validation).
    int flags = 0;
    if (!DH_check_pub_key(dh_.get(), y.get(), &flags) || flags != 0) {
      ERR_clear_error();
      return absl::InvalidArgumentError("invalid MODP public value");
    }
    SecretBytes secret(prime_len_);
    if (DH_compute_key_padded(secret.data(), y.get(), dh_.get()) !=
        static_cast<int>(prime_len_)) {
      return InvalidArgument("MODP key agreement failed");
    }
    return secret;
  }

 private:
  KeyExchangeGroup group_;
  bssl::UniquePtr<DH> dh_;  // DH_free clears the private exponent
  size_t prime_len_ = 0;
  Bytes public_value_;
};

class EcpKeyExchange final : public KeyExchange {
 public:
  explicit EcpKeyExchange(KeyExchangeGroup group) : group_(group) {}

  absl::Status Init(ByteSpan private_key) {
    const int nid = group_ == KeyExchangeGroup::kEcp256 ? NID_X9_62_prime256v1
                                                        : NID_secp384r1;
    key_.reset(EC_KEY_new_by_curve_name(nid));
    if (!key_) return Internal("EC_KEY_new_by_curve_name");
    const EC_GROUP* group = EC_KEY_get0_group(key_.get());
    coordinate_len_ = (EC_GROUP_get_degree(group) + 7) / 8;
    if (!private_key.empty()) {
      bssl::UniquePtr<BIGNUM> d(
          BN_bin2bn(private_key.data(), private_key.size(), nullptr));
      bssl::UniquePtr<EC_POINT> q(EC_POINT_new(group));
      if (!d || !q || !EC_KEY_set_private_key(key_.get(), d.get()) ||
          !EC_POINT_mul(group, q.get(), d.get(), nullptr, nullptr, nullptr) ||
          !EC_KEY_set_public_key(key_.get(), q.get())) {
        return InvalidArgument("ECP private value rejected");
      }
    } else if (!EC_KEY_generate_key(key_.get())) {
      return Internal("EC_KEY_generate_key");
    }
    uint8_t encoded[1 + 2 * 66];
    const size_t len = EC_POINT_point2oct(
        group, EC_KEY_get0_public_key(key_.get()),
        POINT_CONVERSION_UNCOMPRESSED, encoded, sizeof(encoded), nullptr);
    if (len != 1 + 2 * coordinate_len_) return Internal("EC_POINT_point2oct");
    public_value_.assign(encoded + 1, encoded + len);  // drop the 0x04 prefix
    return absl::OkStatus();
  }

  KeyExchangeGroup group() const override { return group_; }
  ByteSpan public_value() const override { return public_value_; }

  absl::StatusOr<SecretBytes> ComputeSharedSecret(
      ByteSpan peer) const override {
    if (peer.size() != 2 * coordinate_len_) {
      return absl::InvalidArgumentError(
          absl::StrCat("ECP public value must be ", 2 * coordinate_len_,
                       " bytes, got ", peer.size()));
    }
    const EC_GROUP* group = EC_KEY_get0_group(key_.get());
    Bytes encoded(1 + peer.size());
    encoded[0] = POINT_CONVERSION_UNCOMPRESSED;
    std::memcpy(encoded.data() + 1, peer.data(), peer.size());
    bssl::UniquePtr<EC_POINT> point(EC_POINT_new(group));
    // oct2point rejects coordinates >= p and points not on the curve.
    if (!point || !EC_POINT_oct2point(group, point.get(), encoded.data(),
                                      encoded.size(), nullptr)) {
      ERR_clear_error();
      return absl::InvalidArgumentError("ECP public value is not on the curve");
    }
    SecretBytes secret(coordinate_len_);
    if (ECDH_compute_key(secret.data(), secret.size(), point.get(), key_.get(),
                         nullptr) != static_cast<int>(coordinate_len_)) {
      return InvalidArgument("ECDH failed");
    }
    return secret;
  }

 private:
  KeyExchangeGroup group_;
  bssl::UniquePtr<EC_KEY> key_;  // EC_KEY_free clears the scalar
  size_t coordinate_len_ = 0;
  Bytes public_value_;
};

class X25519KeyExchange final : public KeyExchange {
 public:
  absl::Status Init(ByteSpan private_key) {
    if (private_key.empty()) {
      X25519_keypair(public_value_, private_key_.data());
    } else if (private_key.size() != 32) {
      return absl::InvalidArgumentError("X25519 private key must be 32 bytes");
    } else {
      std::memcpy(private_key_.data(), private_key.data(), 32);
      X25519_public_from_private(public_value_, private_key_.data());
    }
    return absl::OkStatus();
  }

  KeyExchangeGroup group() const override {
    return KeyExchangeGroup::kCurve25519;
  }
  ByteSpan public_value() const override { return public_value_; }

  absl::StatusOr<SecretBytes> ComputeSharedSecret(
      ByteSpan peer) const override {
    if (peer.size() != 32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "X25519 public value must be 32 bytes, got ", peer.size()));
    }
    SecretBytes secret(32);
    // Returns 0 for an all-zero result (small-order peer point, RFC 8031 §2).
    if (!X25519(secret.data(), private_key_.data(), peer.data())) {
      return absl::InvalidArgumentError(
          "X25519 peer value gives an all-zero shared secret");
    }
    return secret;
  }

 private:
  SecretBytes private_key_{32};
  uint8_t public_value_[32];
};

// ---------------------------------------------------------------------------
// Keys and signatures.
// ---------------------------------------------------------------------------
struct SchemeInfo {
  const EVP_MD* md;  // null for Ed25519
  enum Kind { kPkcs1, kPss, kEcdsaDer, kEcdsaRaw, kEdDsa } kind;
  int raw_curve_nid;  // for kEcdsaRaw
};

SchemeInfo Describe(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kRsaPkcs1Sha1:
      return {EVP_sha1(), SchemeInfo::kPkcs1, 0};
    case SignatureScheme::kRsaPkcs1Sha256:
      return {EVP_sha256(), SchemeInfo::kPkcs1, 0};
    case SignatureScheme::kRsaPkcs1Sha384:
      return {EVP_sha384(), SchemeInfo::kPkcs1, 0};
    case SignatureScheme::kRsaPkcs1Sha512:
      return {EVP_sha512(), SchemeInfo::kPkcs1, 0};
    case SignatureScheme::kRsaPssSha256:
      return {EVP_sha256(), SchemeInfo::kPss, 0};
    case SignatureScheme::kRsaPssSha384:
      return {EVP_sha384(), SchemeInfo::kPss, 0};
    case SignatureScheme::kRsaPssSha512:
      return {EVP_sha512(), SchemeInfo::kPss, 0};
    case SignatureScheme::kEcdsaSha256:
      return {EVP_sha256(), SchemeInfo::kEcdsaDer, 0};
    case SignatureScheme::kEcdsaSha384:
      return {EVP_sha384(), SchemeInfo::kEcdsaDer, 0};
    case SignatureScheme::kEcdsaSha512:
      return {EVP_sha512(), SchemeInfo::kEcdsaDer, 0};
    case SignatureScheme::kEcdsaP256Sha256Raw:
      return {EVP_sha256(), SchemeInfo::kEcdsaRaw, NID_X9_62_prime256v1};
    case SignatureScheme::kEcdsaP384Sha384Raw:
      return {EVP_sha384(), SchemeInfo::kEcdsaRaw, NID_secp384r1};
    case SignatureScheme::kEcdsaP521Sha512Raw:
      return {EVP_sha512(), SchemeInfo::kEcdsaRaw, NID_secp521r1};
    case SignatureScheme::kEd25519:
      return {nullptr, SchemeInfo::kEdDsa, 0};
  }
  return {nullptr, SchemeInfo::kEdDsa, -1};
}

absl::StatusOr<KeyType> KeyTypeOf(const EVP_PKEY* pkey) {
  switch (EVP_PKEY_id(pkey)) {
    case EVP_PKEY_RSA:
      return KeyType::kRsa;
    case EVP_PKEY_ED25519:
      return KeyType::kEd25519;
    case EVP_PKEY_EC: {
      const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(pkey);
      switch (EC_GROUP_get_curve_name(EC_KEY_get0_group(ec))) {
        case NID_X9_62_prime256v1:
          return KeyType::kEcP256;
        case NID_secp384r1:
          return KeyType::kEcP384;
        case NID_secp521r1:
          return KeyType::kEcP521;
      }
      break;
    }
  }
  return absl::InvalidArgumentError("unsupported key type");
}

int CurveNid(KeyType type) {
  switch (type) {
    case KeyType::kEcP256:
      return NID_X9_62_prime256v1;
    case KeyType::kEcP384:
      return NID_secp384r1;
    case KeyType::kEcP521:
      return NID_secp521r1;
    default:
      return 0;
  }
}

// Whether `scheme` can be used with a key of `type`.
absl::Status CheckScheme(const SchemeInfo& info, KeyType type) {
  bool fits = false;
  switch (info.kind) {
    case SchemeInfo::kPkcs1:
    case SchemeInfo::kPss:
      fits = type == KeyType::kRsa;
      break;
    case SchemeInfo::kEcdsaDer:
      fits = CurveNid(type) != 0;
      break;
    case SchemeInfo::kEcdsaRaw:
      fits = CurveNid(type) == info.raw_curve_nid;
      break;
    case SchemeInfo::kEdDsa:
      fits = type == KeyType::kEd25519;
      break;
  }
  return fits ? absl::OkStatus()
              : absl::InvalidArgumentError(
                    "signature scheme does not fit the key");
}

// Sets up `ctx` for signing or verifying with `info` over `pkey`.
bool InitDigestContext(EVP_MD_CTX* ctx, const SchemeInfo& info, EVP_PKEY* pkey,
                       bool sign) {
  EVP_PKEY_CTX* pctx = nullptr;
  const int ok = sign
                     ? EVP_DigestSignInit(ctx, &pctx, info.md, nullptr, pkey)
                     : EVP_DigestVerifyInit(ctx, &pctx, info.md, nullptr, pkey);
  if (!ok) return false;
  if (info.kind == SchemeInfo::kPss) {
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1) &&  // = hash length
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, info.md);
  }
  return true;
}

size_t EcOrderLength(const EVP_PKEY* pkey) {
  const EC_GROUP* group = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(pkey));
  return BN_num_bytes(EC_GROUP_get0_order(group));
}

class BoringPublicKey final : public PublicKey {
 public:
  BoringPublicKey(bssl::UniquePtr<EVP_PKEY> pkey, KeyType type)
      : pkey_(std::move(pkey)), type_(type) {}

  static std::unique_ptr<PublicKey> Wrap(bssl::UniquePtr<EVP_PKEY> pkey) {
    if (!pkey) return nullptr;
    absl::StatusOr<KeyType> type = KeyTypeOf(pkey.get());
    if (!type.ok()) return nullptr;
    return std::make_unique<BoringPublicKey>(std::move(pkey), *type);
  }

  KeyType type() const override { return type_; }
  size_t bits() const override { return EVP_PKEY_bits(pkey_.get()); }

  Bytes spki_der() const override {
    bssl::ScopedCBB cbb;
    uint8_t* data = nullptr;
    size_t len = 0;
    if (!CBB_init(cbb.get(), 128) ||
        !EVP_marshal_public_key(cbb.get(), pkey_.get()) ||
        !CBB_finish(cbb.get(), &data, &len)) {
      ERR_clear_error();
      return {};
    }
    Bytes out(data, data + len);
    OPENSSL_free(data);
    return out;
  }

  absl::Status Verify(SignatureScheme scheme, ByteSpan data,
                      ByteSpan signature) const override {
    const SchemeInfo info = Describe(scheme);
    if (absl::Status s = CheckScheme(info, type_); !s.ok()) return s;
    Bytes der_signature;
    if (info.kind == SchemeInfo::kEcdsaRaw) {
      // RFC 4754 §7: r || s, each the size of the group order.
      const size_t half = EcOrderLength(pkey_.get());
      if (signature.size() != 2 * half) {
        return absl::InvalidArgumentError("ECDSA signature has the wrong size");
      }
      bssl::UniquePtr<ECDSA_SIG> sig(ECDSA_SIG_new());
      BIGNUM* r = BN_bin2bn(signature.data(), half, nullptr);
      BIGNUM* s = BN_bin2bn(signature.data() + half, half, nullptr);
      if (!sig || !r || !s || !ECDSA_SIG_set0(sig.get(), r, s)) {
        BN_free(r);
        BN_free(s);
        return Internal("ECDSA_SIG_set0");
      }
      uint8_t* der = nullptr;
      size_t der_len = 0;
      if (!ECDSA_SIG_to_bytes(&der, &der_len, sig.get())) {
        return Internal("ECDSA_SIG_to_bytes");
      }
      der_signature.assign(der, der + der_len);
      OPENSSL_free(der);
      signature = der_signature;
    }
    bssl::ScopedEVP_MD_CTX ctx;
    if (!InitDigestContext(ctx.get(), info, pkey_.get(), /*sign=*/false)) {
      return Internal("verify init");
    }
    if (!EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                          data.data(), data.size())) {
      ERR_clear_error();
      return absl::InvalidArgumentError("signature verification failed");
    }
    return absl::OkStatus();
  }

 private:
  bssl::UniquePtr<EVP_PKEY> pkey_;
  KeyType type_;
};

class BoringPrivateKey final : public PrivateKey {
 public:
  BoringPrivateKey(bssl::UniquePtr<EVP_PKEY> pkey, KeyType type)
      : pkey_(std::move(pkey)), type_(type) {}

  KeyType type() const override { return type_; }

  std::unique_ptr<PublicKey> public_key() const override {
    // Re-parse the SPKI so the public object holds no private material.
    bssl::ScopedCBB cbb;
    uint8_t* data = nullptr;
    size_t len = 0;
    if (!CBB_init(cbb.get(), 128) ||
        !EVP_marshal_public_key(cbb.get(), pkey_.get()) ||
        !CBB_finish(cbb.get(), &data, &len)) {
      ERR_clear_error();
      return nullptr;
    }
    CBS cbs;
    CBS_init(&cbs, data, len);
    bssl::UniquePtr<EVP_PKEY> pub(EVP_parse_public_key(&cbs));
    OPENSSL_free(data);
    return BoringPublicKey::Wrap(std::move(pub));
  }

  absl::StatusOr<Bytes> Sign(SignatureScheme scheme,
                             ByteSpan data) const override {
    const SchemeInfo info = Describe(scheme);
    if (absl::Status s = CheckScheme(info, type_); !s.ok()) return s;
    bssl::ScopedEVP_MD_CTX ctx;
    if (!InitDigestContext(ctx.get(), info, pkey_.get(), /*sign=*/true)) {
      return Internal("sign init");
    }
    size_t sig_len = 0;
    if (!EVP_DigestSign(ctx.get(), nullptr, &sig_len, data.data(),
                        data.size())) {
      return Internal("sign size");
    }
    Bytes signature(sig_len);
    if (!EVP_DigestSign(ctx.get(), signature.data(), &sig_len, data.data(),
                        data.size())) {
      return Internal("sign");
    }
    signature.resize(sig_len);
    if (info.kind != SchemeInfo::kEcdsaRaw) return signature;

    // DER Ecdsa-Sig-Value to r || s.
    bssl::UniquePtr<ECDSA_SIG> sig(
        ECDSA_SIG_from_bytes(signature.data(), signature.size()));
    if (!sig) return Internal("ECDSA_SIG_from_bytes");
    const size_t half = EcOrderLength(pkey_.get());
    Bytes raw(2 * half);
    if (!BN_bn2bin_padded(raw.data(), half, ECDSA_SIG_get0_r(sig.get())) ||
        !BN_bn2bin_padded(raw.data() + half, half,
                          ECDSA_SIG_get0_s(sig.get()))) {
      return Internal("BN_bn2bin_padded");
    }
    return raw;
  }

 private:
  bssl::UniquePtr<EVP_PKEY> pkey_;  // EVP_PKEY_free clears the key
  KeyType type_;
};

// ---------------------------------------------------------------------------
// X.509.
// ---------------------------------------------------------------------------
std::string NameToString(const X509_NAME* name) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "";
  }
  const uint8_t* contents = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &contents, &len);
  return std::string(reinterpret_cast<const char*>(contents), len);
}

absl::Time AsnTimeToAbsl(const ASN1_TIME* time) {
  if (time == nullptr) return absl::InfinitePast();
  bssl::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0, seconds = 0;
  if (!epoch || !ASN1_TIME_diff(&days, &seconds, epoch.get(), time)) {
    ERR_clear_error();
    return absl::InfinitePast();
  }
  return absl::FromUnixSeconds(int64_t{days} * 86400 + seconds);
}

std::string AsnStringToString(const ASN1_STRING* str) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(str)),
                     ASN1_STRING_length(str));
}

const char* EkuOid(ExtendedKeyUsage usage) {
  switch (usage) {
    case ExtendedKeyUsage::kServerAuth:
      return "1.3.6.1.5.5.7.3.1";
    case ExtendedKeyUsage::kClientAuth:
      return "1.3.6.1.5.5.7.3.2";
    case ExtendedKeyUsage::kIpsecIke:
      return "1.3.6.1.5.5.7.3.17";
    case ExtendedKeyUsage::kIkeIntermediate:
      return "1.3.6.1.5.5.8.2.2";
    case ExtendedKeyUsage::kAny:
      return "2.5.29.37.0";
  }
  return "";
}

class BoringCertificate final : public Certificate {
 public:
  explicit BoringCertificate(bssl::UniquePtr<X509> x509)
      : x509_(std::move(x509)) {
    uint8_t* der = nullptr;
    const int len = i2d_X509(x509_.get(), &der);
    if (len > 0) der_.assign(der, der + len);
    OPENSSL_free(der);
    ERR_clear_error();
  }

  X509* x509() const { return x509_.get(); }

  ByteSpan der() const override { return der_; }
  std::string subject() const override {
    return NameToString(X509_get_subject_name(x509_.get()));
  }
  std::string issuer() const override {
    return NameToString(X509_get_issuer_name(x509_.get()));
  }
  Bytes subject_der() const override {
    uint8_t* der = nullptr;
    const int len = i2d_X509_NAME(X509_get_subject_name(x509_.get()), &der);
    Bytes out;
    if (len > 0) out.assign(der, der + len);
    OPENSSL_free(der);
    ERR_clear_error();
    return out;
  }
  std::string serial_hex() const override {
    bssl::UniquePtr<BIGNUM> bn(
        ASN1_INTEGER_to_BN(X509_get0_serialNumber(x509_.get()), nullptr));
    if (!bn) {
      ERR_clear_error();
      return "";
    }
    char* hex = BN_bn2hex(bn.get());
    std::string out = hex ? hex : "";
    OPENSSL_free(hex);
    return out;
  }
  absl::Time not_before() const override {
    return AsnTimeToAbsl(X509_get0_notBefore(x509_.get()));
  }
  absl::Time not_after() const override {
    return AsnTimeToAbsl(X509_get0_notAfter(x509_.get()));
  }

  SubjectAltNames subject_alt_names() const override {
    SubjectAltNames out;
    bssl::UniquePtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(x509_.get(), NID_subject_alt_name, nullptr, nullptr)));
    ERR_clear_error();
    if (!names) return out;
    for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
      switch (name->type) {
        case GEN_DNS:
          out.dns_names.push_back(AsnStringToString(name->d.dNSName));
          break;
        case GEN_EMAIL:
          out.emails.push_back(AsnStringToString(name->d.rfc822Name));
          break;
        case GEN_IPADD: {
          const ASN1_OCTET_STRING* ip = name->d.iPAddress;
          const uint8_t* data = ASN1_STRING_get0_data(ip);
          out.ip_addresses.emplace_back(data, data + ASN1_STRING_length(ip));
          break;
        }
        default:
          break;
      }
    }
    return out;
  }

  bool has_extended_key_usage() const override {
    return X509_get_ext_by_NID(x509_.get(), NID_ext_key_usage, -1) >= 0;
  }

  bool HasExtendedKeyUsage(ExtendedKeyUsage usage) const override {
    bssl::UniquePtr<EXTENDED_KEY_USAGE> ekus(static_cast<EXTENDED_KEY_USAGE*>(
        X509_get_ext_d2i(x509_.get(), NID_ext_key_usage, nullptr, nullptr)));
    ERR_clear_error();
    if (!ekus) return false;
    for (size_t i = 0; i < sk_ASN1_OBJECT_num(ekus.get()); ++i) {
      char oid[128];
      const int len =
          OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(ekus.get(), i),
                      /*always_return_oid=*/1);
      if (len > 0 && len < static_cast<int>(sizeof(oid)) &&
          std::string_view(oid) == EkuOid(usage)) {
        return true;
      }
    }
    return false;
  }

  bool is_ca() const override {
    const bool ca = X509_check_ca(x509_.get()) > 0;
    ERR_clear_error();
    return ca;
  }

  std::unique_ptr<PublicKey> public_key() const override {
    bssl::UniquePtr<EVP_PKEY> pkey(X509_get_pubkey(x509_.get()));
    ERR_clear_error();
    return BoringPublicKey::Wrap(std::move(pkey));
  }

 private:
  bssl::UniquePtr<X509> x509_;
  Bytes der_;
};

// Tolerates missing CRLs; every other error still fails verification.
int IgnoreMissingCrl(int ok, X509_STORE_CTX* ctx) {
  if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL) {
    return 1;
  }
  return ok;
}

bool SanContains(const SubjectAltNames& sans, const VerifyOptions& options) {
  if (!options.dns_name.empty()) {
    bool found = false;
    for (const std::string& dns : sans.dns_names) {
      found = found || absl::EqualsIgnoreCase(dns, options.dns_name);
    }
    if (!found) return false;
  }
  if (!options.email.empty()) {
    bool found = false;
    for (const std::string& email : sans.emails) {
      found = found || absl::EqualsIgnoreCase(email, options.email);
    }
    if (!found) return false;
  }
  if (!options.ip_address.empty()) {
    bool found = false;
    for (const Bytes& ip : sans.ip_addresses) {
      found = found || ip == options.ip_address;
    }
    if (!found) return false;
  }
  return true;
}

class BoringTrustStore final : public TrustStore {
 public:
  BoringTrustStore(bssl::UniquePtr<X509_STORE> store, bool has_crls)
      : store_(std::move(store)), has_crls_(has_crls) {}

  absl::Status Verify(const Certificate& leaf,
                      absl::Span<const Certificate* const> intermediates,
                      const VerifyOptions& options) const override {
    // Every Certificate comes from this provider.
    const auto& boring_leaf = static_cast<const BoringCertificate&>(leaf);
    bssl::UniquePtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
    if (!untrusted) return Internal("sk_X509_new_null");
    for (const Certificate* cert : intermediates) {
      X509* x509 = static_cast<const BoringCertificate*>(cert)->x509();
      if (!sk_X509_push(untrusted.get(), x509)) return Internal("sk_X509_push");
      X509_up_ref(x509);  // the stack's deleter drops this reference
    }
    bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    if (!ctx || !X509_STORE_CTX_init(ctx.get(), store_.get(),
                                     boring_leaf.x509(), untrusted.get())) {
      return Internal("X509_STORE_CTX_init");
    }
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, absl::ToUnixSeconds(options.time));
    if (has_crls_ || options.require_crl) {
      X509_VERIFY_PARAM_set_flags(
          param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
      if (!options.require_crl) {
        X509_STORE_CTX_set_verify_cb(ctx.get(), IgnoreMissingCrl);
      }
    }
    if (X509_verify_cert(ctx.get()) != 1) {
      const int error = X509_STORE_CTX_get_error(ctx.get());
      const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
      ERR_clear_error();
      return absl::PermissionDeniedError(
          absl::StrCat("certificate chain rejected at depth ", depth, ": ",
                       X509_verify_cert_error_string(error)));
    }

    if (!options.acceptable_ekus.empty()) {
      if (leaf.has_extended_key_usage()) {
        bool acceptable = leaf.HasExtendedKeyUsage(ExtendedKeyUsage::kAny);
        for (ExtendedKeyUsage usage : options.acceptable_ekus) {
          acceptable = acceptable || leaf.HasExtendedKeyUsage(usage);
        }
        if (!acceptable) {
          return absl::PermissionDeniedError(
              "certificate's extendedKeyUsage does not allow this use");
        }
      } else if (options.require_eku_extension) {
        return absl::PermissionDeniedError(
            "certificate has no extendedKeyUsage extension");
      }
    }
    if (!SanContains(leaf.subject_alt_names(), options)) {
      return absl::PermissionDeniedError(
          "certificate's subjectAltName does not contain the identity");
    }
    return absl::OkStatus();
  }

 private:
  bssl::UniquePtr<X509_STORE> store_;
  bool has_crls_;
};

int NoPassword(char*, int, int, void*) { return 0; }  // never prompt

bool IsPem(std::string_view text) {
  return absl::StrContains(absl::string_view(text.data(), text.size()),
                           "-----BEGIN ");
}

// ---------------------------------------------------------------------------
// The provider.
// ---------------------------------------------------------------------------
class BoringSslProvider final : public Provider {
 public:
  absl::StatusOr<std::unique_ptr<Aead>> NewAead(AeadAlgorithm algorithm,
                                                ByteSpan key) const override {
    const EVP_AEAD* aead = nullptr;
    switch (algorithm) {
      case AeadAlgorithm::kAes128Gcm16:
        aead = EVP_aead_aes_128_gcm();
        break;
      case AeadAlgorithm::kAes256Gcm16:
        aead = EVP_aead_aes_256_gcm();
        break;
      case AeadAlgorithm::kChaCha20Poly1305:
        aead = EVP_aead_chacha20_poly1305();
        break;
    }
    if (aead == nullptr) return absl::InvalidArgumentError("unknown AEAD");
    auto out = std::make_unique<BoringAead>(aead);
    if (absl::Status s = out->Init(key); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::unique_ptr<CbcCipher>> NewCbcCipher(
      CbcAlgorithm algorithm, ByteSpan key) const override {
    if (algorithm == CbcAlgorithm::k3DesCbc) {
      auto out = std::make_unique<TripleDesCbc>();
      if (absl::Status s = out->Init(key); !s.ok()) return s;
      return out;
    }
    size_t key_size = 0;
    switch (algorithm) {
      case CbcAlgorithm::kAes128Cbc:
        key_size = 16;
        break;
      case CbcAlgorithm::kAes192Cbc:
        key_size = 24;
        break;
      case CbcAlgorithm::kAes256Cbc:
        key_size = 32;
        break;
      default:
        return absl::InvalidArgumentError("unknown CBC cipher");
    }
    auto out = std::make_unique<AesCbc>();
    if (absl::Status s = out->Init(key, key_size); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::unique_ptr<Mac>> NewMac(IntegrityAlgorithm algorithm,
                                              ByteSpan key) const override {
    const EVP_MD* md = nullptr;
    size_t tag_size = 0;
    switch (algorithm) {
      case IntegrityAlgorithm::kHmacSha1_96:  // RFC 2404
        md = EVP_sha1();
        tag_size = 12;
        break;
      case IntegrityAlgorithm::kHmacSha256_128:  // RFC 4868
        md = EVP_sha256();
        tag_size = 16;
        break;
      case IntegrityAlgorithm::kHmacSha384_192:
        md = EVP_sha384();
        tag_size = 24;
        break;
      case IntegrityAlgorithm::kHmacSha512_256:
        md = EVP_sha512();
        tag_size = 32;
        break;
    }
    if (md == nullptr) return absl::InvalidArgumentError("unknown integrity");
    auto out = std::make_unique<HmacMac>(EVP_MD_size(md), tag_size);
    if (absl::Status s = out->Init(md, key); !s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::unique_ptr<Prf>> NewPrf(PrfAlgorithm algorithm,
                                              ByteSpan key) const override {
    const EVP_MD* md = nullptr;
    switch (algorithm) {
      case PrfAlgorithm::kHmacSha1:
        md = EVP_sha1();
        break;
      case PrfAlgorithm::kHmacSha256:
        md = EVP_sha256();
        break;
      case PrfAlgorithm::kHmacSha384:
        md = EVP_sha384();
        break;
      case PrfAlgorithm::kHmacSha512:
        md = EVP_sha512();
        break;
    }
    if (md == nullptr) return absl::InvalidArgumentError("unknown PRF");
    auto out = std::make_unique<HmacPrf>();
    if (absl::Status s = out->Init(md, key); !s.ok()) return s;
    return out;
  }

  Bytes Hash(HashAlgorithm algorithm,
             absl::Span<const ByteSpan> parts) const override {
    const EVP_MD* md = Digest(algorithm);
    if (md == nullptr) return {};
    bssl::ScopedEVP_MD_CTX ctx;
    Bytes out(EVP_MD_size(md));
    bool ok = EVP_DigestInit_ex(ctx.get(), md, nullptr);
    for (ByteSpan part : parts) {
      ok = ok && EVP_DigestUpdate(ctx.get(), part.data(), part.size());
    }
    ok = ok && EVP_DigestFinal_ex(ctx.get(), out.data(), nullptr);
    if (!ok) {
      ERR_clear_error();
      return {};
    }
    return out;
  }

  absl::StatusOr<std::unique_ptr<KeyExchange>> NewKeyExchange(
      KeyExchangeGroup group) const override {
    return MakeKeyExchange(group, {});
  }

  absl::StatusOr<std::unique_ptr<KeyExchange>> NewKeyExchangeFromPrivateKey(
      KeyExchangeGroup group, ByteSpan private_key) const override {
    if (private_key.empty()) {
      return absl::InvalidArgumentError("empty private key");
    }
    return MakeKeyExchange(group, private_key);
  }

  absl::StatusOr<std::unique_ptr<PrivateKey>> LoadPrivateKeyPem(
      std::string_view pem) const override {
    bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
    if (!bio) return Internal("BIO_new_mem_buf");
    bssl::UniquePtr<EVP_PKEY> pkey(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
    if (!pkey) return InvalidArgument("cannot parse PEM private key");
    absl::StatusOr<KeyType> type = KeyTypeOf(pkey.get());
    if (!type.ok()) return type.status();
    return std::make_unique<BoringPrivateKey>(std::move(pkey), *type);
  }

  absl::StatusOr<std::unique_ptr<PrivateKey>> GeneratePrivateKey(
      KeyType type, int rsa_bits) const override {
    bssl::UniquePtr<EVP_PKEY> pkey(EVP_PKEY_new());
    if (!pkey) return Internal("EVP_PKEY_new");
    if (type == KeyType::kRsa) {
      if (rsa_bits < 2048 || rsa_bits > 8192) {
        return absl::InvalidArgumentError("RSA size must be 2048..8192 bits");
      }
      bssl::UniquePtr<RSA> rsa(RSA_new());
      bssl::UniquePtr<BIGNUM> e(BN_new());
      if (!rsa || !e || !BN_set_word(e.get(), RSA_F4) ||
          !RSA_generate_key_ex(rsa.get(), rsa_bits, e.get(), nullptr) ||
          !EVP_PKEY_assign_RSA(pkey.get(), rsa.release())) {
        return Internal("RSA key generation");
      }
    } else if (type == KeyType::kEd25519) {
      bssl::UniquePtr<EVP_PKEY_CTX> ctx(
          EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
      EVP_PKEY* raw = nullptr;
      if (!ctx || !EVP_PKEY_keygen_init(ctx.get()) ||
          !EVP_PKEY_keygen(ctx.get(), &raw)) {
        return Internal("Ed25519 key generation");
      }
      pkey.reset(raw);
    } else {
      bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(CurveNid(type)));
      if (!ec || !EC_KEY_generate_key(ec.get()) ||
          !EVP_PKEY_assign_EC_KEY(pkey.get(), ec.release())) {
        return Internal("EC key generation");
      }
    }
    return std::make_unique<BoringPrivateKey>(std::move(pkey), type);
  }

  absl::StatusOr<std::unique_ptr<PublicKey>> ParsePublicKeyDer(
      ByteSpan spki_der) const override {
    CBS cbs;
    CBS_init(&cbs, spki_der.data(), spki_der.size());
    bssl::UniquePtr<EVP_PKEY> pkey(EVP_parse_public_key(&cbs));
    if (!pkey || CBS_len(&cbs) != 0) {
      return InvalidArgument("cannot parse SubjectPublicKeyInfo");
    }
    std::unique_ptr<PublicKey> key = BoringPublicKey::Wrap(std::move(pkey));
    if (!key) return absl::InvalidArgumentError("unsupported key type");
    return key;
  }

  absl::StatusOr<std::unique_ptr<Certificate>> ParseCertificateDer(
      ByteSpan der) const override {
    const uint8_t* cursor = der.data();
    bssl::UniquePtr<X509> x509(d2i_X509(nullptr, &cursor, der.size()));
    if (!x509) return InvalidArgument("malformed certificate");
    if (cursor != der.data() + der.size()) {
      return absl::InvalidArgumentError("trailing data after certificate");
    }
    return std::make_unique<BoringCertificate>(std::move(x509));
  }

  absl::StatusOr<std::vector<std::unique_ptr<Certificate>>>
  ParseCertificatesPem(std::string_view pem) const override {
    absl::StatusOr<std::vector<bssl::UniquePtr<X509>>> x509s =
        ReadPemCerts(pem);
    if (!x509s.ok()) return x509s.status();
    std::vector<std::unique_ptr<Certificate>> out;
    for (auto& x509 : *x509s) {
      out.push_back(std::make_unique<BoringCertificate>(std::move(x509)));
    }
    return out;
  }

  absl::StatusOr<std::unique_ptr<TrustStore>> NewTrustStore(
      std::string_view cas_pem, std::string_view crls) const override {
    absl::StatusOr<std::vector<bssl::UniquePtr<X509>>> cas =
        ReadPemCerts(cas_pem);
    if (!cas.ok()) return cas.status();
    bssl::UniquePtr<X509_STORE> store(X509_STORE_new());
    if (!store) return Internal("X509_STORE_new");
    for (const auto& ca : *cas) {
      if (!X509_STORE_add_cert(store.get(), ca.get())) {
        return Internal("X509_STORE_add_cert");
      }
    }
    int crl_count = 0;
    if (IsPem(crls)) {
      bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(crls.data(), crls.size()));
      while (true) {
        bssl::UniquePtr<X509_CRL> crl(
            PEM_read_bio_X509_CRL(bio.get(), nullptr, NoPassword, nullptr));
        if (!crl) break;
        if (!X509_STORE_add_crl(store.get(), crl.get())) {
          return Internal("X509_STORE_add_crl");
        }
        ++crl_count;
      }
      ERR_clear_error();
      if (crl_count == 0) {
        return absl::InvalidArgumentError("no CRL found in PEM input");
      }
    } else if (!crls.empty()) {
      const uint8_t* cursor = reinterpret_cast<const uint8_t*>(crls.data());
      bssl::UniquePtr<X509_CRL> crl(
          d2i_X509_CRL(nullptr, &cursor, crls.size()));
      if (!crl) return InvalidArgument("malformed DER CRL");
      if (!X509_STORE_add_crl(store.get(), crl.get())) {
        return Internal("X509_STORE_add_crl");
      }
      crl_count = 1;
    }
    return std::make_unique<BoringTrustStore>(std::move(store), crl_count > 0);
  }

  void RandomBytes(absl::Span<uint8_t> out) const override {
    RAND_bytes(out.data(), out.size());
  }

  Bytes Md4(ByteSpan data) const override {
    Bytes out(MD4_DIGEST_LENGTH);
    MD4(data.data(), data.size(), out.data());
    return out;
  }

  absl::StatusOr<Bytes> DesEncryptBlock(ByteSpan key7,
                                        ByteSpan block8) const override {
    if (key7.size() != 7 || block8.size() != 8) {
      return absl::InvalidArgumentError(
          "DES needs a 7-byte key and an 8-byte block");
    }
    // Spread 56 key bits over 8 bytes, leaving the low (parity) bit free.
    DES_cblock key;
    key.bytes[0] = key7[0];
    for (int i = 1; i < 7; ++i) {
      key.bytes[i] =
          static_cast<uint8_t>((key7[i - 1] << (8 - i)) | (key7[i] >> i));
    }
    key.bytes[7] = static_cast<uint8_t>(key7[6] << 1);
    DES_set_odd_parity(&key);
    DES_key_schedule schedule;
    DES_set_key(&key, &schedule);
    DES_cblock in, out;
    std::memcpy(in.bytes, block8.data(), 8);
    DES_ecb_encrypt(&in, &out, &schedule, DES_ENCRYPT);
    Bytes result(out.bytes, out.bytes + 8);
    OPENSSL_cleanse(&key, sizeof(key));
    OPENSSL_cleanse(&schedule, sizeof(schedule));
    return result;
  }

 private:
  static absl::StatusOr<std::unique_ptr<KeyExchange>> MakeKeyExchange(
      KeyExchangeGroup group, ByteSpan private_key) {
    switch (group) {
      case KeyExchangeGroup::kModp1024:
      case KeyExchangeGroup::kModp2048:
      case KeyExchangeGroup::kModp3072: {
        auto out = std::make_unique<ModpKeyExchange>(group);
        if (absl::Status s = out->Init(private_key); !s.ok()) return s;
        return out;
      }
      case KeyExchangeGroup::kEcp256:
      case KeyExchangeGroup::kEcp384: {
        auto out = std::make_unique<EcpKeyExchange>(group);
        if (absl::Status s = out->Init(private_key); !s.ok()) return s;
        return out;
      }
      case KeyExchangeGroup::kCurve25519: {
        auto out = std::make_unique<X25519KeyExchange>();
        if (absl::Status s = out->Init(private_key); !s.ok()) return s;
        return out;
      }
    }
    return absl::InvalidArgumentError("unsupported key exchange group");
  }

  static absl::StatusOr<std::vector<bssl::UniquePtr<X509>>> ReadPemCerts(
      std::string_view pem) {
    bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
    if (!bio) return Internal("BIO_new_mem_buf");
    std::vector<bssl::UniquePtr<X509>> out;
    while (true) {
      bssl::UniquePtr<X509> x509(
          PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
      if (!x509) break;
      out.push_back(std::move(x509));
    }
    // End of input shows up as PEM_R_NO_START_LINE; anything else is damage.
    const uint32_t error = ERR_peek_last_error();
    const bool clean_end = ERR_GET_LIB(error) == ERR_LIB_PEM &&
                           ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
    if (!out.empty() && !clean_end) {
      return InvalidArgument("malformed certificate in PEM input");
    }
    ERR_clear_error();
    if (out.empty()) {
      return absl::InvalidArgumentError("no certificate found in PEM input");
    }
    return out;
  }
};

}  // namespace
}  // namespace vpn::crypto

// The object's one exported symbol (see provider.lds). Returns null when the
// caller was built against another interface version.
extern "C" __attribute__((visibility("default"))) vpn::crypto::Provider*
vpn_crypto_provider_v1(int abi_version) {
  if (abi_version != vpn::crypto::kProviderAbiVersion) return nullptr;
  static auto* const provider = new vpn::crypto::BoringSslProvider();
  return provider;
}
