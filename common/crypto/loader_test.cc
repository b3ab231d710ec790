// The loader, SecretBytes and the constant-time helpers.
#include <cstdlib>

#include "common/crypto/crypto.h"
#include "common/crypto/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vpn::crypto {
namespace {

using testing::ToHex;

// Runs first in a fresh child, before this process has loaded anything.
TEST(LoaderDeathTest, ExitsWithAClearMessageWhenTheObjectIsMissing) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("VPN_CRYPTO_PROVIDER", "/nonexistent/libvpn_crypto.so", 1);
        GetProvider();
      },
      ::testing::ExitedWithCode(EXIT_FAILURE),
      "libvpn_crypto_boringssl.so not found; looked in: "
      "/nonexistent/libvpn_crypto.so");
  EXPECT_EXIT(
      {
        const std::string bogus = testing::MakeTempDir("bogus") + "/x.so";
        testing::WriteFile(bogus, "not an ELF object");
        setenv("VPN_CRYPTO_PROVIDER", bogus.c_str(), 1);
        GetProvider();
      },
      ::testing::ExitedWithCode(EXIT_FAILURE), "cannot load .*x.so");
}

TEST(LoaderTest, LoadsOnceFromRunfiles) {
  const Provider& first = GetProvider();
  EXPECT_EQ(&first, &GetProvider());
  Bytes random(32);
  first.RandomBytes(absl::MakeSpan(random));
  EXPECT_NE(random, Bytes(32));
}

TEST(SecretBytesTest, OwnsCopiesAndSlices) {
  SecretBytes secret(Bytes{1, 2, 3, 4, 5});
  EXPECT_EQ(secret.size(), 5u);
  SecretBytes copy = secret.Copy();
  EXPECT_NE(copy.data(), secret.data());
  EXPECT_EQ(ToHex(copy.span()), "0102030405");
  EXPECT_EQ(ToHex(secret.Slice(1, 3).span()), "020304");
  EXPECT_TRUE(secret.Slice(4, 2).empty());
  SecretBytes moved = std::move(copy);
  EXPECT_TRUE(copy.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(ToHex(moved.span()), "0102030405");
  moved = SecretBytes(2);
  EXPECT_EQ(ToHex(moved.span()), "0000");
  EXPECT_TRUE(SecretBytes().empty());
}

TEST(SecureZeroTest, Zeroes) {
  uint8_t buffer[16];
  std::fill(std::begin(buffer), std::end(buffer), 0xAB);
  SecureZero(buffer, sizeof(buffer));
  EXPECT_THAT(buffer, ::testing::Each(0));
  SecureZero(nullptr, 0);
}

TEST(ConstantTimeEqualsTest, ComparesContentAndSize) {
  EXPECT_TRUE(ConstantTimeEquals(Bytes{1, 2}, Bytes{1, 2}));
  EXPECT_FALSE(ConstantTimeEquals(Bytes{1, 2}, Bytes{1, 3}));
  EXPECT_FALSE(ConstantTimeEquals(Bytes{1, 2}, Bytes{1, 2, 3}));
  EXPECT_TRUE(ConstantTimeEquals({}, {}));
}

}  // namespace
}  // namespace vpn::crypto
