// Runs the EAP fuzz target over the seed corpus and a deterministic set of
// mutations of each seed (truncations, bit flips, byte overwrites, splices).
#include <dirent.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> Seeds() {
  std::string dir = "auth-service/eap/testdata/eap_fuzzer_seeds";
  if (const char* root = std::getenv("TEST_SRCDIR")) {
    dir = std::string(root) + "/vpn_gateway/" + dir;
  }
  std::vector<std::string> seeds;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* entry = readdir(d)) {
      const std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      std::ifstream in(dir + "/" + name, std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in),
                         std::istreambuf_iterator<char>());
    }
    closedir(d);
  }
  return seeds;
}

void RunTarget(const std::string& s) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(EapFuzz, SeedsAndMutationsDoNotCrash) {
  const std::vector<std::string> seeds = Seeds();
  ASSERT_GE(seeds.size(), 8u);
  std::mt19937 rng(20240526);
  int runs = 0;
  for (const std::string& seed : seeds) {
    RunTarget(seed);
    for (size_t n = 0; n < seed.size(); ++n) {
      RunTarget(seed.substr(0, n));
      ++runs;
    }
    if (seed.empty()) continue;
    for (int i = 0; i < 500; ++i) {
      std::string m = seed;
      const int edits = 1 + rng() % 4;
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const size_t pos = rng() % m.size();
        switch (rng() % 5) {
          case 0:
            m[pos] ^= static_cast<char>(1 << (rng() % 8));
            break;
          case 1:
            m[pos] = static_cast<char>(rng() % 2 ? 0xff : 0x00);
            break;
          case 2:
            m.resize(pos + 1);
            break;
          case 3:
            m.insert(pos, m.substr(rng() % m.size(), 1 + rng() % 8));
            break;
          case 4:  // keep the EAP and MS-CHAPv2 length fields consistent
            m += std::string(1 + rng() % 16, static_cast<char>(rng()));
            if (m.size() >= 4) {
              m[2] = static_cast<char>(m.size() >> 8);
              m[3] = static_cast<char>(m.size());
            }
            if (m.size() >= 9) {
              m[7] = static_cast<char>((m.size() - 5) >> 8);
              m[8] = static_cast<char>(m.size() - 5);
            }
            break;
        }
      }
      RunTarget(m);
      ++runs;
    }
  }
  EXPECT_GT(runs, 4000);
}

}  // namespace
