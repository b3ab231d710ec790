#include "auth-service/signer/auth_octets.h"

#include <gtest/gtest.h>

#include <string>

#include "auth-service/testing/test_util.h"

namespace vpn::auth {
namespace {

std::string Response(uint8_t flags = 0x20, uint16_t prf = 2, uint8_t exchange = 34) {
  return testing::IkeSaInitResponse(prf, flags, exchange);
}

const std::string kNonce(32, 'n');
const std::string kSha1Mac(20, 'm');

TEST(AuthOctetsTest, AcceptsTheGatewaysOwnResponse) {
  AuthOctetsCheck check = CheckResponderSignedOctets(Response(), kNonce, kSha1Mac);
  EXPECT_TRUE(check.ok) << check.detail;
  EXPECT_EQ(check.prf, 2);
  check = CheckResponderSignedOctets(Response(0x20, 7), std::string(16, 'n'), std::string(64, 'm'));
  EXPECT_TRUE(check.ok) << check.detail;
}

TEST(AuthOctetsTest, RefusesArbitraryOctets) {
  const std::string tls_transcript(300, 'x');
  EXPECT_EQ(CheckResponderSignedOctets(tls_transcript, kNonce, kSha1Mac).error,
            AuthOctetsError::kNotIkeSaInitResponse);
  EXPECT_EQ(CheckResponderSignedOctets("short", kNonce, kSha1Mac).error,
            AuthOctetsError::kResponseTruncated);
}

TEST(AuthOctetsTest, RefusesARequestOrAnotherExchange) {
  EXPECT_EQ(CheckResponderSignedOctets(Response(0x08), kNonce, kSha1Mac).error,
            AuthOctetsError::kNotIkeSaInitResponse);
  EXPECT_EQ(CheckResponderSignedOctets(Response(0x28), kNonce, kSha1Mac).error,
            AuthOctetsError::kNotIkeSaInitResponse);
  EXPECT_EQ(CheckResponderSignedOctets(Response(0x20, 2, 35), kNonce, kSha1Mac).error,
            AuthOctetsError::kNotIkeSaInitResponse);
}

TEST(AuthOctetsTest, RefusesBrokenLengths) {
  std::string longer = Response() + "tail";
  EXPECT_EQ(CheckResponderSignedOctets(longer, kNonce, kSha1Mac).error,
            AuthOctetsError::kResponseTruncated);
  // The header counts the tail, no payload does.
  longer[27] = static_cast<char>(longer[27] + 4);
  EXPECT_EQ(CheckResponderSignedOctets(longer, kNonce, kSha1Mac).error,
            AuthOctetsError::kBadPayloadChain);
  // A payload longer than the message.
  std::string overlong = Response();
  overlong[28 + 3] = static_cast<char>(0xff);
  EXPECT_EQ(CheckResponderSignedOctets(overlong, kNonce, kSha1Mac).error,
            AuthOctetsError::kBadPayloadChain);
}

TEST(AuthOctetsTest, RefusesWrongNonceAndMacLengths) {
  EXPECT_EQ(CheckResponderSignedOctets(Response(), std::string(15, 'n'), kSha1Mac).error,
            AuthOctetsError::kBadNonceLength);
  EXPECT_EQ(CheckResponderSignedOctets(Response(), std::string(257, 'n'), kSha1Mac).error,
            AuthOctetsError::kBadNonceLength);
  EXPECT_EQ(CheckResponderSignedOctets(Response(), kNonce, std::string(32, 'm')).error,
            AuthOctetsError::kBadMacLength);
  EXPECT_EQ(CheckResponderSignedOctets(Response(0x20, 99), kNonce, kSha1Mac).error,
            AuthOctetsError::kUnsupportedPrf);
}

TEST(AuthOctetsTest, RefusesMissingPayloads) {
  // Only the header, with no payload.
  std::string bare = Response().substr(0, 28);
  bare[16] = 0;
  bare[26] = 0;
  bare[27] = 28;
  EXPECT_EQ(CheckResponderSignedOctets(bare, kNonce, kSha1Mac).error,
            AuthOctetsError::kMissingPayload);
}

}  // namespace
}  // namespace vpn::auth
