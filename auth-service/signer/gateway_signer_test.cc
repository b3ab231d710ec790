// Gateway AUTH signatures, each checked with the openssl CLI (OpenSSL 3, a
// different library from the BoringSSL provider that made it).
#include "auth-service/signer/gateway_signer.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "auth-service/testing/test_util.h"
#include "gtest/gtest.h"

namespace vpn::auth {
namespace {

using testing::FromHex;
using testing::ReadFile;
using testing::ToHex;
using testing::WriteFile;

// RFC 7427 Appendix A AlgorithmIdentifiers (RFC 8420 for Ed25519).
constexpr char kSha256WithRsa[] = "300d06092a864886f70d01010b0500";
constexpr char kSha512WithRsa[] = "300d06092a864886f70d01010d0500";
constexpr char kEcdsaWithSha256[] = "300a06082a8648ce3d040302";
constexpr char kEcdsaWithSha384[] = "300a06082a8648ce3d040303";
constexpr char kEd25519[] = "300506032b6570";

class GatewaySignerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pki = testing::MakeTestPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new std::string(*pki);
  }

  std::unique_ptr<GatewaySigner> Load(const std::string& name) {
    auto signer = GatewaySigner::Load(crypto::GetProvider(),
                                      ReadFile(Path(name + "_chain.pem")),
                                      ReadFile(Path(name + ".key")));
    EXPECT_TRUE(signer.ok()) << signer.status();
    return signer.ok() ? std::move(*signer) : nullptr;
  }

  static std::string Path(const std::string& file) {
    return *pki_ + "/" + file;
  }

  // Verifies `signature` over kOctets with the cert's key via openssl.
  void ExpectOpensslVerifies(const std::string& cert, const crypto::Bytes& sig,
                             const std::string& digest) {
    const std::string dir = testing::MakeTempDir("verify");
    WriteFile(dir + "/data", kOctets);
    WriteFile(dir + "/sig", std::string(sig.begin(), sig.end()));
    const std::string digest_flag = digest.empty() ? "" : " -digest " + digest;
    auto out = testing::Run(absl::StrCat(
        "openssl pkeyutl -verify -certin -inkey ", Path(cert), " -rawin",
        digest_flag, " -in ", dir, "/data -sigfile ", dir, "/sig"));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_NE(out->find("Signature Verified Successfully"), std::string::npos)
        << *out;
    // And a changed message does not verify.
    WriteFile(dir + "/data", std::string(kOctets) + "x");
    EXPECT_FALSE(testing::Run(absl::StrCat(
                                  "openssl pkeyutl -verify -certin -inkey ",
                                  Path(cert), " -rawin", digest_flag, " -in ",
                                  dir, "/data -sigfile ", dir, "/sig"))
                     .ok());
  }

  // Splits RFC 7427 AUTH data into AlgorithmIdentifier and signature.
  static void Split7427(const crypto::Bytes& auth_data, std::string* algorithm,
                        crypto::Bytes* signature) {
    ASSERT_GT(auth_data.size(), 1u);
    const size_t length = auth_data[0];
    ASSERT_GT(auth_data.size(), 1 + length);
    *algorithm = ToHex(crypto::ByteSpan(auth_data).subspan(1, length));
    signature->assign(auth_data.begin() + 1 + length, auth_data.end());
  }

  static constexpr char kOctets[] =
      "IKE_SA_INIT response | Ni | prf(SK_pr, IDr')";
  static crypto::ByteSpan Octets() {
    return crypto::ByteSpan(reinterpret_cast<const uint8_t*>(kOctets),
                            sizeof(kOctets) - 1);
  }
  static std::string* pki_;
};

std::string* GatewaySignerTest::pki_ = nullptr;

TEST_F(GatewaySignerTest, RsaClassicIsMethod1Sha1) {
  auto signer = Load("gateway_rsa");
  ASSERT_NE(signer, nullptr);
  EXPECT_EQ(signer->chain_der().size(), 2u);
  EXPECT_EQ(ToHex(signer->chain_der()[0]),
            ToHex(testing::ChainDer(Path("gateway_rsa.pem"))[0]));
  auto sig = signer->Sign(Octets(), {});
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->auth_method, 1);
  EXPECT_EQ(sig->auth_data.size(), 256u);
  ExpectOpensslVerifies("gateway_rsa.pem", sig->auth_data, "sha1");
}

TEST_F(GatewaySignerTest, RsaRfc7427PrefersPkcs1Sha256) {
  auto signer = Load("gateway_rsa");
  ASSERT_NE(signer, nullptr);
  const uint32_t all[] = {1, 2, 3, 4, 5};
  auto sig = signer->Sign(Octets(), all);
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->auth_method, 14);
  EXPECT_EQ(sig->auth_data[0], 0x0f);  // RFC 7427 A.1
  std::string algorithm;
  crypto::Bytes signature;
  Split7427(sig->auth_data, &algorithm, &signature);
  EXPECT_EQ(algorithm, kSha256WithRsa);
  ExpectOpensslVerifies("gateway_rsa.pem", signature, "sha256");

  const uint32_t sha512_only[] = {4};
  sig = signer->Sign(Octets(), sha512_only);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->auth_method, 14);
  Split7427(sig->auth_data, &algorithm, &signature);
  EXPECT_EQ(algorithm, kSha512WithRsa);
  ExpectOpensslVerifies("gateway_rsa.pem", signature, "sha512");

  // Only SHA-1 in common: the classic method.
  const uint32_t sha1_only[] = {1};
  sig = signer->Sign(Octets(), sha1_only);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->auth_method, 1);
  ExpectOpensslVerifies("gateway_rsa.pem", sig->auth_data, "sha1");
}

TEST_F(GatewaySignerTest, EcdsaClassicIsRfc4754RawRs) {
  auto p256 = Load("gateway_ec");
  ASSERT_NE(p256, nullptr);
  auto sig = p256->Sign(Octets(), {});
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->auth_method, 9);
  ASSERT_EQ(sig->auth_data.size(), 64u);
  ExpectOpensslVerifies("gateway_ec.pem",
                        testing::RawEcdsaToDer(sig->auth_data), "sha256");

  auto p384 = Load("gateway_ec384");
  ASSERT_NE(p384, nullptr);
  sig = p384->Sign(Octets(), {});
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->auth_method, 10);
  ASSERT_EQ(sig->auth_data.size(), 96u);
  ExpectOpensslVerifies("gateway_ec384.pem",
                        testing::RawEcdsaToDer(sig->auth_data), "sha384");
}

TEST_F(GatewaySignerTest, EcdsaRfc7427UsesTheCurvesHashAndDerSignature) {
  auto p256 = Load("gateway_ec");
  ASSERT_NE(p256, nullptr);
  const uint32_t hashes[] = {2, 3, 4};
  auto sig = p256->Sign(Octets(), hashes);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->auth_method, 14);
  std::string algorithm;
  crypto::Bytes signature;
  Split7427(sig->auth_data, &algorithm, &signature);
  EXPECT_EQ(algorithm, kEcdsaWithSha256);
  ExpectOpensslVerifies("gateway_ec.pem", signature, "sha256");

  auto p384 = Load("gateway_ec384");
  ASSERT_NE(p384, nullptr);
  sig = p384->Sign(Octets(), hashes);
  ASSERT_TRUE(sig.ok());
  Split7427(sig->auth_data, &algorithm, &signature);
  EXPECT_EQ(algorithm, kEcdsaWithSha384);
  ExpectOpensslVerifies("gateway_ec384.pem", signature, "sha384");
}

TEST_F(GatewaySignerTest, Ed25519NeedsTheIdentityHash) {
  auto signer = Load("gateway_ed25519");
  ASSERT_NE(signer, nullptr);
  EXPECT_EQ(signer->Sign(Octets(), {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const uint32_t sha256_only[] = {2};
  EXPECT_FALSE(signer->Sign(Octets(), sha256_only).ok());
  const uint32_t identity[] = {2, 5};
  auto sig = signer->Sign(Octets(), identity);
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->auth_method, 14);
  std::string algorithm;
  crypto::Bytes signature;
  Split7427(sig->auth_data, &algorithm, &signature);
  EXPECT_EQ(algorithm, kEd25519);
  ExpectOpensslVerifies("gateway_ed25519.pem", signature, "");
}

TEST_F(GatewaySignerTest, RejectsMismatchedOrBadInput) {
  const crypto::Provider& p = crypto::GetProvider();
  auto mismatch = GatewaySigner::Load(p, ReadFile(Path("gateway_rsa.pem")),
                                      ReadFile(Path("gateway_ec.key")));
  EXPECT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("does not match"),
            std::string::npos);
  EXPECT_FALSE(GatewaySigner::Load(p, "garbage", ReadFile(Path("gateway_ec.key")))
                   .ok());
  EXPECT_FALSE(GatewaySigner::Load(p, ReadFile(Path("gateway_ec.pem")), "junk")
                   .ok());
  auto signer = Load("gateway_ec");
  ASSERT_NE(signer, nullptr);
  EXPECT_FALSE(signer->Sign({}, {}).ok());
}

// notAfter as the openssl CLI reads it from `pem` (its first certificate).
absl::Time OpensslNotAfter(const std::string& pem) {
  auto out = testing::Run(
      absl::StrCat("openssl x509 -noout -enddate -dateopt iso_8601 -in ", pem));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return absl::InfinitePast();
  // "notAfter=2026-01-06 10:00:00Z"
  const std::string text(absl::StripAsciiWhitespace(*out));
  absl::Time time;
  std::string error;
  EXPECT_TRUE(absl::ParseTime("notAfter=%Y-%m-%d %H:%M:%SZ", text, &time, &error))
      << text << ": " << error;
  return time;
}

TEST_F(GatewaySignerTest, NotAfterIsTheChainsEarliest) {
  // The leaf alone: its own notAfter.
  const crypto::Provider& p = crypto::GetProvider();
  auto leaf = GatewaySigner::Load(p, ReadFile(Path("gateway_rsa.pem")),
                                  ReadFile(Path("gateway_rsa.key")));
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ((*leaf)->not_after(), OpensslNotAfter(Path("gateway_rsa.pem")));

  // A chain whose second certificate ends first (2 days, against the
  // leaf's 30): the chain is only as good as that one.
  const std::string dir = testing::MakeTempDir("short");
  ASSERT_TRUE(testing::Run(absl::StrCat(
                  "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                  "-days 2 -subj /CN=short -keyout ", dir, "/short.key -out ", dir,
                  "/short.pem 2>&1")).ok());
  const absl::Time short_end = OpensslNotAfter(dir + "/short.pem");
  ASSERT_LT(short_end, OpensslNotAfter(Path("gateway_rsa.pem")));
  auto chain = GatewaySigner::Load(
      p, ReadFile(Path("gateway_rsa.pem")) + ReadFile(dir + "/short.pem"),
      ReadFile(Path("gateway_rsa.key")));
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ((*chain)->not_after(), short_end);
}

}  // namespace
}  // namespace vpn::auth
