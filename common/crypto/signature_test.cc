// Signatures: keys made by the openssl CLI, signatures checked both ways
// against it, RFC 4754 raw ECDSA and the RFC 7427 AlgorithmIdentifiers.
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/crypto/test_util.h"
#include "gtest/gtest.h"

namespace vpn::crypto {
namespace {

using testing::Hex;
using testing::ToBytes;
using testing::ToHex;

const std::string& O() {
  static const std::string* const kOpenssl = new std::string(testing::kOpenssl);
  return *kOpenssl;
}

// One key of each type, generated once per test binary (never committed).
class Keys {
 public:
  static Keys& Get() {
    static Keys* const keys = new Keys();
    return *keys;
  }
  const std::string dir = testing::MakeTempDir("keys");
  std::map<KeyType, std::string> pem_path;

 private:
  Keys() {
    const std::map<KeyType, std::string> args = {
        {KeyType::kRsa, "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"},
        {KeyType::kEcP256, "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"},
        {KeyType::kEcP384, "-algorithm EC -pkeyopt ec_paramgen_curve:P-384"},
        {KeyType::kEcP521, "-algorithm EC -pkeyopt ec_paramgen_curve:P-521"},
        {KeyType::kEd25519, "-algorithm ED25519"},
    };
    for (const auto& [type, arg] : args) {
      const std::string path = absl::StrCat(dir, "/key", int(type), ".pem");
      auto out = testing::Run(
          absl::StrCat(O(), " genpkey ", arg, " -out ", path, " && ", O(),
                       " pkey -in ", path, " -pubout -out ", path, ".pub"));
      if (!out.ok()) std::abort();
      pem_path[type] = path;
    }
  }
};

std::unique_ptr<PrivateKey> LoadKey(KeyType type) {
  auto key = GetProvider().LoadPrivateKeyPem(
      testing::ReadFile(Keys::Get().pem_path[type]));
  EXPECT_TRUE(key.ok()) << key.status();
  return key.ok() ? std::move(*key) : nullptr;
}

struct SchemeCase {
  const char* name;
  SignatureScheme scheme;
  KeyType key;
  const char* digest;   // openssl dgst option, null for Ed25519
  const char* sigopts;  // extra openssl options
};

const SchemeCase kSchemes[] = {
    {"RsaPkcs1Sha1", SignatureScheme::kRsaPkcs1Sha1, KeyType::kRsa, "-sha1",
     ""},
    {"RsaPkcs1Sha256", SignatureScheme::kRsaPkcs1Sha256, KeyType::kRsa,
     "-sha256", ""},
    {"RsaPkcs1Sha384", SignatureScheme::kRsaPkcs1Sha384, KeyType::kRsa,
     "-sha384", ""},
    {"RsaPkcs1Sha512", SignatureScheme::kRsaPkcs1Sha512, KeyType::kRsa,
     "-sha512", ""},
    {"RsaPssSha256", SignatureScheme::kRsaPssSha256, KeyType::kRsa, "-sha256",
     "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest "
     "-sigopt rsa_mgf1_md:sha256"},
    {"RsaPssSha384", SignatureScheme::kRsaPssSha384, KeyType::kRsa, "-sha384",
     "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest "
     "-sigopt rsa_mgf1_md:sha384"},
    {"RsaPssSha512", SignatureScheme::kRsaPssSha512, KeyType::kRsa, "-sha512",
     "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest "
     "-sigopt rsa_mgf1_md:sha512"},
    {"EcdsaSha256P256", SignatureScheme::kEcdsaSha256, KeyType::kEcP256,
     "-sha256", ""},
    {"EcdsaSha384P384", SignatureScheme::kEcdsaSha384, KeyType::kEcP384,
     "-sha384", ""},
    {"EcdsaSha512P521", SignatureScheme::kEcdsaSha512, KeyType::kEcP521,
     "-sha512", ""},
    {"EcdsaSha256P384", SignatureScheme::kEcdsaSha256, KeyType::kEcP384,
     "-sha256", ""},
    {"Ed25519", SignatureScheme::kEd25519, KeyType::kEd25519, nullptr, ""},
};

class SignatureTest : public ::testing::TestWithParam<SchemeCase> {};

TEST_P(SignatureTest, SignsAndVerifiesBothWaysWithOpenssl) {
  const SchemeCase& c = GetParam();
  auto key = LoadKey(c.key);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->type(), c.key);
  auto public_key = key->public_key();
  ASSERT_NE(public_key, nullptr);
  const Bytes data = ToBytes("IKE_SA_INIT message | Nr | prf(SK_pi, IDi)");

  auto signature = key->Sign(c.scheme, data);
  ASSERT_TRUE(signature.ok()) << signature.status();
  EXPECT_TRUE(public_key->Verify(c.scheme, data, *signature).ok());

  Bytes tampered = data;
  tampered[0] ^= 1;
  EXPECT_EQ(public_key->Verify(c.scheme, tampered, *signature).code(),
            absl::StatusCode::kInvalidArgument);
  Bytes bad_signature = *signature;
  bad_signature[bad_signature.size() / 2] ^= 0x10;
  EXPECT_FALSE(public_key->Verify(c.scheme, data, bad_signature).ok());
  EXPECT_FALSE(public_key->Verify(c.scheme, data, {}).ok());

  const std::string dir = testing::MakeTempDir(c.name);
  const std::string key_path = Keys::Get().pem_path[c.key];
  testing::WriteFile(dir + "/data", std::string(data.begin(), data.end()));
  testing::WriteFile(dir + "/sig",
                     std::string(signature->begin(), signature->end()));
  // Ours, checked by OpenSSL.
  const std::string verify =
      c.digest == nullptr
          ? absl::StrCat(O(), " pkeyutl -verify -pubin -inkey ", key_path,
                         ".pub -rawin -in ", dir, "/data -sigfile ", dir,
                         "/sig")
          : absl::StrCat(O(), " dgst ", c.digest, " ", c.sigopts, " -verify ",
                         key_path, ".pub -signature ", dir, "/sig ", dir,
                         "/data");
  auto verified = testing::Run(verify);
  EXPECT_TRUE(verified.ok()) << verified.status();

  // OpenSSL's, checked by us.
  const std::string sign =
      c.digest == nullptr
          ? absl::StrCat(O(), " pkeyutl -sign -inkey ", key_path,
                         " -rawin -in ", dir, "/data -out ", dir, "/osig")
          : absl::StrCat(O(), " dgst ", c.digest, " ", c.sigopts, " -sign ",
                         key_path, " -out ", dir, "/osig ", dir, "/data");
  ASSERT_TRUE(testing::Run(sign).ok());
  const Bytes openssl_signature = ToBytes(testing::ReadFile(dir + "/osig"));
  EXPECT_TRUE(public_key->Verify(c.scheme, data, openssl_signature).ok());
}

INSTANTIATE_TEST_SUITE_P(All, SignatureTest, ::testing::ValuesIn(kSchemes),
                         [](const ::testing::TestParamInfo<SchemeCase>& info) {
                           return std::string(info.param.name);
                         });

// RFC 4754: methods 9-11 carry r || s, each as long as the group order.
TEST(RawEcdsaTest, FixedSizeRoundTripAndDerEquivalence) {
  const struct {
    SignatureScheme raw;
    SignatureScheme der;
    KeyType key;
    size_t size;
    const char* digest;
  } cases[] = {
      {SignatureScheme::kEcdsaP256Sha256Raw, SignatureScheme::kEcdsaSha256,
       KeyType::kEcP256, 64, "-sha256"},
      {SignatureScheme::kEcdsaP384Sha384Raw, SignatureScheme::kEcdsaSha384,
       KeyType::kEcP384, 96, "-sha384"},
      {SignatureScheme::kEcdsaP521Sha512Raw, SignatureScheme::kEcdsaSha512,
       KeyType::kEcP521, 132, "-sha512"},
  };
  const Bytes data = ToBytes("AUTH octets");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.size);
    auto key = LoadKey(c.key);
    ASSERT_NE(key, nullptr);
    auto public_key = key->public_key();
    for (int i = 0; i < 8; ++i) {  // covers r or s with leading zero bytes
      auto signature = key->Sign(c.raw, data);
      ASSERT_TRUE(signature.ok()) << signature.status();
      ASSERT_EQ(signature->size(), c.size);
      EXPECT_TRUE(public_key->Verify(c.raw, data, *signature).ok());
      // The DER form of the same (r, s), verified by OpenSSL.
      const size_t half = c.size / 2;
      const std::string dir = testing::MakeTempDir("raw");
      testing::WriteFile(
          dir + "/sig.cnf",
          absl::StrCat("asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x",
                       ToHex(ByteSpan(*signature).first(half)),
                       "\ns=INTEGER:0x", ToHex(ByteSpan(*signature).last(half)),
                       "\n"));
      testing::WriteFile(dir + "/data", std::string(data.begin(), data.end()));
      auto out = testing::Run(absl::StrCat(
          O(), " asn1parse -genconf ", dir, "/sig.cnf -noout -out ", dir,
          "/sig.der && ", O(), " dgst ", c.digest, " -verify ",
          Keys::Get().pem_path[c.key], ".pub -signature ", dir, "/sig.der ",
          dir, "/data"));
      EXPECT_TRUE(out.ok()) << out.status();
    }
    auto signature = key->Sign(c.raw, data);
    ASSERT_TRUE(signature.ok());
    Bytes wrong_size = *signature;
    wrong_size.push_back(0);
    EXPECT_FALSE(public_key->Verify(c.raw, data, wrong_size).ok());
    EXPECT_FALSE(public_key->Verify(c.der, data, *signature).ok());
  }
}

TEST(SignatureSchemeTest, RejectsSchemesThatDoNotFitTheKey) {
  auto rsa = LoadKey(KeyType::kRsa);
  auto p256 = LoadKey(KeyType::kEcP256);
  auto ed = LoadKey(KeyType::kEd25519);
  const Bytes data = ToBytes("x");
  EXPECT_EQ(rsa->Sign(SignatureScheme::kEcdsaSha256, data).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(rsa->Sign(SignatureScheme::kEd25519, data).ok());
  EXPECT_FALSE(p256->Sign(SignatureScheme::kRsaPkcs1Sha256, data).ok());
  EXPECT_FALSE(p256->Sign(SignatureScheme::kEcdsaP384Sha384Raw, data).ok());
  EXPECT_FALSE(ed->Sign(SignatureScheme::kEcdsaSha256, data).ok());
  auto rsa_signature = rsa->Sign(SignatureScheme::kRsaPkcs1Sha256, data);
  ASSERT_TRUE(rsa_signature.ok());
  EXPECT_FALSE(
      p256->public_key()
          ->Verify(SignatureScheme::kRsaPkcs1Sha256, data, *rsa_signature)
          .ok());
  // PKCS#1 v1.5 and PSS are not interchangeable.
  EXPECT_FALSE(
      rsa->public_key()
          ->Verify(SignatureScheme::kRsaPssSha256, data, *rsa_signature)
          .ok());
}

TEST(PrivateKeyTest, LoadsTraditionalFormsAndRejectsBadPem) {
  const Provider& p = GetProvider();
  const std::string dir = testing::MakeTempDir("pem");
  ASSERT_TRUE(testing::Run(absl::StrCat(O(), " pkey -in ",
                                        Keys::Get().pem_path[KeyType::kRsa],
                                        " -traditional -out ", dir,
                                        "/rsa.pem && ", O(), " ec -in ",
                                        Keys::Get().pem_path[KeyType::kEcP384],
                                        " -out ", dir, "/ec.pem"))
                  .ok());
  const std::string rsa_pem = testing::ReadFile(dir + "/rsa.pem");
  ASSERT_TRUE(absl::StrContains(rsa_pem, "BEGIN RSA PRIVATE KEY"));
  auto rsa = p.LoadPrivateKeyPem(rsa_pem);
  ASSERT_TRUE(rsa.ok()) << rsa.status();
  EXPECT_EQ((*rsa)->type(), KeyType::kRsa);
  EXPECT_EQ((*rsa)->public_key()->bits(), 2048u);
  const std::string ec_pem = testing::ReadFile(dir + "/ec.pem");
  ASSERT_TRUE(absl::StrContains(ec_pem, "BEGIN EC PRIVATE KEY"));
  auto ec = p.LoadPrivateKeyPem(ec_pem);
  ASSERT_TRUE(ec.ok()) << ec.status();
  EXPECT_EQ((*ec)->type(), KeyType::kEcP384);

  // Encrypted: an error, never a terminal prompt.
  ASSERT_TRUE(testing::Run(absl::StrCat(O(), " pkey -in ",
                                        Keys::Get().pem_path[KeyType::kEcP256],
                                        " -aes256 -passout pass:secret -out ",
                                        dir, "/enc.pem"))
                  .ok());
  EXPECT_FALSE(p.LoadPrivateKeyPem(testing::ReadFile(dir + "/enc.pem")).ok());
  EXPECT_FALSE(p.LoadPrivateKeyPem("").ok());
  EXPECT_FALSE(p.LoadPrivateKeyPem("-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                   "-----END PRIVATE KEY-----\n")
                   .ok());
  std::string truncated =
      testing::ReadFile(Keys::Get().pem_path[KeyType::kRsa]);
  truncated.resize(truncated.size() / 2);
  EXPECT_FALSE(p.LoadPrivateKeyPem(truncated).ok());
}

TEST(PublicKeyTest, SpkiRoundTrip) {
  const Provider& p = GetProvider();
  for (KeyType type : {KeyType::kRsa, KeyType::kEcP256, KeyType::kEd25519}) {
    auto key = LoadKey(type);
    const Bytes spki = key->public_key()->spki_der();
    auto parsed = p.ParsePublicKeyDer(spki);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ((*parsed)->type(), type);
    auto signature =
        key->Sign(type == KeyType::kRsa       ? SignatureScheme::kRsaPssSha256
                  : type == KeyType::kEd25519 ? SignatureScheme::kEd25519
                                              : SignatureScheme::kEcdsaSha256,
                  ToBytes("m"));
    ASSERT_TRUE(signature.ok());
    Bytes trailing = spki;
    trailing.push_back(0);
    EXPECT_FALSE(p.ParsePublicKeyDer(trailing).ok());
    EXPECT_FALSE(
        p.ParsePublicKeyDer(ByteSpan(spki).first(spki.size() - 1)).ok());
  }
  EXPECT_FALSE(p.ParsePublicKeyDer({}).ok());
}

TEST(GeneratedKeyTest, AllTypesSign) {
  const Provider& p = GetProvider();
  for (auto [type, scheme] :
       {std::pair{KeyType::kRsa, SignatureScheme::kRsaPkcs1Sha256},
        std::pair{KeyType::kEcP256, SignatureScheme::kEcdsaP256Sha256Raw},
        std::pair{KeyType::kEcP384, SignatureScheme::kEcdsaP384Sha384Raw},
        std::pair{KeyType::kEcP521, SignatureScheme::kEcdsaP521Sha512Raw},
        std::pair{KeyType::kEd25519, SignatureScheme::kEd25519}}) {
    auto key = p.GeneratePrivateKey(type, 2048);
    ASSERT_TRUE(key.ok()) << key.status();
    auto signature = (*key)->Sign(scheme, ToBytes("m"));
    ASSERT_TRUE(signature.ok());
    EXPECT_TRUE(
        (*key)->public_key()->Verify(scheme, ToBytes("m"), *signature).ok());
  }
  EXPECT_FALSE(p.GeneratePrivateKey(KeyType::kRsa, 1024).ok());
}

// ---------------------------------------------------------------------------
// RFC 7427 AlgorithmIdentifiers, compared with the signatureAlgorithm field
// OpenSSL writes into certificates it signs the same way.
// ---------------------------------------------------------------------------
// The second element of the outer SEQUENCE of a DER certificate.
Bytes SignatureAlgorithmOf(const Bytes& cert) {
  size_t pos = 0;
  auto skip_header = [&](size_t* length) {
    ++pos;  // tag
    size_t len = cert[pos++];
    if (len & 0x80) {
      const size_t n = len & 0x7f;
      len = 0;
      for (size_t i = 0; i < n; ++i) len = len << 8 | cert[pos++];
    }
    *length = len;
  };
  size_t len;
  skip_header(&len);  // Certificate
  const size_t tbs_start = pos;
  skip_header(&len);  // TBSCertificate
  pos += len;
  const size_t alg_start = pos;
  skip_header(&len);
  (void)tbs_start;
  return Bytes(cert.begin() + alg_start, cert.begin() + pos + len);
}

TEST(AlgorithmIdentifierTest, MatchesOpensslCertificateSignatures) {
  const struct {
    SignatureScheme scheme;
    KeyType key;
    const char* req_options;
  } cases[] = {
      {SignatureScheme::kRsaPkcs1Sha256, KeyType::kRsa, "-sha256"},
      {SignatureScheme::kRsaPkcs1Sha384, KeyType::kRsa, "-sha384"},
      {SignatureScheme::kRsaPkcs1Sha512, KeyType::kRsa, "-sha512"},
      {SignatureScheme::kRsaPssSha256, KeyType::kRsa,
       "-sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest"},
      {SignatureScheme::kRsaPssSha384, KeyType::kRsa,
       "-sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest"},
      {SignatureScheme::kRsaPssSha512, KeyType::kRsa,
       "-sha512 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest"},
      {SignatureScheme::kEcdsaSha256, KeyType::kEcP256, "-sha256"},
      {SignatureScheme::kEcdsaSha384, KeyType::kEcP384, "-sha384"},
      {SignatureScheme::kEcdsaSha512, KeyType::kEcP521, "-sha512"},
      {SignatureScheme::kEd25519, KeyType::kEd25519, ""},
  };
  for (const auto& c : cases) {
    const std::string dir = testing::MakeTempDir("alg");
    auto out = testing::Run(absl::StrCat(
        O(), " req -x509 -new -key ", Keys::Get().pem_path[c.key], " ",
        c.req_options, " -subj /CN=alg -days 1 -outform DER -out ", dir,
        "/cert.der"));
    ASSERT_TRUE(out.ok()) << out.status();
    const Bytes expected =
        SignatureAlgorithmOf(ToBytes(testing::ReadFile(dir + "/cert.der")));
    auto ours = SignatureAlgorithmIdentifier(c.scheme);
    ASSERT_TRUE(ours.ok());
    EXPECT_EQ(ToHex(*ours), ToHex(expected)) << c.req_options;
    auto back = SignatureSchemeFromAlgorithmIdentifier(expected);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, c.scheme);
  }
}

TEST(AlgorithmIdentifierTest, RejectsUnknownAndRawSchemes) {
  EXPECT_FALSE(
      SignatureAlgorithmIdentifier(SignatureScheme::kEcdsaP256Sha256Raw).ok());
  EXPECT_FALSE(
      SignatureAlgorithmIdentifier(SignatureScheme::kRsaPkcs1Sha1).ok());
  // sha1WithRSAEncryption and garbage.
  EXPECT_FALSE(SignatureSchemeFromAlgorithmIdentifier(
                   Hex("300d06092a864886f70d0101050500"))
                   .ok());
  EXPECT_FALSE(SignatureSchemeFromAlgorithmIdentifier({}).ok());
  EXPECT_FALSE(SignatureSchemeFromAlgorithmIdentifier(Hex("3000")).ok());
  // Parameters absent instead of NULL is accepted for PKCS#1.
  auto absent =
      SignatureSchemeFromAlgorithmIdentifier(Hex("300b06092a864886f70d01010b"));
  ASSERT_TRUE(absent.ok());
  EXPECT_EQ(*absent, SignatureScheme::kRsaPkcs1Sha256);
}

}  // namespace
}  // namespace vpn::crypto
