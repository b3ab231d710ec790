// Key exchange: RFC 5903 and RFC 7748 vectors, MODP cross-checked against
// `openssl pkeyutl -derive`, and rejection of invalid peer values.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crypto/crypto.h"
#include "common/crypto/test_util.h"
#include "gtest/gtest.h"

namespace vpn::crypto {
namespace {

using testing::Hex;
using testing::ToHex;

struct EcpVector {
  KeyExchangeGroup group;
  const char* i;
  const char* gix;
  const char* giy;
  const char* r;
  const char* grx;
  const char* gry;
  const char* girx;
};

// RFC 5903 §8.1 and §8.2.
const EcpVector kEcpVectors[] = {
    {KeyExchangeGroup::kEcp256,
     "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
     "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180",
     "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
     "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
     "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63",
     "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
     "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE"},
    {KeyExchangeGroup::kEcp384,
     "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655"
     "E35B538041E649EE3FAEF896783AB194",
     "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6"
     "DE3AC808ACB4BDB4C88732AEE95F41AA",
     "9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38E"
     "EB9FCFF3C2C947DAE69B4C634573A81C",
     "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942"
     "E0308312916B8ED2960E4BD55A7448FC",
     "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D"
     "0D1AC43A0336DEF96FDA41D0774A3571",
     "DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FF"
     "F83FA40142209DFF5EAAD96DB9E6386C",
     "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4"
     "D603135569B9E9D09CF5D4A270F59746"},
};

TEST(EcpTest, Rfc5903Vectors) {
  const Provider& p = GetProvider();
  for (const EcpVector& v : kEcpVectors) {
    SCOPED_TRACE(static_cast<int>(v.group));
    auto initiator = p.NewKeyExchangeFromPrivateKey(v.group, Hex(v.i));
    auto responder = p.NewKeyExchangeFromPrivateKey(v.group, Hex(v.r));
    ASSERT_TRUE(initiator.ok()) << initiator.status();
    ASSERT_TRUE(responder.ok()) << responder.status();
    // RFC 5903 §7: the KE payload carries x || y, no point-format octet.
    const Bytes gi = Hex(absl::StrCat(v.gix, v.giy));
    const Bytes gr = Hex(absl::StrCat(v.grx, v.gry));
    EXPECT_EQ(ToHex((*initiator)->public_value()), ToHex(gi));
    EXPECT_EQ(ToHex((*responder)->public_value()), ToHex(gr));
    // The shared secret is the x coordinate of g^ir only.
    auto s1 = (*initiator)->ComputeSharedSecret(gr);
    auto s2 = (*responder)->ComputeSharedSecret(gi);
    ASSERT_TRUE(s1.ok()) << s1.status();
    ASSERT_TRUE(s2.ok()) << s2.status();
    EXPECT_EQ(ToHex(s1->span()), ToHex(Hex(v.girx)));
    EXPECT_EQ(ToHex(s2->span()), ToHex(Hex(v.girx)));
  }
}

TEST(EcpTest, RejectsInvalidPeerValues) {
  const Provider& p = GetProvider();
  for (const EcpVector& v : kEcpVectors) {
    auto ke = p.NewKeyExchange(v.group);
    ASSERT_TRUE(ke.ok());
    const Bytes gr = Hex(absl::StrCat(v.grx, v.gry));
    const size_t n = gr.size() / 2;
    Bytes off_curve = gr;
    off_curve.back() ^= 1;
    EXPECT_EQ((*ke)->ComputeSharedSecret(off_curve).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE((*ke)->ComputeSharedSecret(Bytes(gr.size(), 0)).ok());
    EXPECT_FALSE((*ke)->ComputeSharedSecret(Bytes(gr.size(), 0xff)).ok());
    // With the 0x04 prefix (SEC1 form) it is the wrong size for IKE.
    Bytes sec1 = gr;
    sec1.insert(sec1.begin(), 0x04);
    EXPECT_FALSE((*ke)->ComputeSharedSecret(sec1).ok());
    EXPECT_FALSE(
        (*ke)->ComputeSharedSecret(Bytes(gr.begin(), gr.begin() + n)).ok());
    EXPECT_FALSE((*ke)->ComputeSharedSecret({}).ok());
  }
  // Private scalars outside [1, n-1].
  EXPECT_FALSE(
      p.NewKeyExchangeFromPrivateKey(KeyExchangeGroup::kEcp256, Bytes(32, 0))
          .ok());
  EXPECT_FALSE(
      p.NewKeyExchangeFromPrivateKey(KeyExchangeGroup::kEcp256, Bytes(32, 0xff))
          .ok());
}

// RFC 7748 §6.1.
TEST(X25519Test, Rfc7748Vector) {
  const Provider& p = GetProvider();
  auto alice = p.NewKeyExchangeFromPrivateKey(
      KeyExchangeGroup::kCurve25519,
      Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
  auto bob = p.NewKeyExchangeFromPrivateKey(
      KeyExchangeGroup::kCurve25519,
      Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
  ASSERT_TRUE(alice.ok() && bob.ok());
  EXPECT_EQ(ToHex((*alice)->public_value()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(ToHex((*bob)->public_value()),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  auto k1 = (*alice)->ComputeSharedSecret((*bob)->public_value());
  auto k2 = (*bob)->ComputeSharedSecret((*alice)->public_value());
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_EQ(ToHex(k1->span()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_EQ(ToHex(k2->span()), ToHex(k1->span()));
}

TEST(X25519Test, RejectsAllZeroResultsAndBadSizes) {
  auto ke = GetProvider().NewKeyExchange(KeyExchangeGroup::kCurve25519);
  ASSERT_TRUE(ke.ok());
  // u = 0 and u = 1 are small-order points: the result is all zero.
  EXPECT_EQ((*ke)->ComputeSharedSecret(Bytes(32, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  Bytes one(32, 0);
  one[0] = 1;
  EXPECT_FALSE((*ke)->ComputeSharedSecret(one).ok());
  EXPECT_FALSE((*ke)->ComputeSharedSecret(Bytes(31, 9)).ok());
  EXPECT_FALSE((*ke)->ComputeSharedSecret(Bytes(33, 9)).ok());
  EXPECT_FALSE(GetProvider()
                   .NewKeyExchangeFromPrivateKey(KeyExchangeGroup::kCurve25519,
                                                 Bytes(16, 1))
                   .ok());
}

// ---------------------------------------------------------------------------
// MODP, against the openssl CLI.
// ---------------------------------------------------------------------------
constexpr char kModp1024Prime[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";

// The hex lines under `label:` in `openssl pkey -text` output.
Bytes TextField(const std::string& text, const std::string& label) {
  std::string hex;
  bool in_field = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (in_field) {
      if (line.empty() || (line[0] != ' ' && line[0] != '\t')) break;
      hex += std::string(absl::StripAsciiWhitespace(line));
    } else if (line == label + ":") {
      in_field = true;
    }
  }
  return Hex(hex);
}

Bytes Pad(Bytes value, size_t size) {
  while (value.size() > size && value.front() == 0) value.erase(value.begin());
  value.insert(value.begin(), size - value.size(), 0);
  return value;
}

struct ModpCase {
  KeyExchangeGroup group;
  size_t prime_size;
  const char* openssl_group;  // null: build the params from kModp1024Prime
};

class ModpTest : public ::testing::TestWithParam<ModpCase> {};

TEST_P(ModpTest, MatchesOpensslDerive) {
  const ModpCase& c = GetParam();
  const std::string dir = testing::MakeTempDir("modp");
  const std::string o = testing::kOpenssl;
  if (c.openssl_group != nullptr) {
    ASSERT_TRUE(testing::Run(absl::StrCat(o,
                                          " genpkey -genparam -algorithm DH "
                                          "-pkeyopt group:",
                                          c.openssl_group, " -out ", dir,
                                          "/params.pem"))
                    .ok());
  } else {  // RFC 2409 group 2 is not built into OpenSSL 3.
    testing::WriteFile(dir + "/params.cnf",
                       absl::StrCat("asn1=SEQUENCE:params\n[params]\n"
                                    "p=INTEGER:0x",
                                    kModp1024Prime, "\ng=INTEGER:2\n"));
    ASSERT_TRUE(
        testing::Run(absl::StrCat(o, " asn1parse -genconf ", dir,
                                  "/params.cnf -noout -out ", dir,
                                  "/params.der && ", o,
                                  " dhparam -inform DER -in ", dir,
                                  "/params.der -out ", dir, "/params.pem"))
            .ok());
  }
  for (const char* name : {"a", "b"}) {
    ASSERT_TRUE(testing::Run(absl::StrCat(o, " genpkey -paramfile ", dir,
                                          "/params.pem -out ", dir, "/", name,
                                          ".pem && ", o, " pkey -in ", dir, "/",
                                          name, ".pem -pubout -out ", dir, "/",
                                          name, "_pub.pem"))
                    .ok());
  }
  auto a_text =
      testing::Run(absl::StrCat(o, " pkey -in ", dir, "/a.pem -text -noout"));
  auto b_text =
      testing::Run(absl::StrCat(o, " pkey -in ", dir, "/b.pem -text -noout"));
  ASSERT_TRUE(a_text.ok() && b_text.ok());
  const Bytes a_private = TextField(*a_text, "private-key");
  const Bytes a_public = Pad(TextField(*a_text, "public-key"), c.prime_size);
  const Bytes b_public = Pad(TextField(*b_text, "public-key"), c.prime_size);
  ASSERT_FALSE(a_private.empty());

  // Same private exponent, same public value.
  auto ours = GetProvider().NewKeyExchangeFromPrivateKey(c.group, a_private);
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_EQ(ToHex((*ours)->public_value()), ToHex(a_public));

  // Same g^ab, padded to the prime's length (RFC 7296 §2.14).
  auto secret = (*ours)->ComputeSharedSecret(b_public);
  ASSERT_TRUE(secret.ok()) << secret.status();
  ASSERT_EQ(secret->size(), c.prime_size);
  auto reference = testing::Run(
      absl::StrCat(o, " pkeyutl -derive -inkey ", dir, "/a.pem -peerkey ", dir,
                   "/b_pub.pem -pkeyopt dh_pad:1 | od -An -v -tx1"));
  ASSERT_TRUE(reference.ok()) << reference.status();
  EXPECT_EQ(ToHex(secret->span()), ToHex(Hex(*reference)));
}

TEST_P(ModpTest, RoundTripAndInvalidPeerValues) {
  const ModpCase& c = GetParam();
  const Provider& p = GetProvider();
  auto a = p.NewKeyExchange(c.group);
  auto b = p.NewKeyExchange(c.group);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)->group(), c.group);
  ASSERT_EQ((*a)->public_value().size(), c.prime_size);
  auto s1 = (*a)->ComputeSharedSecret((*b)->public_value());
  auto s2 = (*b)->ComputeSharedSecret((*a)->public_value());
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(ToHex(s1->span()), ToHex(s2->span()));

  Bytes prime = Hex(kModp1024Prime);
  if (c.openssl_group != nullptr) {  // RFC 3526 prime, via OpenSSL
    auto out = testing::Run(absl::StrCat(
        testing::kOpenssl, " genpkey -genparam -algorithm DH -pkeyopt group:",
        c.openssl_group, " | ", testing::kOpenssl,
        " asn1parse | grep -m1 INTEGER | sed 's/.*://'"));
    ASSERT_TRUE(out.ok()) << out.status();
    prime = Hex(std::string(absl::StripAsciiWhitespace(*out)));
  }
  ASSERT_EQ(prime.size(), c.prime_size);
  Bytes zero(c.prime_size, 0);
  Bytes one = zero;
  one.back() = 1;
  Bytes p_minus_1 = prime;
  p_minus_1.back() = 0xfe;  // every MODP prime ends in 64 one-bits
  Bytes p_minus_2 = prime;
  p_minus_2.back() = 0xfd;
  for (const Bytes& invalid :
       {zero, one, p_minus_1, prime, Bytes(c.prime_size, 0xff)}) {
    EXPECT_EQ((*a)->ComputeSharedSecret(invalid).status().code(),
              absl::StatusCode::kInvalidArgument)
        << ToHex(invalid).substr(ToHex(invalid).size() - 8);
  }
  EXPECT_TRUE((*a)->ComputeSharedSecret(p_minus_2).ok());
  EXPECT_FALSE((*a)->ComputeSharedSecret(Bytes(c.prime_size - 1, 7)).ok());
  EXPECT_FALSE((*a)->ComputeSharedSecret(Bytes(c.prime_size + 1, 7)).ok());
}

INSTANTIATE_TEST_SUITE_P(
    All, ModpTest,
    ::testing::Values(ModpCase{KeyExchangeGroup::kModp1024, 128, nullptr},
                      ModpCase{KeyExchangeGroup::kModp2048, 256, "modp_2048"},
                      ModpCase{KeyExchangeGroup::kModp3072, 384, "modp_3072"}));

}  // namespace
}  // namespace vpn::crypto
