// MS-CHAPv2: the RFC 2759 §9.2 and RFC 3079 §3.5.3 worked examples and the
// EAP-MSCHAPv2 MSK.
#include "common/crypto/mschapv2.h"

#include <string>

#include "common/crypto/crypto.h"
#include "common/crypto/test_util.h"
#include "gtest/gtest.h"

namespace vpn::crypto::mschapv2 {
namespace {

using testing::Hex;
using testing::ToBytes;
using testing::ToHex;

// RFC 2759 §9.2 (also the inputs of RFC 3079 §3.5).
constexpr char kUserName[] = "User";
constexpr char kPassword[] = "clientPass";
const Bytes kAuthenticatorChallenge =
    Hex("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28");
const Bytes kPeerChallenge =
    Hex("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E");
const Bytes kUnicodePassword =
    Hex("63 00 6C 00 69 00 65 00 6E 00 74 00 50 00 61 00 73 00 73 00");
const Bytes kChallenge = Hex("D0 2E 43 86 BC E9 12 26");
const Bytes kPasswordHash =
    Hex("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE");
const Bytes kNtResponse = Hex(
    "82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF");
const Bytes kPasswordHashHash =
    Hex("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F");
constexpr char kAuthenticatorResponse[] =
    "S=407A5589115FD0D6209F510FE9C04566932CDA56";

TEST(MsChapV2Test, Rfc2759HashExample) {
  const Provider& p = GetProvider();
  auto unicode = PasswordToUnicode(kPassword);
  ASSERT_TRUE(unicode.ok());
  EXPECT_EQ(ToHex(unicode->span()), ToHex(kUnicodePassword));

  const SecretBytes hash = NtPasswordHash(p, unicode->span());
  EXPECT_EQ(ToHex(hash.span()), ToHex(kPasswordHash));
  EXPECT_EQ(ToHex(HashNtPasswordHash(p, hash.span()).span()),
            ToHex(kPasswordHashHash));

  auto challenge =
      ChallengeHash(p, kPeerChallenge, kAuthenticatorChallenge, kUserName);
  ASSERT_TRUE(challenge.ok());
  EXPECT_EQ(ToHex(*challenge), ToHex(kChallenge));

  auto response = ChallengeResponse(p, kChallenge, kPasswordHash);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(ToHex(*response), ToHex(kNtResponse));

  auto nt_response = GenerateNtResponse(p, kAuthenticatorChallenge,
                                        kPeerChallenge, kUserName, hash.span());
  ASSERT_TRUE(nt_response.ok());
  EXPECT_EQ(ToHex(*nt_response), ToHex(kNtResponse));
  EXPECT_TRUE(VerifyNtResponse(p, kAuthenticatorChallenge, kPeerChallenge,
                               kUserName, kPasswordHash, kNtResponse));
  Bytes wrong = kNtResponse;
  wrong[23] ^= 1;
  EXPECT_FALSE(VerifyNtResponse(p, kAuthenticatorChallenge, kPeerChallenge,
                                kUserName, kPasswordHash, wrong));
  EXPECT_FALSE(VerifyNtResponse(p, kAuthenticatorChallenge, kPeerChallenge,
                                "user", kPasswordHash, kNtResponse));

  auto authenticator = GenerateAuthenticatorResponse(
      p, kPasswordHash, kNtResponse, kPeerChallenge, kAuthenticatorChallenge,
      kUserName);
  ASSERT_TRUE(authenticator.ok());
  EXPECT_EQ(*authenticator, kAuthenticatorResponse);
}

// RFC 3079 §3.5.3 (128-bit keys): MasterKey and SendStartKey128, the latter
// being GetAsymmetricStartKey(MasterKey, 16, IsSend=TRUE, IsServer=TRUE).
TEST(MsChapV2Test, Rfc3079KeyDerivation) {
  const Provider& p = GetProvider();
  auto master = GetMasterKey(p, kPasswordHashHash, kNtResponse);
  ASSERT_TRUE(master.ok());
  EXPECT_EQ(ToHex(master->span()), "fdece3717a8c838cb388e527ae3cdd31");
  auto send = GetAsymmetricStartKey(p, master->span(), 16, true, true);
  ASSERT_TRUE(send.ok());
  EXPECT_EQ(ToHex(send->span()), "8b7cdc149b993a1ba118cb153f56dccb");
  // RFC 3079 §3.5.1/3.5.2 use the first 8 bytes for 40/56-bit keys.
  auto send8 = GetAsymmetricStartKey(p, master->span(), 8, true, true);
  ASSERT_TRUE(send8.ok());
  EXPECT_EQ(ToHex(send8->span()), "8b7cdc149b993a1b");
  // The client's receive key is the server's send key.
  auto client_receive =
      GetAsymmetricStartKey(p, master->span(), 16, false, false);
  ASSERT_TRUE(client_receive.ok());
  EXPECT_EQ(ToHex(client_receive->span()), ToHex(send->span()));
}

// [MS-CHAP] §3.1.5.1: MSK = MasterReceiveKey | MasterSendKey | 32 zeros.
TEST(MsChapV2Test, MskForIkev2) {
  const Provider& p = GetProvider();
  auto msk = DeriveMsk(p, kPasswordHash, kNtResponse);
  ASSERT_TRUE(msk.ok()) << msk.status();
  ASSERT_EQ(msk->size(), 64u);
  auto master = GetMasterKey(p, kPasswordHashHash, kNtResponse);
  auto receive = GetAsymmetricStartKey(p, master->span(), 16, false, true);
  ASSERT_TRUE(receive.ok());
  EXPECT_EQ(ToHex(msk->span().subspan(0, 16)), ToHex(receive->span()));
  // The send half is RFC 3079's published SendStartKey128.
  EXPECT_EQ(ToHex(msk->span().subspan(16, 16)),
            "8b7cdc149b993a1ba118cb153f56dccb");
  EXPECT_EQ(ToHex(msk->span().subspan(32)), std::string(64, '0'));
  // The receive half, recomputed from RFC 3079 §3.4's definition with the
  // openssl CLI's SHA-1 (Magic2, server side, receive).
  const std::string dir = testing::MakeTempDir("msk");
  std::string input(master->span().begin(), master->span().end());
  input += std::string(40, '\0');
  input +=
      "On the client side, this is the send key; on the server side, it is the "
      "receive key.";
  input += std::string(40, '\xf2');
  testing::WriteFile(dir + "/in", input);
  auto sha1 = testing::Run(std::string(testing::kOpenssl) + " dgst -sha1 -r " +
                           dir + "/in");
  ASSERT_TRUE(sha1.ok());
  EXPECT_EQ(ToHex(receive->span()), sha1->substr(0, 32));
}

TEST(MsChapV2Test, Primitives) {
  const Provider& p = GetProvider();
  // RFC 1320 §A.5.
  EXPECT_EQ(ToHex(p.Md4(ToBytes(""))), "31d6cfe0d16ae931b73c59d7e0c089c0");
  EXPECT_EQ(ToHex(p.Md4(ToBytes("abc"))), "a448017aaf21d8525fc10ae87aa6729d");
  // The first DES block of the RFC 2759 NT-Response.
  auto block = p.DesEncryptBlock(ByteSpan(kPasswordHash).first(7), kChallenge);
  ASSERT_TRUE(block.ok());
  EXPECT_EQ(ToHex(*block), ToHex(ByteSpan(kNtResponse).first(8)));
  EXPECT_FALSE(p.DesEncryptBlock(Bytes(8), kChallenge).ok());
  EXPECT_FALSE(p.DesEncryptBlock(Bytes(7), Bytes(7)).ok());
}

TEST(MsChapV2Test, RejectsBadInput) {
  const Provider& p = GetProvider();
  EXPECT_FALSE(ChallengeHash(p, Bytes(15), kAuthenticatorChallenge, "u").ok());
  EXPECT_FALSE(ChallengeResponse(p, Bytes(7), kPasswordHash).ok());
  EXPECT_FALSE(ChallengeResponse(p, kChallenge, Bytes(15)).ok());
  EXPECT_FALSE(GetMasterKey(p, kPasswordHashHash, Bytes(23)).ok());
  EXPECT_FALSE(GetAsymmetricStartKey(p, Bytes(16), 12, true, true).ok());
  EXPECT_FALSE(DeriveMsk(p, Bytes(15), kNtResponse).ok());
  EXPECT_FALSE(GenerateAuthenticatorResponse(p, kPasswordHash, Bytes(3),
                                             kPeerChallenge,
                                             kAuthenticatorChallenge, "u")
                   .ok());
  EXPECT_FALSE(PasswordToUnicode("\xff").ok());
  EXPECT_FALSE(PasswordToUnicode("\xc3").ok());          // truncated
  EXPECT_FALSE(PasswordToUnicode("\xc0\xaf").ok());      // overlong
  EXPECT_FALSE(PasswordToUnicode("\xed\xa0\x80").ok());  // surrogate
  EXPECT_FALSE(PasswordToUnicode(std::string(257, 'a')).ok());
  auto euro =
      PasswordToUnicode("\xe2\x82\xac\xf0\x9f\x94\x91");  // U+20AC U+1F511
  ASSERT_TRUE(euro.ok());
  EXPECT_EQ(ToHex(euro->span()), "ac203dd811dd");
}

}  // namespace
}  // namespace vpn::crypto::mschapv2
