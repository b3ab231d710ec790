// Client certificate validation against a PKI made by the openssl CLI, with
// AUTH signatures made by the openssl CLI.
#include "auth-service/certs/cert_validator.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "auth-service/testing/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vpn::auth {
namespace {

using ::testing::HasSubstr;
using testing::FromHex;
using testing::ReadFile;
using testing::WriteFile;

constexpr char kOctets[] = "IKE_SA_INIT request | Nr | prf(SK_pi, IDi')";
constexpr char kSha256WithRsa[] = "300d06092a864886f70d01010b0500";
constexpr char kEcdsaWithSha256[] = "300a06082a8648ce3d040302";

crypto::ByteSpan Span(const std::string& s) {
  return crypto::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// DER Ecdsa-Sig-Value to fixed-size r||s (RFC 4754).
crypto::Bytes DerToRaw(const crypto::Bytes& der, size_t half) {
  crypto::Bytes raw;
  size_t pos = 2;
  if (der[1] & 0x80) pos += der[1] & 0x7f;
  for (int i = 0; i < 2; ++i) {
    const size_t len = der[pos + 1];
    crypto::Bytes v(der.begin() + pos + 2, der.begin() + pos + 2 + len);
    while (v.size() > half && v[0] == 0) v.erase(v.begin());
    raw.insert(raw.end(), half - v.size(), 0);
    raw.insert(raw.end(), v.begin(), v.end());
    pos += 2 + len;
  }
  return raw;
}

class CertValidatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pki = testing::MakeTestPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new std::string(*pki);
  }

  static std::string Path(const std::string& f) { return *pki_ + "/" + f; }

  std::unique_ptr<CertValidator> Validator(bool with_crl = true) {
    std::vector<std::string> crls;
    if (with_crl) crls.push_back(ReadFile(Path("crl.pem")));
    auto v = CertValidator::Load(crypto::GetProvider(),
                                 ReadFile(Path("ca.pem")), crls);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? std::move(*v) : nullptr;
  }

  // Signs kOctets with a client key using the openssl CLI.
  crypto::Bytes OpensslSign(const std::string& key, const std::string& digest) {
    const std::string dir = testing::MakeTempDir("sign");
    WriteFile(dir + "/data", kOctets);
    auto out = testing::Run(absl::StrCat(
        "openssl pkeyutl -sign -inkey ", Path(key), " -rawin -digest ", digest,
        " -in ", dir, "/data -out ", dir, "/sig"));
    EXPECT_TRUE(out.ok()) << out.status();
    const std::string sig = ReadFile(dir + "/sig");
    return crypto::Bytes(sig.begin(), sig.end());
  }

  static crypto::Bytes Rfc7427(const char* algorithm_hex,
                               const crypto::Bytes& signature) {
    crypto::Bytes algorithm = FromHex(algorithm_hex);
    crypto::Bytes data = {static_cast<uint8_t>(algorithm.size())};
    data.insert(data.end(), algorithm.begin(), algorithm.end());
    data.insert(data.end(), signature.begin(), signature.end());
    return data;
  }

  // A request for `chain_file` with an FQDN identity and an ECDSA-SHA256
  // method 14 signature by `key`.
  ValidationResult Check(const CertValidator& v, const std::string& chain_file,
                         const std::string& key, const std::string& fqdn) {
    chain_ = testing::ChainDer(Path(chain_file));
    identity_ = fqdn;
    auth_data_ = Rfc7427(kEcdsaWithSha256, OpensslSign(key, "sha256"));
    return v.Validate(Request(id_type::kFqdn, 14));
  }

  CertificateAuth Request(uint32_t identity_type, uint32_t method) {
    CertificateAuth auth;
    for (const crypto::Bytes& der : chain_) auth.chain_der.push_back(der);
    auth.identity = Span(identity_);
    auth.identity_type = identity_type;
    auth.auth_method = method;
    auth.signed_octets = Span(octets_);
    auth.auth_data = auth_data_;
    return auth;
  }

  static std::string* pki_;
  std::vector<crypto::Bytes> chain_;
  std::string identity_;
  std::string octets_ = kOctets;
  crypto::Bytes auth_data_;
};

std::string* CertValidatorTest::pki_ = nullptr;

TEST_F(CertValidatorTest, GoodRsaCertificateWithEveryIdentityType) {
  auto v = Validator();
  ASSERT_NE(v, nullptr);
  chain_ = testing::ChainDer(Path("client_rsa.pem"));
  ASSERT_EQ(chain_.size(), 1u);
  auth_data_ = OpensslSign("client_rsa.key", "sha1");  // method 1

  identity_ = "client.example.com";
  ValidationResult r = v->Validate(Request(id_type::kFqdn, 1));
  EXPECT_TRUE(r.valid) << r.reason;
  EXPECT_THAT(r.subject, HasSubstr("CN=client.example.com"));

  identity_ = "alice@example.com";
  r = v->Validate(Request(id_type::kRfc822Addr, 1));
  EXPECT_TRUE(r.valid) << r.reason;

  identity_ = std::string("\xc0\x00\x02\x0a", 4);  // 192.0.2.10
  r = v->Validate(Request(id_type::kIpv4Addr, 1));
  EXPECT_TRUE(r.valid) << r.reason;

  identity_.resize(16);
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::10", identity_.data()), 1);
  r = v->Validate(Request(id_type::kIpv6Addr, 1));
  EXPECT_TRUE(r.valid) << r.reason;

  auto leaf = crypto::GetProvider().ParseCertificateDer(chain_[0]);
  const crypto::Bytes dn = (*leaf)->subject_der();
  identity_.assign(dn.begin(), dn.end());
  r = v->Validate(Request(id_type::kDerAsn1Dn, 1));
  EXPECT_TRUE(r.valid) << r.reason;

  // RFC 7427 with PKCS#1 v1.5 SHA-256.
  identity_ = "client.example.com";
  auth_data_ = Rfc7427(kSha256WithRsa, OpensslSign("client_rsa.key", "sha256"));
  r = v->Validate(Request(id_type::kFqdn, 14));
  EXPECT_TRUE(r.valid) << r.reason;
}

TEST_F(CertValidatorTest, IntermediateChainWithoutEkuAndRawEcdsa) {
  auto v = Validator();
  ASSERT_NE(v, nullptr);
  chain_ = testing::ChainDer(Path("client_ec_chain.pem"));
  ASSERT_EQ(chain_.size(), 2u);
  identity_ = "ec.example.com";
  // Method 10: ECDSA P-384 SHA-384 with r||s.
  auth_data_ = DerToRaw(OpensslSign("client_ec.key", "sha384"), 48);
  ASSERT_EQ(auth_data_.size(), 96u);
  ValidationResult r = v->Validate(Request(id_type::kFqdn, 10));
  EXPECT_TRUE(r.valid) << r.reason;

  // The leaf alone does not reach the root.
  chain_.resize(1);
  r = v->Validate(Request(id_type::kFqdn, 10));
  EXPECT_FALSE(r.valid);
  EXPECT_THAT(r.reason, HasSubstr("certificate not accepted"));
}

TEST_F(CertValidatorTest, IpsecIkeEkuIsAccepted) {
  auto v = Validator();
  ASSERT_NE(v, nullptr);
  ValidationResult r = Check(*v, "client_ipsec.pem", "client_ipsec.key",
                             "ipsec.example.com");
  EXPECT_TRUE(r.valid) << r.reason;
}

TEST_F(CertValidatorTest, RejectsUntrustedExpiredRevokedAndWrongEku) {
  auto v = Validator();
  ASSERT_NE(v, nullptr);
  ValidationResult r = Check(*v, "client_other_ca.pem", "client_other_ca.key",
                             "plain.example.com");
  EXPECT_FALSE(r.valid);
  EXPECT_THAT(r.reason, HasSubstr("certificate not accepted"));
  std::printf("other CA: %s\n", r.reason.c_str());

  r = Check(*v, "client_expired.pem", "client_expired.key",
            "plain.example.com");
  EXPECT_FALSE(r.valid);
  std::printf("expired: %s\n", r.reason.c_str());
  EXPECT_THAT(r.reason, HasSubstr("expired"));

  r = Check(*v, "client_revoked.pem", "client_revoked.key",
            "plain.example.com");
  EXPECT_FALSE(r.valid);
  std::printf("revoked: %s\n", r.reason.c_str());
  // Without the CRL the same certificate passes: the CRL is what rejects it.
  auto no_crl = Validator(/*with_crl=*/false);
  r = no_crl->Validate(Request(id_type::kFqdn, 14));
  EXPECT_TRUE(r.valid) << r.reason;

  r = Check(*v, "client_server_eku.pem", "client_server_eku.key",
            "plain.example.com");
  EXPECT_FALSE(r.valid);
  std::printf("serverAuth only: %s\n", r.reason.c_str());
}

TEST_F(CertValidatorTest, CrlFilesMayBeDerAndSeveral) {
  const std::string dir = testing::MakeTempDir("crl");
  ASSERT_TRUE(testing::Run(absl::StrCat("openssl crl -in ", Path("crl.pem"),
                                        " -outform DER -out ", dir, "/crl.der"))
                  .ok());
  for (const std::vector<std::string>& crls :
       {std::vector<std::string>{ReadFile(dir + "/crl.der")},
        std::vector<std::string>{ReadFile(dir + "/crl.der"),
                                 ReadFile(Path("crl.pem"))}}) {
    auto v = CertValidator::Load(crypto::GetProvider(),
                                 ReadFile(Path("ca.pem")), crls);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_FALSE(Check(**v, "client_revoked.pem", "client_revoked.key",
                       "plain.example.com")
                     .valid);
  }
}

TEST_F(CertValidatorTest, RejectsWrongIdentities) {
  auto v = Validator();
  ASSERT_NE(v, nullptr);
  ValidationResult r = Check(*v, "client_ipsec.pem", "client_ipsec.key",
                             "other.example.com");
  EXPECT_FALSE(r.valid);
  std::printf("wrong FQDN: %s\n", r.reason.c_str());

  identity_ = std::string("\xc0\x00\x02\x0b", 4);
  EXPECT_FALSE(v->Validate(Request(id_type::kIpv4Addr, 14)).valid);
  identity_ = "abc";
  r = v->Validate(Request(id_type::kIpv4Addr, 14));
  EXPECT_EQ(r.reason, "ID_IPV4_ADDR identity is not 4 bytes");
  r = v->Validate(Request(id_type::kDerAsn1Dn, 14));
  EXPECT_THAT(r.reason, HasSubstr("does not equal the certificate subject"));
  r = v->Validate(Request(11, 14));  // ID_KEY_ID
  EXPECT_EQ(r.reason, "identity type 11 is not supported for certificates");
  identity_ = "";
  EXPECT_FALSE(v->Validate(Request(id_type::kFqdn, 14)).valid);
}

TEST_F(CertValidatorTest, RejectsBadSignatures) {
  auto v = Validator();
  ASSERT_NE(v, nullptr);
  ASSERT_TRUE(Check(*v, "client_ipsec.pem", "client_ipsec.key",
                    "ipsec.example.com")
                  .valid);
  crypto::Bytes good = auth_data_;

  auth_data_.back() ^= 1;
  ValidationResult r = v->Validate(Request(id_type::kFqdn, 14));
  EXPECT_FALSE(r.valid);
  EXPECT_THAT(r.reason, HasSubstr("does not verify"));

  auth_data_ = good;
  octets_ += "x";  // signed something else
  EXPECT_FALSE(v->Validate(Request(id_type::kFqdn, 14)).valid);
  octets_ = kOctets;

  r = v->Validate(Request(id_type::kFqdn, 1));  // RSA method, EC key
  EXPECT_THAT(r.reason, HasSubstr("needs a RSA key"));
  r = v->Validate(Request(id_type::kFqdn, 2));  // shared key
  EXPECT_THAT(r.reason, HasSubstr("is not a certificate signature"));
  r = v->Validate(Request(id_type::kFqdn, 10));  // P-384 method, P-256 key
  EXPECT_FALSE(r.valid);

  for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{13}}) {
    auth_data_.assign(good.begin(), good.begin() + n);
    r = v->Validate(Request(id_type::kFqdn, 14));
    EXPECT_FALSE(r.valid) << n;
  }
  auth_data_ = good;
  auth_data_[3] ^= 0x40;  // corrupt the AlgorithmIdentifier
  EXPECT_FALSE(v->Validate(Request(id_type::kFqdn, 14)).valid);
}

TEST_F(CertValidatorTest, NamesTheCaForCertreqAsOpensslHashesIt) {
  auto validator = Validator();
  ASSERT_NE(validator, nullptr);
  ASSERT_EQ(validator->authority_hashes().size(), 1u);
  // SHA-1 of the CA's SubjectPublicKeyInfo, by a different library.
  auto expected = testing::Run(absl::StrCat(
      "openssl x509 -in ", Path("ca.pem"), " -pubkey -noout | openssl pkey -pubin "
      "-outform DER | openssl dgst -sha1 -r | cut -d' ' -f1"));
  ASSERT_TRUE(expected.ok()) << expected.status();
  std::string hex;
  for (uint8_t b : validator->authority_hashes()[0]) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  EXPECT_EQ(hex + "\n", *expected);
}

TEST_F(CertValidatorTest, GarbageNeverCrashes) {
  auto v = Validator();
  ASSERT_NE(v, nullptr);
  CertificateAuth auth;
  EXPECT_EQ(v->Validate(auth).reason, "no certificate");
  const std::string junk = "\x30\x82\xff\xff garbage";
  auth.chain_der = {Span(junk)};
  EXPECT_THAT(v->Validate(auth).reason, HasSubstr("does not parse"));
  chain_ = testing::ChainDer(Path("client_rsa.pem"));
  auth.chain_der.assign(9, chain_[0]);
  EXPECT_THAT(v->Validate(auth).reason, HasSubstr("longer than"));
  // Every truncation of a real certificate.
  for (size_t n = 0; n < chain_[0].size(); n += 7) {
    auth.chain_der = {crypto::ByteSpan(chain_[0]).first(n)};
    EXPECT_FALSE(v->Validate(auth).valid);
  }
}

}  // namespace
}  // namespace vpn::auth
