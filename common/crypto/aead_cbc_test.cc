// AEAD and CBC ciphers: published vectors, cross-checks and bad inputs.
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/crypto/test_util.h"
#include "gtest/gtest.h"

namespace vpn::crypto {
namespace {

using testing::Hex;
using testing::ToBytes;
using testing::ToHex;

struct AeadVector {
  const char* name;
  AeadAlgorithm algorithm;
  const char* key;
  const char* nonce;
  const char* aad;
  const char* plaintext;
  const char* ciphertext;
  const char* tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation" (the NIST GCM
// vectors), test cases 4 and 16; RFC 8439 §2.8.2 (= RFC 7539 §2.8.2).
constexpr char kGcmPlaintext[] =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const AeadVector kAeadVectors[] = {
    {"GcmTestCase4", AeadAlgorithm::kAes128Gcm16,
     "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2", kGcmPlaintext,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"GcmTestCase16", AeadAlgorithm::kAes256Gcm16,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     kGcmPlaintext,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"GcmTestCase2", AeadAlgorithm::kAes128Gcm16,
     "00000000000000000000000000000000", "000000000000000000000000", "",
     "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    {"ChaCha20Poly1305Rfc8439", AeadAlgorithm::kChaCha20Poly1305,
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
     "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
     "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
     "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
     "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
     "637265656e20776f756c642062652069742e",
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
     "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
     "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
     "3ff4def08e4b7a9de576d26586cec64b6116",
     "1ae10b594f09e26a7e902ecbd0600691"},
};

class AeadVectorTest : public ::testing::TestWithParam<AeadVector> {};

TEST_P(AeadVectorTest, SealsAndOpensThePublishedVector) {
  const AeadVector& v = GetParam();
  auto aead = GetProvider().NewAead(v.algorithm, Hex(v.key));
  ASSERT_TRUE(aead.ok()) << aead.status();
  const Bytes nonce = Hex(v.nonce), aad = Hex(v.aad), pt = Hex(v.plaintext);
  const std::string expected = absl::StrCat(v.ciphertext, v.tag);

  auto sealed = (*aead)->Seal(nonce, pt, aad);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(ToHex(*sealed), expected);

  auto opened = (*aead)->Open(nonce, *sealed, aad);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, pt);

  // In place, tag separate.
  Bytes buffer = pt;
  Bytes tag((*aead)->tag_size());
  ASSERT_TRUE(
      (*aead)
          ->SealInPlace(nonce, absl::MakeSpan(buffer), aad, absl::MakeSpan(tag))
          .ok());
  EXPECT_EQ(ToHex(buffer), v.ciphertext);
  EXPECT_EQ(ToHex(tag), v.tag);
  ASSERT_TRUE(
      (*aead)->OpenInPlace(nonce, absl::MakeSpan(buffer), aad, tag).ok());
  EXPECT_EQ(buffer, pt);
}

TEST_P(AeadVectorTest, RejectsForgedTruncatedAndMisboundInput) {
  const AeadVector& v = GetParam();
  auto aead = GetProvider().NewAead(v.algorithm, Hex(v.key));
  ASSERT_TRUE(aead.ok());
  const Bytes nonce = Hex(v.nonce), aad = Hex(v.aad);
  const Bytes sealed = Hex(absl::StrCat(v.ciphertext, v.tag));

  for (size_t i = 0; i < sealed.size(); i += 7) {
    Bytes forged = sealed;
    forged[i] ^= 0x01;
    EXPECT_EQ((*aead)->Open(nonce, forged, aad).status().code(),
              absl::StatusCode::kDataLoss)
        << "byte " << i;
  }
  for (size_t cut : {size_t{1}, size_t{15}, sealed.size()}) {
    Bytes truncated(sealed.begin(), sealed.end() - cut);
    EXPECT_EQ((*aead)->Open(nonce, truncated, aad).status().code(),
              absl::StatusCode::kDataLoss);
  }
  Bytes other_aad = aad;
  other_aad.push_back(0);
  EXPECT_FALSE((*aead)->Open(nonce, sealed, other_aad).ok());
  Bytes other_nonce = nonce;
  other_nonce[0] ^= 0x80;
  EXPECT_FALSE((*aead)->Open(other_nonce, sealed, aad).ok());

  // In place: a bad tag fails and leaves no plaintext behind.
  Bytes buffer(sealed.begin(), sealed.end() - 16);
  Bytes tag(sealed.end() - 16, sealed.end());
  tag[15] ^= 0x40;
  EXPECT_EQ(
      (*aead)->OpenInPlace(nonce, absl::MakeSpan(buffer), aad, tag).code(),
      absl::StatusCode::kDataLoss);
  Bytes short_tag(tag.begin(), tag.begin() + 12);
  EXPECT_FALSE(
      (*aead)->OpenInPlace(nonce, absl::MakeSpan(buffer), aad, short_tag).ok());
}

INSTANTIATE_TEST_SUITE_P(Published, AeadVectorTest,
                         ::testing::ValuesIn(kAeadVectors),
                         [](const ::testing::TestParamInfo<AeadVector>& info) {
                           return std::string(info.param.name);
                         });

TEST(AeadTest, RejectsWrongKeyAndNonceSizes) {
  const Provider& p = GetProvider();
  for (size_t size : {0, 15, 17, 24, 31, 33}) {
    EXPECT_EQ(
        p.NewAead(AeadAlgorithm::kAes128Gcm16, Bytes(size)).status().code(),
        absl::StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(p.NewAead(AeadAlgorithm::kAes256Gcm16, Bytes(16)).ok());
  EXPECT_FALSE(p.NewAead(AeadAlgorithm::kChaCha20Poly1305, Bytes(16)).ok());
  // RFC 4106 / RFC 5282: the 4-byte salt is not part of the key.
  EXPECT_FALSE(p.NewAead(AeadAlgorithm::kAes128Gcm16, Bytes(20)).ok());

  auto aead = p.NewAead(AeadAlgorithm::kAes128Gcm16, Bytes(16));
  ASSERT_TRUE(aead.ok());
  EXPECT_EQ((*aead)->key_size(), 16u);
  EXPECT_EQ((*aead)->nonce_size(), 12u);
  EXPECT_EQ((*aead)->tag_size(), 16u);
  EXPECT_FALSE((*aead)->Seal(Bytes(8), Bytes(10), {}).ok());
  EXPECT_FALSE((*aead)->Open(Bytes(16), Bytes(32), {}).ok());
  Bytes buffer(10), tag(8);
  EXPECT_FALSE((*aead)
                   ->SealInPlace(Bytes(12), absl::MakeSpan(buffer), {},
                                 absl::MakeSpan(tag))
                   .ok());
}

// ---------------------------------------------------------------------------
// CBC: cross-checked against `openssl enc` (OpenSSL 3, another library).
// ---------------------------------------------------------------------------
struct CbcCase {
  CbcAlgorithm algorithm;
  const char* openssl_name;
  size_t key_size;
  size_t block_size;
};

class CbcTest : public ::testing::TestWithParam<CbcCase> {};

TEST_P(CbcTest, MatchesOpensslAndRoundTrips) {
  const CbcCase& c = GetParam();
  const Provider& p = GetProvider();
  Bytes key(c.key_size), iv(c.block_size), plaintext(c.block_size * 9);
  p.RandomBytes(absl::MakeSpan(key));
  p.RandomBytes(absl::MakeSpan(iv));
  p.RandomBytes(absl::MakeSpan(plaintext));
  auto cipher = p.NewCbcCipher(c.algorithm, key);
  ASSERT_TRUE(cipher.ok()) << cipher.status();
  EXPECT_EQ((*cipher)->key_size(), c.key_size);
  EXPECT_EQ((*cipher)->block_size(), c.block_size);

  auto ciphertext = (*cipher)->Encrypt(iv, plaintext);
  ASSERT_TRUE(ciphertext.ok()) << ciphertext.status();

  const std::string dir = testing::MakeTempDir("cbc");
  testing::WriteFile(dir + "/in",
                     std::string(plaintext.begin(), plaintext.end()));
  auto reference = testing::Run(
      absl::StrCat(testing::kOpenssl, " enc -", c.openssl_name, " -nopad -K ",
                   ToHex(key), " -iv ", ToHex(iv), " -in ", dir, "/in"));
  ASSERT_TRUE(reference.ok()) << reference.status();
  EXPECT_EQ(ToHex(*ciphertext), ToHex(ToBytes(*reference)));

  auto decrypted = (*cipher)->Decrypt(iv, *ciphertext);
  ASSERT_TRUE(decrypted.ok());
  EXPECT_EQ(*decrypted, plaintext);

  // In place.
  Bytes buffer = plaintext;
  ASSERT_TRUE((*cipher)->Encrypt(iv, buffer, absl::MakeSpan(buffer)).ok());
  EXPECT_EQ(buffer, *ciphertext);
  ASSERT_TRUE((*cipher)->Decrypt(iv, buffer, absl::MakeSpan(buffer)).ok());
  EXPECT_EQ(buffer, plaintext);
}

TEST_P(CbcTest, RejectsBadSizes) {
  const CbcCase& c = GetParam();
  const Provider& p = GetProvider();
  EXPECT_FALSE(p.NewCbcCipher(c.algorithm, Bytes(c.key_size - 1)).ok());
  EXPECT_FALSE(p.NewCbcCipher(c.algorithm, Bytes(c.key_size + 8)).ok());
  auto cipher = p.NewCbcCipher(c.algorithm, Bytes(c.key_size, 7));
  ASSERT_TRUE(cipher.ok());
  const Bytes iv(c.block_size);
  // No padding: partial blocks are refused, not padded or truncated.
  EXPECT_FALSE((*cipher)->Encrypt(iv, Bytes(c.block_size + 1)).ok());
  EXPECT_FALSE((*cipher)->Decrypt(iv, Bytes(c.block_size * 2 - 1)).ok());
  EXPECT_FALSE((*cipher)->Encrypt(Bytes(c.block_size - 1), Bytes(32)).ok());
  Bytes small(c.block_size);
  EXPECT_FALSE((*cipher)
                   ->Encrypt(iv, Bytes(c.block_size * 2), absl::MakeSpan(small))
                   .ok());
  EXPECT_TRUE((*cipher)->Encrypt(iv, Bytes()).ok());
}

INSTANTIATE_TEST_SUITE_P(
    All, CbcTest,
    ::testing::Values(CbcCase{CbcAlgorithm::kAes128Cbc, "aes-128-cbc", 16, 16},
                      CbcCase{CbcAlgorithm::kAes192Cbc, "aes-192-cbc", 24, 16},
                      CbcCase{CbcAlgorithm::kAes256Cbc, "aes-256-cbc", 32, 16},
                      CbcCase{CbcAlgorithm::k3DesCbc, "des-ede3-cbc", 24, 8}));

}  // namespace
}  // namespace vpn::crypto
