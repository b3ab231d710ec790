// Measures the crypto interface against direct BoringSSL calls in one run and
// prints a Markdown table (docs/benchmarks.md, "Crypto"). A program, not a
// test: bazel run -c opt //common/crypto:crypto_benchmark
//
// Each row alternates the two sides for several repetitions and reports the
// medians; "ratio" is interface / direct throughput (1.00 = no overhead).
// This binary links BoringSSL directly for the direct side, so it must not
// link gRPC (see provider_loader.cc).
#include <openssl/aead.h>
#include <openssl/aes.h>
#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/des.h>
#include <openssl/dh.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdh.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/crypto/crypto.h"

namespace vpn::crypto {
namespace {

constexpr int kRepetitions = 7;
constexpr double kMinSeconds = 0.12;

// Operations per second of `op`, run in growing batches for kMinSeconds.
double OpsPerSecond(const std::function<void()>& op) {
  using Clock = std::chrono::steady_clock;
  long iterations = 0;
  long batch = 1;
  const auto start = Clock::now();
  double elapsed = 0;
  while (elapsed < kMinSeconds) {
    for (long i = 0; i < batch; ++i) op();
    iterations += batch;
    batch *= 2;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  }
  return iterations / elapsed;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct Row {
  std::string name;
  std::string unit;
  double interface_rate;
  double direct_rate;
};

std::vector<Row> rows;

// `bytes` > 0 reports MB/s, else operations per second.
void Measure(const std::string& name, size_t bytes,
             const std::function<void()>& through_interface,
             const std::function<void()>& direct) {
  through_interface();  // warm up
  direct();
  std::vector<double> a, b;
  for (int i = 0; i < kRepetitions; ++i) {
    a.push_back(OpsPerSecond(through_interface));
    b.push_back(OpsPerSecond(direct));
  }
  const double scale = bytes > 0 ? bytes / 1e6 : 1.0;
  rows.push_back({name, bytes > 0 ? "MB/s" : "ops/s", Median(a) * scale,
                  Median(b) * scale});
  std::fprintf(stderr, "%-40s %12.1f %12.1f %6.3f\n", name.c_str(),
               rows.back().interface_rate, rows.back().direct_rate,
               rows.back().interface_rate / rows.back().direct_rate);
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "benchmark setup failed: %s\n", what);
    std::exit(1);
  }
}

void BenchAead(const Provider& p) {
  const struct {
    const char* name;
    AeadAlgorithm algorithm;
    const EVP_AEAD* aead;
  } cases[] = {
      {"AES-128-GCM-16", AeadAlgorithm::kAes128Gcm16, EVP_aead_aes_128_gcm()},
      {"AES-256-GCM-16", AeadAlgorithm::kAes256Gcm16, EVP_aead_aes_256_gcm()},
      {"ChaCha20-Poly1305", AeadAlgorithm::kChaCha20Poly1305,
       EVP_aead_chacha20_poly1305()},
  };
  const uint8_t nonce[12] = {1, 2, 3};
  const uint8_t aad[8] = {9, 9, 9, 9, 0, 0, 0, 1};  // ESP SPI | seq
  for (const auto& c : cases) {
    Bytes key(EVP_AEAD_key_length(c.aead), 0x42);
    auto aead = p.NewAead(c.algorithm, key);
    Check(aead.ok(), "NewAead");
    bssl::ScopedEVP_AEAD_CTX ctx;
    Check(EVP_AEAD_CTX_init(ctx.get(), c.aead, key.data(), key.size(), 16,
                            nullptr),
          "EVP_AEAD_CTX_init");
    for (size_t size : {64, 512, 1400}) {
      Bytes buffer(size, 0x11);
      uint8_t tag[16];
      Measure(
          absl::StrFormat("%s seal in place, %d B", c.name, size), size,
          [&] {
            (void)(*aead)->SealInPlace(nonce, absl::MakeSpan(buffer), aad,
                                       absl::MakeSpan(tag));
          },
          [&] {
            size_t tag_len;
            EVP_AEAD_CTX_seal_scatter(ctx.get(), buffer.data(), tag, &tag_len,
                                      sizeof(tag), nonce, sizeof(nonce),
                                      buffer.data(), buffer.size(), nullptr, 0,
                                      aad, sizeof(aad));
          });
    }
    // The allocating convenience, against the same direct call.
    Bytes plaintext(1400, 0x11);
    Bytes out(1400 + 16);
    Measure(
        absl::StrFormat("%s Seal (allocating), 1400 B", c.name), 1400,
        [&] { (void)(*aead)->Seal(nonce, plaintext, aad); },
        [&] {
          size_t out_len;
          EVP_AEAD_CTX_seal(ctx.get(), out.data(), &out_len, out.size(), nonce,
                            sizeof(nonce), plaintext.data(), plaintext.size(),
                            aad, sizeof(aad));
        });
  }
}

void BenchCbc(const Provider& p) {
  uint8_t iv[16] = {7};
  for (auto [name, algorithm, key_size] :
       {std::tuple{"AES-128-CBC", CbcAlgorithm::kAes128Cbc, 16},
        std::tuple{"AES-256-CBC", CbcAlgorithm::kAes256Cbc, 32}}) {
    Bytes key(key_size, 0x42);
    auto cipher = p.NewCbcCipher(algorithm, key);
    Check(cipher.ok(), "NewCbcCipher");
    AES_KEY aes;
    AES_set_encrypt_key(key.data(), key_size * 8, &aes);
    for (size_t size : {64, 512, 1392}) {  // 1392: whole blocks near 1400
      Bytes buffer(size, 0x11);
      Measure(
          absl::StrFormat("%s encrypt, %d B", name, size), size,
          [&] {
            (void)(*cipher)->Encrypt(ByteSpan(iv, 16), buffer,
                                     absl::MakeSpan(buffer));
          },
          [&] {
            uint8_t ivec[16];
            std::memcpy(ivec, iv, 16);
            AES_cbc_encrypt(buffer.data(), buffer.data(), buffer.size(), &aes,
                            ivec, AES_ENCRYPT);
          });
    }
  }
  Bytes key(24, 0x42);
  auto cipher = p.NewCbcCipher(CbcAlgorithm::k3DesCbc, key);
  Check(cipher.ok(), "3DES");
  DES_key_schedule ks[3];
  for (int i = 0; i < 3; ++i) {
    DES_cblock block;
    std::memcpy(block.bytes, key.data() + 8 * i, 8);
    DES_set_key(&block, &ks[i]);
  }
  for (size_t size : {64, 512, 1400}) {
    Bytes buffer(size, 0x11);
    Measure(
        absl::StrFormat("3DES-CBC encrypt, %d B", size), size,
        [&] {
          (void)(*cipher)->Encrypt(ByteSpan(iv, 8), buffer,
                                   absl::MakeSpan(buffer));
        },
        [&] {
          DES_cblock ivec;
          std::memcpy(ivec.bytes, iv, 8);
          DES_ede3_cbc_encrypt(buffer.data(), buffer.data(), buffer.size(),
                               &ks[0], &ks[1], &ks[2], &ivec, DES_ENCRYPT);
        });
  }
}

void BenchMac(const Provider& p) {
  for (auto [name, algorithm, md, tag_size] :
       {std::tuple{"HMAC-SHA1-96", IntegrityAlgorithm::kHmacSha1_96, EVP_sha1(),
                   12},
        std::tuple{"HMAC-SHA2-256-128", IntegrityAlgorithm::kHmacSha256_128,
                   EVP_sha256(), 16},
        std::tuple{"HMAC-SHA2-512-256", IntegrityAlgorithm::kHmacSha512_256,
                   EVP_sha512(), 32}}) {
    Bytes key(EVP_MD_size(md), 0x42);
    auto mac = p.NewMac(algorithm, key);
    Check(mac.ok(), "NewMac");
    HMAC_CTX keyed;
    HMAC_CTX_init(&keyed);
    HMAC_Init_ex(&keyed, key.data(), key.size(), md, nullptr);
    for (size_t size : {64, 512, 1400}) {
      Bytes data(size, 0x11);
      uint8_t tag[64];
      Measure(
          absl::StrFormat("%s, %d B", name, size), size,
          [&] {
            (void)(*mac)->Compute({ByteSpan(data)},
                                  absl::MakeSpan(tag, tag_size));
          },
          [&] {
            HMAC_CTX ctx;
            HMAC_CTX_init(&ctx);
            HMAC_CTX_copy_ex(&ctx, &keyed);
            HMAC_Update(&ctx, data.data(), data.size());
            unsigned len;
            HMAC_Final(&ctx, tag, &len);
            HMAC_CTX_cleanup(&ctx);
          });
    }
    HMAC_CTX_cleanup(&keyed);
  }
}

// RFC 2409 §6.2 and RFC 3526 §3, §4 (as in boringssl_provider.cc).
constexpr char kModp1024Hex[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";
constexpr char kModp2048Hex[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";
constexpr char kModp3072Hex[] =
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

const char* prime_len_hex(size_t prime_len) {
  return prime_len == 128   ? kModp1024Hex
         : prime_len == 256 ? kModp2048Hex
                            : kModp3072Hex;
}

// One side of an exchange: a fresh key pair and the shared secret.
void BenchKeyExchange(const Provider& p) {
  for (auto [name, group, bits] :
       {std::tuple{"MODP-1024 (2)", KeyExchangeGroup::kModp1024, 256u},
        std::tuple{"MODP-2048 (14)", KeyExchangeGroup::kModp2048, 320u},
        std::tuple{"MODP-3072 (15)", KeyExchangeGroup::kModp3072, 384u}}) {
    auto peer = p.NewKeyExchange(group);
    Check(peer.ok(), "peer");
    const Bytes peer_public((*peer)->public_value().begin(),
                            (*peer)->public_value().end());
    const char* prime_hex = prime_len_hex(peer_public.size());
    Measure(
        absl::StrFormat("%s key exchange", name), 0,
        [&] {
          auto ke = p.NewKeyExchange(group);
          (void)(*ke)->ComputeSharedSecret(peer_public);
        },
        [&] {
          // The same work directly: the RFC prime, a `bits`-bit
          // exponent, the peer check and the padded shared secret.
          bssl::UniquePtr<DH> dh(DH_new());
          BIGNUM* prime = nullptr;
          BN_hex2bn(&prime, prime_hex);
          BIGNUM* g = BN_new();
          BN_set_word(g, 2);
          DH_set0_pqg(dh.get(), prime, nullptr, g);
          DH_set_length(dh.get(), bits);
          DH_generate_key(dh.get());
          bssl::UniquePtr<BIGNUM> y(
              BN_bin2bn(peer_public.data(), peer_public.size(), nullptr));
          int flags;
          DH_check_pub_key(dh.get(), y.get(), &flags);
          uint8_t secret[384];
          DH_compute_key_padded(secret, y.get(), dh.get());
        });
  }
  for (auto [name, group, nid] :
       {std::tuple{"ECP-256 (19)", KeyExchangeGroup::kEcp256,
                   NID_X9_62_prime256v1},
        std::tuple{"ECP-384 (20)", KeyExchangeGroup::kEcp384, NID_secp384r1}}) {
    auto peer = p.NewKeyExchange(group);
    Check(peer.ok(), "peer");
    const Bytes peer_public((*peer)->public_value().begin(),
                            (*peer)->public_value().end());
    Measure(
        absl::StrFormat("%s key exchange", name), 0,
        [&] {
          auto ke = p.NewKeyExchange(group);
          (void)(*ke)->ComputeSharedSecret(peer_public);
        },
        [&] {
          bssl::UniquePtr<EC_KEY> key(EC_KEY_new_by_curve_name(nid));
          EC_KEY_generate_key(key.get());
          const EC_GROUP* g = EC_KEY_get0_group(key.get());
          uint8_t pub[133];
          EC_POINT_point2oct(g, EC_KEY_get0_public_key(key.get()),
                             POINT_CONVERSION_UNCOMPRESSED, pub, sizeof(pub),
                             nullptr);
          Bytes encoded(1 + peer_public.size());
          encoded[0] = 4;
          std::memcpy(encoded.data() + 1, peer_public.data(),
                      peer_public.size());
          bssl::UniquePtr<EC_POINT> point(EC_POINT_new(g));
          EC_POINT_oct2point(g, point.get(), encoded.data(), encoded.size(),
                             nullptr);
          uint8_t secret[48];
          ECDH_compute_key(secret, peer_public.size() / 2, point.get(),
                           key.get(), nullptr);
        });
  }
  auto peer = p.NewKeyExchange(KeyExchangeGroup::kCurve25519);
  const Bytes peer_public((*peer)->public_value().begin(),
                          (*peer)->public_value().end());
  Measure(
      "Curve25519 (31) key exchange", 0,
      [&] {
        auto ke = p.NewKeyExchange(KeyExchangeGroup::kCurve25519);
        (void)(*ke)->ComputeSharedSecret(peer_public);
      },
      [&] {
        uint8_t pub[32], priv[32], secret[32];
        X25519_keypair(pub, priv);
        X25519(secret, priv, peer_public.data());
      });
}

void BenchSignatures(const Provider& p) {
  const Bytes data(1024, 0x33);  // ~ the AUTH payload's signed octets
  const struct {
    const char* name;
    KeyType type;
    SignatureScheme scheme;
    const EVP_MD* md;
    bool pss;
  } cases[] = {
      {"RSA-2048 PKCS#1 v1.5 SHA-256", KeyType::kRsa,
       SignatureScheme::kRsaPkcs1Sha256, EVP_sha256(), false},
      {"RSA-2048 PSS SHA-256", KeyType::kRsa, SignatureScheme::kRsaPssSha256,
       EVP_sha256(), true},
      {"ECDSA P-256 SHA-256", KeyType::kEcP256, SignatureScheme::kEcdsaSha256,
       EVP_sha256(), false},
      {"ECDSA P-384 SHA-384", KeyType::kEcP384, SignatureScheme::kEcdsaSha384,
       EVP_sha384(), false},
      {"Ed25519", KeyType::kEd25519, SignatureScheme::kEd25519, nullptr, false},
  };
  for (const auto& c : cases) {
    auto key = p.GeneratePrivateKey(c.type, 2048);
    Check(key.ok(), "GeneratePrivateKey");
    auto public_key = (*key)->public_key();
    // The direct side uses its own key of the same type and size.
    bssl::UniquePtr<EVP_PKEY> pkey(EVP_PKEY_new());
    if (c.type == KeyType::kRsa) {
      RSA* rsa = RSA_new();
      BIGNUM* e = BN_new();
      BN_set_word(e, RSA_F4);
      RSA_generate_key_ex(rsa, 2048, e, nullptr);
      BN_free(e);
      EVP_PKEY_assign_RSA(pkey.get(), rsa);
    } else if (c.type == KeyType::kEd25519) {
      EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
      EVP_PKEY* raw = nullptr;
      EVP_PKEY_keygen_init(ctx);
      EVP_PKEY_keygen(ctx, &raw);
      EVP_PKEY_CTX_free(ctx);
      pkey.reset(raw);
    } else {
      EC_KEY* ec = EC_KEY_new_by_curve_name(
          c.type == KeyType::kEcP256 ? NID_X9_62_prime256v1 : NID_secp384r1);
      EC_KEY_generate_key(ec);
      EVP_PKEY_assign_EC_KEY(pkey.get(), ec);
    }
    auto init = [&](EVP_MD_CTX* ctx, bool sign) {
      EVP_PKEY_CTX* pctx = nullptr;
      if (sign) {
        EVP_DigestSignInit(ctx, &pctx, c.md, nullptr, pkey.get());
      } else {
        EVP_DigestVerifyInit(ctx, &pctx, c.md, nullptr, pkey.get());
      }
      if (c.pss) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1);
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, c.md);
      }
    };
    Bytes direct_signature(512);
    size_t direct_len = direct_signature.size();
    {
      bssl::ScopedEVP_MD_CTX ctx;
      init(ctx.get(), true);
      EVP_DigestSign(ctx.get(), direct_signature.data(), &direct_len,
                     data.data(), data.size());
    }
    Measure(
        absl::StrFormat("%s sign", c.name), 0,
        [&] { (void)(*key)->Sign(c.scheme, data); },
        [&] {
          bssl::ScopedEVP_MD_CTX ctx;
          init(ctx.get(), true);
          uint8_t sig[512];
          size_t len = sizeof(sig);
          EVP_DigestSign(ctx.get(), sig, &len, data.data(), data.size());
        });
    auto signature = (*key)->Sign(c.scheme, data);
    Check(signature.ok(), "Sign");
    Measure(
        absl::StrFormat("%s verify", c.name), 0,
        [&] { (void)public_key->Verify(c.scheme, data, *signature); },
        [&] {
          bssl::ScopedEVP_MD_CTX ctx;
          init(ctx.get(), false);
          EVP_DigestVerify(ctx.get(), direct_signature.data(), direct_len,
                           data.data(), data.size());
        });
  }
}

}  // namespace
}  // namespace vpn::crypto

int main() {
  using namespace vpn::crypto;
  const Provider& p = GetProvider();
  BenchAead(p);
  BenchCbc(p);
  BenchMac(p);
  BenchKeyExchange(p);
  BenchSignatures(p);

  std::printf("| Operation | Unit | Interface | Direct BoringSSL | Ratio |\n");
  std::printf("|---|---|---:|---:|---:|\n");
  for (const Row& row : rows) {
    std::printf("| %s | %s | %.1f | %.1f | %.3f |\n", row.name.c_str(),
                row.unit.c_str(), row.interface_rate, row.direct_rate,
                row.interface_rate / row.direct_rate);
  }
  return 0;
}
