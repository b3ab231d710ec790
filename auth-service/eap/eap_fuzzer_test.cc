// Runs the EAP fuzz target over the seed corpus and a deterministic set of
// mutations of each seed (truncations, bit flips, byte overwrites, splices).
#include <random>
#include <string>
#include <vector>

#include "common/testing/fuzz_corpus.h"
#include "gtest/gtest.h"

namespace {

// Keeps the EAP and MS-CHAPv2 length fields consistent after a growth.
void GrowWithLengths(std::string& m, std::mt19937& rng) {
  m += std::string(1 + rng() % 16, static_cast<char>(rng()));
  if (m.size() >= 4) {
    m[2] = static_cast<char>(m.size() >> 8);
    m[3] = static_cast<char>(m.size());
  }
  if (m.size() >= 9) {
    m[7] = static_cast<char>((m.size() - 5) >> 8);
    m[8] = static_cast<char>(m.size() - 5);
  }
}

TEST(EapFuzz, SeedsAndMutationsDoNotCrash) {
  const std::vector<std::string> seeds =
      vpn::testing::ReadSeeds("auth-service/eap/testdata/eap_fuzzer_corpus");
  ASSERT_GE(seeds.size(), 8u);
  EXPECT_GT(vpn::testing::RunSeedsAndMutations(seeds, 500, 20240526, GrowWithLengths), 4000u);
}

}  // namespace
