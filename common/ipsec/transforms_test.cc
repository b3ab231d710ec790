#include "common/ipsec/transforms.h"

#include <gtest/gtest.h>

namespace vpn::ipsec {
namespace {

TEST(TransformsTest, KeySizesOfWindowsAndModernSuites) {
  // aes256-sha1-prfsha1-modp1024: 32-byte key, 20-byte HMAC-SHA1 key.
  auto cbc = KeySizesFor({12, 256, 2, 2, 2, 0});
  ASSERT_TRUE(cbc.ok());
  EXPECT_EQ(cbc->encryption_key, 32u);
  EXPECT_EQ(cbc->integrity_key, 20u);
  EXPECT_EQ(cbc->prf_output, 20u);
  // 3DES: 24-byte key.
  auto des = KeySizesFor({3, 0, 2, 2, 2, 0});
  ASSERT_TRUE(des.ok());
  EXPECT_EQ(des->encryption_key, 24u);
  // AES-GCM-16-256 with PRF-HMAC-SHA384: 32 + 4 salt, no integrity.
  auto gcm = KeySizesFor({20, 256, 6, 0, 20, 0});
  ASSERT_TRUE(gcm.ok());
  EXPECT_EQ(gcm->encryption_key, 36u);
  EXPECT_EQ(gcm->integrity_key, 0u);
  EXPECT_EQ(gcm->prf_output, 48u);
  auto chacha = KeySizesFor({28, 0, 5, 0, 31, 0});
  ASSERT_TRUE(chacha.ok());
  EXPECT_EQ(chacha->encryption_key, 36u);
}

TEST(TransformsTest, RejectsWhatItCannotDo) {
  EXPECT_FALSE(KeySizesFor({12, 0, 2, 2, 2, 0}).ok());     // AES without length
  EXPECT_FALSE(KeySizesFor({12, 100, 2, 2, 2, 0}).ok());   // odd length
  EXPECT_FALSE(KeySizesFor({20, 256, 5, 12, 19, 0}).ok()); // AEAD + integrity
  EXPECT_FALSE(KeySizesFor({1, 0, 2, 2, 2, 0}).ok());      // DES-IV64
  EXPECT_FALSE(KeySizesFor({12, 128, 2, 1, 2, 0}).ok());   // HMAC-MD5-96
  EXPECT_FALSE(PrfAlgorithmFor(1).ok());                   // PRF-HMAC-MD5
  EXPECT_FALSE(KeyExchangeGroupFor(1).ok());
}

TEST(TransformsTest, CipherForEachEncryptionTransform) {
  EXPECT_EQ(*AeadAlgorithmFor({20, 128, 0, 0, 0, 0}), crypto::AeadAlgorithm::kAes128Gcm16);
  EXPECT_EQ(*AeadAlgorithmFor({20, 256, 0, 0, 0, 0}), crypto::AeadAlgorithm::kAes256Gcm16);
  EXPECT_EQ(*AeadAlgorithmFor({28, 0, 0, 0, 0, 0}), crypto::AeadAlgorithm::kChaCha20Poly1305);
  EXPECT_FALSE(AeadAlgorithmFor({20, 192, 0, 0, 0, 0}).ok());
  EXPECT_FALSE(AeadAlgorithmFor({12, 128, 0, 0, 0, 0}).ok());
  EXPECT_EQ(*CbcAlgorithmFor({12, 192, 0, 0, 0, 0}), crypto::CbcAlgorithm::kAes192Cbc);
  EXPECT_EQ(*CbcAlgorithmFor({3, 0, 0, 0, 0, 0}), crypto::CbcAlgorithm::k3DesCbc);
  EXPECT_FALSE(CbcAlgorithmFor({12, 100, 0, 0, 0, 0}).ok());
  EXPECT_FALSE(CbcAlgorithmFor({20, 128, 0, 0, 0, 0}).ok());
}

TEST(TransformsTest, NamesLikeStrongSwan) {
  EXPECT_EQ((TransformSet{12, 256, 2, 2, 2, 0}).ToString(),
            "aes256-sha1-prfsha1-modp1024");
  EXPECT_EQ((TransformSet{20, 128, 0, 0, 0, 0}).ToString(), "aes128gcm16");
}

}  // namespace
}  // namespace vpn::ipsec
