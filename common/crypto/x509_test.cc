// X.509: a small PKI made with the openssl CLI at test time (no committed
// keys); parsing, chains, validity, EKU, subjectAltName, CRLs, bad input.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/crypto/test_util.h"
#include "gtest/gtest.h"

namespace vpn::crypto {
namespace {

using testing::ToBytes;

class Pki {
 public:
  static const Pki& Get() {
    static const Pki* const pki = new Pki();
    return *pki;
  }
  std::string Pem(const std::string& name) const {
    return testing::ReadFile(dir + "/" + name + ".pem");
  }
  std::unique_ptr<Certificate> Cert(const std::string& name) const {
    auto certs = GetProvider().ParseCertificatesPem(Pem(name));
    if (!certs.ok() || certs->size() != 1) std::abort();
    return std::move(certs->front());
  }

  const std::string dir = testing::MakeTempDir("pki");

 private:
  void Run(const std::string& command) {
    auto out = testing::Run(command);
    if (!out.ok()) {
      std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
      std::abort();
    }
  }

  // Issues `name` from `issuer` with the given extensions.
  void Issue(const std::string& name, const std::string& issuer,
             const std::string& subject, const std::string& extensions) {
    const std::string o = testing::kOpenssl;
    testing::WriteFile(dir + "/" + name + ".ext", extensions);
    Run(absl::StrCat(o,
                     " req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256"
                     " -nodes -keyout ",
                     dir, "/", name, ".key -subj '", subject, "' -out ", dir,
                     "/", name, ".csr"));
    Run(absl::StrCat(o, " x509 -req -in ", dir, "/", name, ".csr -CA ", dir,
                     "/", issuer, ".pem -CAkey ", dir, "/", issuer,
                     ".key -CAcreateserial -days 10 -sha256 -extfile ", dir,
                     "/", name, ".ext -out ", dir, "/", name, ".pem"));
  }

  Pki() {
    const std::string o = testing::kOpenssl;
    const std::string ca_ext =
        "basicConstraints=critical,CA:TRUE\n"
        "keyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n";
    for (const char* root : {"root", "other_root"}) {
      testing::WriteFile(absl::StrCat(dir, "/", root, ".cnf"),
                         "[req]\ndistinguished_name=dn\n[dn]\n[v3]\n" + ca_ext);
      Run(absl::StrCat(o, " req -x509 -new -newkey rsa:2048 -nodes -keyout ",
                       dir, "/", root, ".key -subj '/O=Example/CN=", root,
                       "' -days 30 -sha256 -config ", dir, "/", root,
                       ".cnf -extensions v3 -out ", dir, "/", root, ".pem"));
    }
    Issue("intermediate", "root", "/O=Example/CN=Intermediate",
          ca_ext + "authorityKeyIdentifier=keyid\n");
    const std::string leaf_ext =
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n";
    Issue("server", "intermediate", "/O=Example/CN=vpn.example.com",
          leaf_ext +
              "extendedKeyUsage=serverAuth,1.3.6.1.5.5.8.2.2\n"
              "subjectAltName=DNS:vpn.example.com,IP:192.0.2.1,"
              "email:ops@example.com\n");
    Issue("client_only", "intermediate", "/CN=alice",
          leaf_ext +
              "extendedKeyUsage=clientAuth\n"
              "subjectAltName=email:alice@example.com\n");
    Issue("no_eku", "intermediate", "/CN=plain",
          leaf_ext + "subjectAltName=DNS:plain.example.com\n");
    Issue("revoked", "intermediate", "/CN=revoked",
          leaf_ext + "extendedKeyUsage=serverAuth\n");
    Issue("direct", "root", "/CN=direct",
          leaf_ext + "extendedKeyUsage=serverAuth\n");

    // A CRL from the intermediate that revokes "revoked".
    testing::WriteFile(dir + "/index.txt", "");
    testing::WriteFile(dir + "/crlnumber", "01\n");
    testing::WriteFile(
        dir + "/ca.cnf",
        absl::StrCat("[ca]\ndefault_ca=ca_default\n[ca_default]\n"
                     "database=",
                     dir, "/index.txt\ncrlnumber=", dir,
                     "/crlnumber\ndefault_md=sha256\ndefault_crl_days=30\n"));
    const std::string ca =
        absl::StrCat(o, " ca -config ", dir, "/ca.cnf -keyfile ", dir,
                     "/intermediate.key -cert ", dir, "/intermediate.pem");
    Run(absl::StrCat(ca, " -gencrl -out ", dir, "/empty.crl.pem"));
    Run(absl::StrCat(ca, " -revoke ", dir, "/revoked.pem"));
    Run(absl::StrCat(ca, " -gencrl -out ", dir, "/intermediate.crl.pem"));
    Run(absl::StrCat(o, " crl -in ", dir,
                     "/intermediate.crl.pem -outform DER"
                     " -out ",
                     dir, "/intermediate.crl.der"));
  }
};

TEST(CertificateTest, ParsesFields) {
  auto server = Pki::Get().Cert("server");
  EXPECT_EQ(server->subject(), "CN=vpn.example.com,O=Example");
  EXPECT_EQ(server->issuer(), "CN=Intermediate,O=Example");
  EXPECT_FALSE(server->subject_der().empty());
  EXPECT_FALSE(server->serial_hex().empty());
  EXPECT_LT(server->not_before(), absl::Now() + absl::Minutes(5));
  EXPECT_GT(server->not_after(), absl::Now() + absl::Hours(24 * 9));
  EXPECT_LT(server->not_after(), absl::Now() + absl::Hours(24 * 11));
  EXPECT_FALSE(server->is_ca());
  EXPECT_TRUE(Pki::Get().Cert("intermediate")->is_ca());

  const SubjectAltNames sans = server->subject_alt_names();
  EXPECT_EQ(sans.dns_names, std::vector<std::string>{"vpn.example.com"});
  EXPECT_EQ(sans.emails, std::vector<std::string>{"ops@example.com"});
  ASSERT_EQ(sans.ip_addresses.size(), 1u);
  EXPECT_EQ(sans.ip_addresses[0], (Bytes{192, 0, 2, 1}));

  EXPECT_TRUE(server->has_extended_key_usage());
  EXPECT_TRUE(server->HasExtendedKeyUsage(ExtendedKeyUsage::kServerAuth));
  EXPECT_TRUE(server->HasExtendedKeyUsage(ExtendedKeyUsage::kIkeIntermediate));
  EXPECT_FALSE(server->HasExtendedKeyUsage(ExtendedKeyUsage::kClientAuth));
  EXPECT_FALSE(Pki::Get().Cert("no_eku")->has_extended_key_usage());

  auto key = server->public_key();
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->type(), KeyType::kEcP256);

  // DER round trip.
  auto again = GetProvider().ParseCertificateDer(server->der());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->subject(), server->subject());
}

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store =
        GetProvider().NewTrustStore(Pki::Get().Pem("root"), /*crls=*/"");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    intermediate_ = Pki::Get().Cert("intermediate");
  }
  absl::Status Verify(const std::string& leaf, const VerifyOptions& options,
                      const TrustStore* store = nullptr) {
    const Certificate* chain[] = {intermediate_.get()};
    return (store ? store : store_.get())
        ->Verify(*Pki::Get().Cert(leaf), chain, options);
  }

  std::unique_ptr<TrustStore> store_;
  std::unique_ptr<Certificate> intermediate_;
};

TEST_F(VerifyTest, AcceptsAGoodChainAndIdentity) {
  VerifyOptions options;
  EXPECT_TRUE(Verify("server", options).ok());
  options.dns_name = "VPN.example.com";
  options.ip_address = {192, 0, 2, 1};
  options.email = "ops@example.com";
  options.require_eku_extension = true;
  EXPECT_TRUE(Verify("server", options).ok());
  // Directly under the root, no intermediates needed.
  auto direct = Pki::Get().Cert("direct");
  EXPECT_TRUE(store_->Verify(*direct, {}, VerifyOptions()).ok());
}

TEST_F(VerifyTest, RejectsWrongIdentity) {
  VerifyOptions options;
  options.dns_name = "other.example.com";
  EXPECT_EQ(Verify("server", options).code(),
            absl::StatusCode::kPermissionDenied);
  options = VerifyOptions();
  options.ip_address = {192, 0, 2, 2};
  EXPECT_FALSE(Verify("server", options).ok());
}

TEST_F(VerifyTest, RejectsBrokenChains) {
  auto server = Pki::Get().Cert("server");
  // Intermediate missing.
  EXPECT_EQ(store_->Verify(*server, {}, VerifyOptions()).code(),
            absl::StatusCode::kPermissionDenied);
  // A different root.
  auto other = GetProvider().NewTrustStore(Pki::Get().Pem("other_root"), "");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(Verify("server", VerifyOptions(), other->get()).ok());
}

TEST_F(VerifyTest, ChecksValidityPeriod) {
  VerifyOptions options;
  options.time = absl::Now() + absl::Hours(24 * 12);  // leaf expired
  absl::Status status = Verify("server", options);
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "expired")) << status;
  options.time = absl::Now() - absl::Hours(48);  // not yet valid
  EXPECT_FALSE(Verify("server", options).ok());
}

TEST_F(VerifyTest, ChecksExtendedKeyUsage) {
  VerifyOptions options;  // default: serverAuth or IKE intermediate
  EXPECT_EQ(Verify("client_only", options).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Verify("no_eku", options).ok());
  options.require_eku_extension = true;
  EXPECT_FALSE(Verify("no_eku", options).ok());
  options = VerifyOptions();
  options.acceptable_ekus = {ExtendedKeyUsage::kClientAuth};
  EXPECT_TRUE(Verify("client_only", options).ok());
  options.acceptable_ekus.clear();
  EXPECT_TRUE(Verify("client_only", options).ok());
}

TEST_F(VerifyTest, ChecksCrls) {
  for (const char* crl_file :
       {"intermediate.crl.pem", "intermediate.crl.der"}) {
    SCOPED_TRACE(crl_file);
    auto store = GetProvider().NewTrustStore(
        Pki::Get().Pem("root"),
        testing::ReadFile(Pki::Get().dir + "/" + crl_file));
    ASSERT_TRUE(store.ok()) << store.status();
    absl::Status revoked = Verify("revoked", VerifyOptions(), store->get());
    EXPECT_EQ(revoked.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_TRUE(absl::StrContains(revoked.message(), "revoked")) << revoked;
    EXPECT_TRUE(Verify("server", VerifyOptions(), store->get()).ok());
    // The root has no CRL: fine unless CRLs are required.
    VerifyOptions strict;
    strict.require_crl = true;
    EXPECT_FALSE(Verify("server", strict, store->get()).ok());
  }
  // Without a CRL the revoked certificate is not known to be revoked.
  EXPECT_TRUE(Verify("revoked", VerifyOptions()).ok());
  // An older CRL that does not list it.
  auto store = GetProvider().NewTrustStore(
      Pki::Get().Pem("root"),
      testing::ReadFile(Pki::Get().dir + "/empty.crl.pem"));
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE(Verify("revoked", VerifyOptions(), store->get()).ok());
}

TEST(TrustStoreTest, RejectsBadInput) {
  const Provider& p = GetProvider();
  EXPECT_FALSE(p.NewTrustStore("", "").ok());
  EXPECT_FALSE(p.NewTrustStore("not a certificate", "").ok());
  EXPECT_FALSE(p.NewTrustStore(Pki::Get().Pem("root"), "garbage").ok());
  EXPECT_FALSE(p.NewTrustStore(Pki::Get().Pem("root"),
                               "-----BEGIN X509 CRL-----\nAAAA\n"
                               "-----END X509 CRL-----\n")
                   .ok());
}

TEST(MalformedCertificateTest, NeverCrashes) {
  const Provider& p = GetProvider();
  const auto server = Pki::Get().Cert("server");
  const Bytes der(server->der().begin(), server->der().end());
  EXPECT_FALSE(p.ParseCertificateDer({}).ok());
  EXPECT_FALSE(p.ParseCertificateDer(ToBytes("garbage")).ok());
  Bytes trailing = der;
  trailing.push_back(0);
  EXPECT_FALSE(p.ParseCertificateDer(trailing).ok());
  for (size_t len = 0; len < der.size(); len += 3) {
    EXPECT_FALSE(p.ParseCertificateDer(ByteSpan(der).first(len)).ok()) << len;
  }
  // Bit flips: parse may succeed or fail, accessors must not crash.
  int parsed = 0;
  for (size_t i = 0; i < der.size(); ++i) {
    Bytes flipped = der;
    flipped[i] ^= static_cast<uint8_t>(1u << (i % 8));
    auto cert = p.ParseCertificateDer(flipped);
    if (!cert.ok()) continue;
    ++parsed;
    (void)(*cert)->subject();
    (void)(*cert)->subject_alt_names();
    (void)(*cert)->HasExtendedKeyUsage(ExtendedKeyUsage::kServerAuth);
    (void)(*cert)->not_after();
    (void)(*cert)->public_key();
  }
  EXPECT_GT(parsed, 0);
  EXPECT_FALSE(p.ParseCertificatesPem("").ok());
  std::string pem = Pki::Get().Pem("server");
  pem[pem.size() / 2] = '!';
  EXPECT_FALSE(p.ParseCertificatesPem(pem).ok());
  // A bundle of two.
  auto two = p.ParseCertificatesPem(Pki::Get().Pem("server") +
                                    Pki::Get().Pem("intermediate"));
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
}

}  // namespace
}  // namespace vpn::crypto
