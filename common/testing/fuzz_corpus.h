// Runs a fuzz target in an ordinary test: over its checked-in seeds, every
// truncation of each, and deterministic mutations (bit flips, byte
// overwrites, truncations, splices), so CI catches a crash without libFuzzer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace vpn::testing {

// The files of `dir` (relative to the workspace, found in the runfiles).
std::vector<std::string> ReadSeeds(const std::string& dir);

// Returns how many inputs ran.
size_t RunSeedsAndMutations(const std::vector<std::string>& seeds,
                            int mutations_per_seed, uint32_t rng_seed);

}  // namespace vpn::testing
