#include "common/store/sa_keys.h"

#include "gtest/gtest.h"

namespace vpn::store {
namespace {

TEST(SaKeysTest, AnIkeSaKeyParsesBackToItsSpis) {
  uint64_t spi_i = 0, spi_r = 0;
  ASSERT_TRUE(ParseIkeSaKey(IkeSaKey(0x0123456789abcdefULL, 0xfedcba9876543210ULL), &spi_i, &spi_r));
  EXPECT_EQ(spi_i, 0x0123456789abcdefULL);
  EXPECT_EQ(spi_r, 0xfedcba9876543210ULL);
}

TEST(SaKeysTest, OtherKeysDoNotParse) {
  uint64_t spi_i = 0, spi_r = 0;
  for (const char* key : {"", "ike/", "ike/0123456789abcdef-0123456789abcde",
                          "ike/0123456789abcdef_0123456789abcdef", "xyz/0123456789abcdef-0123456789abcdef",
                          "ike/0123456789abcdeg-0123456789abcdef", "child/0000000a"}) {
    EXPECT_FALSE(ParseIkeSaKey(key, &spi_i, &spi_r)) << key;
  }
}

}  // namespace
}  // namespace vpn::store
