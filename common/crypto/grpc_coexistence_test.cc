// The reason the provider is a dlopen()ed object: this process links gRPC and
// OpenSSL 3, holds live TLS channels (OpenSSL), calls OpenSSL directly, and
// still gets correct BoringSSL results through the provider.
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <openssl/crypto.h>  // OpenSSL 3, from /usr/include
#include <openssl/evp.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/crypto/crypto.h"
#include "common/crypto/test_util.h"
#include "gtest/gtest.h"

namespace vpn::crypto {
namespace {

using testing::Hex;
using testing::ToBytes;
using testing::ToHex;

class GrpcCoexistenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = testing::MakeTempDir("tls");
    auto out = testing::Run(absl::StrCat(
        testing::kOpenssl,
        " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
        " -keyout ",
        dir, "/key.pem -out ", dir,
        "/cert.pem -days 1"
        " -subj /CN=localhost -addext subjectAltName=DNS:localhost"));
    ASSERT_TRUE(out.ok()) << out.status();
    cert_pem_ = testing::ReadFile(dir + "/cert.pem");
    grpc::SslServerCredentialsOptions options;
    options.pem_key_cert_pairs.push_back(
        {testing::ReadFile(dir + "/key.pem"), cert_pem_});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("localhost:0", grpc::SslServerCredentials(options),
                             &port_);
    // Answers every method with UNIMPLEMENTED; only the handshake matters.
    builder.RegisterCallbackGenericService(&generic_service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // A TLS handshake through gRPC, i.e. through OpenSSL.
  std::shared_ptr<grpc::Channel> Connect() {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = cert_pem_;
    auto channel = grpc::CreateChannel(absl::StrCat("localhost:", port_),
                                       grpc::SslCredentials(options));
    EXPECT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() +
                                          std::chrono::seconds(20)));
    return channel;
  }

  std::string cert_pem_;
  int port_ = 0;
  grpc::CallbackGenericService generic_service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(GrpcCoexistenceTest, ProviderIsCorrectBesideALiveOpensslChannel) {
  auto channel = Connect();
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);

  // The process's global libcrypto is OpenSSL 3.
  EXPECT_GE(OpenSSL_version_num(), 0x30000000UL);
  uint8_t digest[32];
  unsigned digest_len = 0;
  ASSERT_EQ(EVP_Digest("abc", 3, digest, &digest_len, EVP_sha256(), nullptr),
            1);
  EXPECT_EQ(ToHex(ByteSpan(digest, digest_len)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  // BoringSSL through the provider: published vectors.
  const Provider& p = GetProvider();
  auto aead = p.NewAead(AeadAlgorithm::kAes128Gcm16,
                        Hex("feffe9928665731c6d6a8f9467308308"));
  ASSERT_TRUE(aead.ok());
  auto sealed = (*aead)->Seal(
      Hex("cafebabefacedbaddecaf888"),
      Hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"),
      Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(ToHex(*sealed).substr(ToHex(*sealed).size() - 32),
            "5bc94fbc3221a5db94fae95ae7121a47");

  auto prf = p.NewPrf(PrfAlgorithm::kHmacSha256, ToBytes("Jefe"));
  ASSERT_TRUE(prf.ok());
  EXPECT_EQ(
      ToHex((*prf)->Compute(ToBytes("what do ya want for nothing?")).span()),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

  auto alice = p.NewKeyExchangeFromPrivateKey(
      KeyExchangeGroup::kCurve25519,
      Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
  ASSERT_TRUE(alice.ok());
  auto shared = (*alice)->ComputeSharedSecret(
      Hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
  ASSERT_TRUE(shared.ok());
  EXPECT_EQ(ToHex(shared->span()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

  // X.509 and signatures, the parts that share the most symbol names.
  auto certs = p.ParseCertificatesPem(cert_pem_);
  ASSERT_TRUE(certs.ok());
  EXPECT_EQ((*certs)[0]->subject(), "CN=localhost");
  auto key = p.GeneratePrivateKey(KeyType::kEcP256, 0);
  ASSERT_TRUE(key.ok());
  auto signature =
      (*key)->Sign(SignatureScheme::kEcdsaP256Sha256Raw, ToBytes("data"));
  ASSERT_TRUE(signature.ok());
  EXPECT_TRUE((*key)
                  ->public_key()
                  ->Verify(SignatureScheme::kEcdsaP256Sha256Raw,
                           ToBytes("data"), *signature)
                  .ok());

  // gRPC's TLS still works afterwards.
  auto second = Connect();
  EXPECT_EQ(second->GetState(false), GRPC_CHANNEL_READY);
  EXPECT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
}

}  // namespace
}  // namespace vpn::crypto
