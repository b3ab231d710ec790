#include "ike-service/sa/sk_protector.h"

#include <gtest/gtest.h>

namespace vpn::ike {
namespace {

crypto::Bytes Pattern(size_t size, uint8_t seed) {
  crypto::Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(seed + 13 * i);
  return out;
}

struct Suite {
  ipsec::TransformSet transforms;
  size_t encryption_key;
  size_t integrity_key;
  size_t iv;
  size_t icv;
};

class SkProtectorTest : public ::testing::TestWithParam<Suite> {};

TEST_P(SkProtectorTest, SealsAndOpensAndDetectsTampering) {
  const Suite& suite = GetParam();
  const crypto::Bytes ek = Pattern(suite.encryption_key, 1);
  const crypto::Bytes ak = Pattern(suite.integrity_key, 2);
  auto protector = SkProtector::Create(suite.transforms, ek, ak);
  ASSERT_TRUE(protector.ok()) << protector.status();
  EXPECT_EQ((*protector)->iv_size(), suite.iv);
  EXPECT_EQ((*protector)->icv_size(), suite.icv);

  const crypto::Bytes prefix = Pattern(32, 3);
  for (size_t size : {0u, 1u, 7u, 8u, 15u, 16u, 100u, 1500u}) {
    const crypto::Bytes plaintext = Pattern(size, 4);
    auto body = (*protector)->Seal(prefix, plaintext);
    ASSERT_TRUE(body.ok()) << body.status();
    EXPECT_EQ(body->size(), (*protector)->SealedSize(size));
    auto opened = (*protector)->Open(prefix, *body);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plaintext);

    for (size_t flip : {size_t{0}, body->size() / 2, body->size() - 1}) {
      crypto::Bytes forged = *body;
      forged[flip] ^= 0x01;
      EXPECT_EQ((*protector)->Open(prefix, forged).status().code(),
                absl::StatusCode::kDataLoss);
    }
    crypto::Bytes other_prefix = prefix;
    other_prefix[5] ^= 0x80;  // the IKE header is authenticated too
    EXPECT_FALSE((*protector)->Open(other_prefix, *body).ok());
  }
  EXPECT_FALSE((*protector)->Open(prefix, crypto::Bytes(3)).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Suites, SkProtectorTest,
    ::testing::Values(Suite{{12, 128, 2, 2, 0, 0}, 16, 20, 16, 12},   // aes128-sha1
                      Suite{{12, 256, 5, 12, 0, 0}, 32, 32, 16, 16},  // aes256-sha256
                      Suite{{3, 0, 2, 2, 0, 0}, 24, 20, 8, 12},       // 3des-sha1
                      Suite{{20, 128, 5, 0, 0, 0}, 20, 0, 8, 16},     // aes128gcm16
                      Suite{{20, 256, 6, 0, 0, 0}, 36, 0, 8, 16},     // aes256gcm16
                      Suite{{28, 0, 5, 0, 0, 0}, 36, 0, 8, 16}));     // chacha20poly1305

TEST(SkProtectorCreateTest, RejectsWrongKeySizes) {
  EXPECT_FALSE(SkProtector::Create({12, 128, 2, 2, 0, 0}, Pattern(15, 1), Pattern(20, 2)).ok());
  EXPECT_FALSE(SkProtector::Create({20, 128, 5, 0, 0, 0}, Pattern(16, 1), {}).ok());
}

}  // namespace
}  // namespace vpn::ike
