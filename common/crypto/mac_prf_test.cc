// Integrity transforms, PRFs, prf+ and hashes.
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/crypto/test_util.h"
#include "gtest/gtest.h"

namespace vpn::crypto {
namespace {

using testing::Hex;
using testing::ToBytes;
using testing::ToHex;

std::string PrfHex(PrfAlgorithm algorithm, ByteSpan key, ByteSpan data) {
  auto prf = GetProvider().NewPrf(algorithm, key);
  EXPECT_TRUE(prf.ok()) << prf.status();
  if (!prf.ok()) return "";
  return ToHex((*prf)->Compute(data).span());
}

// RFC 2202 §3, HMAC-SHA-1 test cases 1-3 and 5.
TEST(HmacSha1Test, Rfc2202) {
  EXPECT_EQ(
      PrfHex(PrfAlgorithm::kHmacSha1, Bytes(20, 0x0b), ToBytes("Hi There")),
      "b617318655057264e28bc0b6fb378c8ef146be00");
  EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha1, ToBytes("Jefe"),
                   ToBytes("what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha1, Bytes(20, 0xaa), Bytes(50, 0xdd)),
            "125d7342b9ac11cd91a39af48aa17b4f63f175d3");
  EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha1, Bytes(20, 0x0c),
                   ToBytes("Test With Truncation")),
            "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04");
}

// RFC 2202 test case 5 "digest-96" is exactly HMAC-SHA1-96 (RFC 2404).
TEST(HmacSha1Test, Rfc2202TruncatedIsSha1_96) {
  auto mac =
      GetProvider().NewMac(IntegrityAlgorithm::kHmacSha1_96, Bytes(20, 0x0c));
  ASSERT_TRUE(mac.ok()) << mac.status();
  const Bytes data = ToBytes("Test With Truncation");
  EXPECT_EQ(ToHex((*mac)->Compute(data)), "4c1a03424b55e07fe7f27be1");
  EXPECT_TRUE((*mac)->Verify(data, Hex("4c1a03424b55e07fe7f27be1")));
}

struct Rfc4231Case {
  const char* name;
  Bytes key;
  Bytes data;
  const char* sha256;
  const char* sha384;
  const char* sha512;
};

// RFC 4231 §4.2, 4.3, 4.7 (test cases 1, 2 and 6; full-length outputs).
std::vector<Rfc4231Case> Rfc4231Cases() {
  return {
      {"Case1", Bytes(20, 0x0b), ToBytes("Hi There"),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
       "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
       "faea9ea9076ede7f4af152e8b2fa9cb6",
       "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
       "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
      {"Case2", ToBytes("Jefe"), ToBytes("what do ya want for nothing?"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
       "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
       "8e2240ca5e69e2c78b3239ecfab21649",
       "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
       "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
      {"Case6", Bytes(131, 0xaa),
       ToBytes("Test Using Larger Than Block-Size Key - Hash Key First"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
       "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
       "0c2ef6ab4030fe8296248df163f44952",
       "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
       "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
  };
}

TEST(HmacSha2Test, Rfc4231) {
  for (const Rfc4231Case& c : Rfc4231Cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha256, c.key, c.data), c.sha256);
    EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha384, c.key, c.data), c.sha384);
    EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha512, c.key, c.data), c.sha512);
  }
}

// RFC 4231 §4.6 (test case 5): output truncated to 128 bits.
TEST(HmacSha2Test, Rfc4231TruncationCase) {
  const Bytes key(20, 0x0c);
  const Bytes data = ToBytes("Test With Truncation");
  EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha256, key, data).substr(0, 32),
            "a3b6167473100ee06e0c796c2955552b");
  EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha384, key, data).substr(0, 32),
            "3abf34c3503b2a23a46efc619baef897");
  EXPECT_EQ(PrfHex(PrfAlgorithm::kHmacSha512, key, data).substr(0, 32),
            "415fad6271580a531d4179bc891d87a6");
}

struct IntegrityCase {
  IntegrityAlgorithm integrity;
  PrfAlgorithm same_hash_prf;
  size_t key_size;
  size_t tag_size;
};

class IntegrityTest : public ::testing::TestWithParam<IntegrityCase> {};

// RFC 2404 / RFC 4868: the tag is the leading half of the HMAC (a third for
// SHA-1) and the key is as long as the hash output.
TEST_P(IntegrityTest, TruncatesHmacAndVerifiesInConstantTime) {
  const IntegrityCase& c = GetParam();
  const Provider& p = GetProvider();
  Bytes key(c.key_size);
  p.RandomBytes(absl::MakeSpan(key));
  auto mac = p.NewMac(c.integrity, key);
  ASSERT_TRUE(mac.ok()) << mac.status();
  EXPECT_EQ((*mac)->key_size(), c.key_size);
  EXPECT_EQ((*mac)->tag_size(), c.tag_size);

  const Bytes header = ToBytes("ESP header+IV"), body = ToBytes("ciphertext");
  Bytes joined = header;
  joined.insert(joined.end(), body.begin(), body.end());
  const Bytes tag = (*mac)->Compute(joined);
  ASSERT_EQ(tag.size(), c.tag_size);
  EXPECT_EQ(ToHex(tag),
            PrfHex(c.same_hash_prf, key, joined).substr(0, 2 * c.tag_size));

  Bytes parts_tag(c.tag_size);
  ASSERT_TRUE((*mac)->Compute({header, body}, absl::MakeSpan(parts_tag)).ok());
  EXPECT_EQ(parts_tag, tag);

  EXPECT_TRUE((*mac)->Verify(joined, tag));
  EXPECT_TRUE((*mac)->Verify({header, body}, tag));
  for (size_t i = 0; i < tag.size(); ++i) {
    Bytes forged = tag;
    forged[i] ^= 0x20;
    EXPECT_FALSE((*mac)->Verify(joined, forged)) << "byte " << i;
  }
  EXPECT_FALSE((*mac)->Verify(joined, Bytes(tag.begin(), tag.end() - 1)));
  EXPECT_FALSE((*mac)->Verify(joined, {}));
  Bytes longer = tag;
  longer.push_back(0);
  EXPECT_FALSE((*mac)->Verify(joined, longer));
  Bytes changed = joined;
  changed.back() ^= 1;
  EXPECT_FALSE((*mac)->Verify(changed, tag));
}

TEST_P(IntegrityTest, RejectsWrongKeySizes) {
  const IntegrityCase& c = GetParam();
  for (size_t size : {size_t{0}, c.key_size - 1, c.key_size + 1}) {
    EXPECT_EQ(GetProvider().NewMac(c.integrity, Bytes(size)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  auto mac = GetProvider().NewMac(c.integrity, Bytes(c.key_size));
  ASSERT_TRUE(mac.ok());
  Bytes wrong(c.tag_size + 1);
  EXPECT_FALSE((*mac)->Compute({ByteSpan()}, absl::MakeSpan(wrong)).ok());
}

INSTANTIATE_TEST_SUITE_P(
    All, IntegrityTest,
    ::testing::Values(IntegrityCase{IntegrityAlgorithm::kHmacSha1_96,
                                    PrfAlgorithm::kHmacSha1, 20, 12},
                      IntegrityCase{IntegrityAlgorithm::kHmacSha256_128,
                                    PrfAlgorithm::kHmacSha256, 32, 16},
                      IntegrityCase{IntegrityAlgorithm::kHmacSha384_192,
                                    PrfAlgorithm::kHmacSha384, 48, 24},
                      IntegrityCase{IntegrityAlgorithm::kHmacSha512_256,
                                    PrfAlgorithm::kHmacSha512, 64, 32}));

// prf+ (RFC 7296 §2.13) recomputed block by block with `openssl mac`.
std::string OpensslHmacHex(const char* digest, ByteSpan key, ByteSpan data) {
  const std::string dir = testing::MakeTempDir("hmac");
  testing::WriteFile(dir + "/in", std::string(data.begin(), data.end()));
  auto out = testing::Run(absl::StrCat(testing::kOpenssl, " mac -digest ",
                                       digest, " -macopt hexkey:", ToHex(key),
                                       " -in ", dir, "/in HMAC"));
  EXPECT_TRUE(out.ok()) << out.status();
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(out.value_or("")));
}

struct PrfCase {
  PrfAlgorithm algorithm;
  const char* openssl_digest;
  size_t output_size;
};

class PrfPlusTest : public ::testing::TestWithParam<PrfCase> {};

TEST_P(PrfPlusTest, MatchesOpensslCli) {
  const PrfCase& c = GetParam();
  const Provider& p = GetProvider();
  // SKEYSEED-like key (Ni | Nr) and a seed of Ni | Nr | SPIi | SPIr.
  Bytes key(48), seed(80);
  p.RandomBytes(absl::MakeSpan(key));
  p.RandomBytes(absl::MakeSpan(seed));
  auto prf = p.NewPrf(c.algorithm, key);
  ASSERT_TRUE(prf.ok());
  EXPECT_EQ((*prf)->output_size(), c.output_size);

  // Not a multiple of the block size, so the last block is cut.
  const size_t length = 3 * c.output_size + 7;
  auto keymat = (*prf)->PrfPlus(seed, length);
  ASSERT_TRUE(keymat.ok()) << keymat.status();
  ASSERT_EQ(keymat->size(), length);

  std::string expected;
  Bytes previous;
  for (uint8_t n = 1; expected.size() < 2 * length; ++n) {
    Bytes input = previous;
    input.insert(input.end(), seed.begin(), seed.end());
    input.push_back(n);
    const std::string block = OpensslHmacHex(c.openssl_digest, key, input);
    ASSERT_EQ(block.size(), 2 * c.output_size);
    expected += block;
    previous = Hex(block);
  }
  EXPECT_EQ(ToHex(keymat->span()), expected.substr(0, 2 * length));

  // A prefix of a longer output is the shorter output.
  auto shorter = (*prf)->PrfPlus(seed, c.output_size / 2);
  ASSERT_TRUE(shorter.ok());
  EXPECT_EQ(ToHex(shorter->span()), expected.substr(0, c.output_size));
}

TEST_P(PrfPlusTest, StopsAt255Blocks) {
  const PrfCase& c = GetParam();
  auto prf = GetProvider().NewPrf(c.algorithm, Bytes(16, 1));
  ASSERT_TRUE(prf.ok());
  EXPECT_TRUE((*prf)->PrfPlus({}, 255 * c.output_size).ok());
  EXPECT_EQ((*prf)->PrfPlus({}, 255 * c.output_size + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto empty = (*prf)->PrfPlus({}, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

INSTANTIATE_TEST_SUITE_P(
    All, PrfPlusTest,
    ::testing::Values(PrfCase{PrfAlgorithm::kHmacSha1, "SHA1", 20},
                      PrfCase{PrfAlgorithm::kHmacSha256, "SHA256", 32},
                      PrfCase{PrfAlgorithm::kHmacSha384, "SHA384", 48},
                      PrfCase{PrfAlgorithm::kHmacSha512, "SHA512", 64}));

TEST(HashTest, FipsVectorsAndParts) {
  const Provider& p = GetProvider();
  const Bytes abc = ToBytes("abc");
  // FIPS 180 "abc" examples.
  EXPECT_EQ(ToHex(p.Hash(HashAlgorithm::kSha1, {abc})),
            "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(ToHex(p.Hash(HashAlgorithm::kSha256, {abc})),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const Bytes a = ToBytes("a"), bc = ToBytes("bc");
  EXPECT_EQ(p.Hash(HashAlgorithm::kSha256, {a, bc}),
            p.Hash(HashAlgorithm::kSha256, {abc}));
  for (auto [algorithm, name] : {std::pair{HashAlgorithm::kSha384, "sha384"},
                                 std::pair{HashAlgorithm::kSha512, "sha512"}}) {
    const std::string dir = testing::MakeTempDir("hash");
    testing::WriteFile(dir + "/in", "abc");
    auto out = testing::Run(
        absl::StrCat(testing::kOpenssl, " dgst -", name, " -r ", dir, "/in"));
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(ToHex(p.Hash(algorithm, {abc})), out->substr(0, out->find(' ')));
  }
}

}  // namespace
}  // namespace vpn::crypto
