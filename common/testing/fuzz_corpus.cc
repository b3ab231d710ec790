#include "common/testing/fuzz_corpus.h"

#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace vpn::testing {
namespace {

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

}  // namespace

std::vector<std::string> ReadSeeds(const std::string& relative) {
  std::string dir = relative;
  if (const char* root = std::getenv("TEST_SRCDIR")) {
    dir = std::string(root) + "/vpn_gateway/" + relative;
  }
  std::vector<std::string> seeds;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* entry = ::readdir(d)) {
      const std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      std::ifstream in(dir + "/" + name, std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    ::closedir(d);
  }
  return seeds;
}

size_t RunSeedsAndMutations(const std::vector<std::string>& seeds, int mutations_per_seed,
                            uint32_t rng_seed, const FormatMutation& format) {
  std::mt19937 rng(rng_seed);
  size_t runs = 0;
  for (const std::string& seed : seeds) {
    for (size_t n = 0; n <= seed.size(); ++n, ++runs) Run(seed.substr(0, n));
    if (seed.empty()) continue;
    for (int i = 0; i < mutations_per_seed; ++i, ++runs) {
      std::string m = seed;
      const int edits = 1 + rng() % 4;
      for (int e = 0; e < edits && !m.empty(); ++e) {
        const size_t pos = rng() % m.size();
        switch (rng() % (format ? 5 : 4)) {
          case 0:
            m[pos] ^= static_cast<char>(1 << (rng() % 8));
            break;
          case 1:
            m[pos] = static_cast<char>(rng());
            break;
          case 2:
            m.resize(pos + 1);
            break;
          case 3:
            m.insert(pos, m.substr(rng() % m.size(), 1 + rng() % 8));
            break;
          case 4:
            format(m, rng);
            break;
        }
      }
      Run(m);
    }
  }
  return runs;
}

}  // namespace vpn::testing
