// Runs a fuzz target in an ordinary test: over its checked-in seeds, every
// truncation of each, and deterministic mutations (bit flips, byte
// overwrites, truncations, splices), so CI catches a crash without libFuzzer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace vpn::testing {

// The files of `dir` (relative to the workspace, found in the runfiles).
std::vector<std::string> ReadSeeds(const std::string& dir);

// A mutation that knows the format (e.g. keeps its length fields
// consistent, so the input gets past the first check).
using FormatMutation = std::function<void(std::string& input, std::mt19937& rng)>;

// Returns how many inputs ran. With `format`, one edit in five is it.
size_t RunSeedsAndMutations(const std::vector<std::string>& seeds,
                            int mutations_per_seed, uint32_t rng_seed,
                            const FormatMutation& format = nullptr);

}  // namespace vpn::testing
