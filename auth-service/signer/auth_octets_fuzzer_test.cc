#include <gtest/gtest.h>

#include "common/testing/fuzz_corpus.h"

namespace {

TEST(AuthOctetsFuzz, SeedsAndMutationsDoNotCrash) {
  const std::vector<std::string> seeds =
      vpn::testing::ReadSeeds("auth-service/signer/testdata/auth_octets_fuzzer_corpus");
  ASSERT_GE(seeds.size(), 3u);
  EXPECT_GT(vpn::testing::RunSeedsAndMutations(seeds, 2000, 20261207), 6000u);
}

}  // namespace
