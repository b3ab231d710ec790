// Runs the fuzz target (message_fuzzer.cc) deterministically: over every seed
// in testdata/message_fuzzer_corpus/, then over a fixed-seed set of mutations of them.
// The target aborts on any round-trip mismatch; a crash fails the test.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr int kMutationsPerSeed = 1500;
constexpr uint32_t kRandomSeed = 7296;

std::filesystem::path CorpusDirectory() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  const std::filesystem::path relative = "ike-service/codec/testdata/message_fuzzer_corpus";
  if (srcdir != nullptr && workspace != nullptr) {
    return std::filesystem::path(srcdir) / workspace / relative;
  }
  return relative;
}

std::vector<std::vector<uint8_t>> LoadCorpus() {
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(CorpusDirectory())) {
    std::ifstream file(entry.path(), std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  return seeds;
}

void RunOne(const std::vector<uint8_t>& input) {
  LLVMFuzzerTestOneInput(input.data(), input.size());
}

// One random edit, biased towards what breaks parsers: length fields set to
// boundary values, truncation, and inserted or removed bytes.
void Mutate(std::mt19937& random, std::vector<uint8_t>* input) {
  auto pick = [&random](size_t bound) {
    return bound == 0 ? 0 : std::uniform_int_distribution<size_t>(0, bound - 1)(random);
  };
  static constexpr uint16_t kBoundaryValues[] = {0, 1, 3, 4, 5, 7, 8, 0x7f, 0x80,
                                                 0xff, 0x100, 0x7fff, 0x8000, 0xffff};
  switch (pick(7)) {
    case 0:  // flip a bit
      if (!input->empty()) (*input)[pick(input->size())] ^= 1u << pick(8);
      break;
    case 1:  // random byte
      if (!input->empty()) (*input)[pick(input->size())] = static_cast<uint8_t>(random());
      break;
    case 2: {  // a 16-bit boundary value, as a length field would hold
      if (input->size() < 2) break;
      const size_t offset = pick(input->size() - 1);
      const uint16_t value = kBoundaryValues[pick(std::size(kBoundaryValues))];
      (*input)[offset] = static_cast<uint8_t>(value >> 8);
      (*input)[offset + 1] = static_cast<uint8_t>(value);
      break;
    }
    case 3:  // truncate
      input->resize(pick(input->size() + 1));
      break;
    case 4: {  // remove a run
      if (input->empty()) break;
      const size_t start = pick(input->size());
      const size_t count = pick(std::min<size_t>(16, input->size() - start) + 1);
      input->erase(input->begin() + start, input->begin() + start + count);
      break;
    }
    case 5: {  // insert random bytes
      const size_t start = pick(input->size() + 1);
      const size_t count = 1 + pick(16);
      std::vector<uint8_t> bytes(count);
      for (auto& byte : bytes) byte = static_cast<uint8_t>(random());
      input->insert(input->begin() + start, bytes.begin(), bytes.end());
      break;
    }
    case 6: {  // duplicate a run (repeats substructures)
      if (input->empty()) break;
      const size_t start = pick(input->size());
      const size_t count = 1 + pick(std::min<size_t>(64, input->size() - start));
      std::vector<uint8_t> run(input->begin() + start, input->begin() + start + count);
      input->insert(input->begin() + start, run.begin(), run.end());
      break;
    }
  }
}

TEST(MessageFuzzerRegressionTest, Seeds) {
  const auto seeds = LoadCorpus();
  ASSERT_GE(seeds.size(), 4u) << "corpus at " << CorpusDirectory();
  for (const auto& seed : seeds) RunOne(seed);
}

TEST(MessageFuzzerRegressionTest, Mutations) {
  const auto seeds = LoadCorpus();
  ASSERT_FALSE(seeds.empty());
  std::mt19937 random(kRandomSeed);
  for (const auto& seed : seeds) {
    for (int i = 0; i < kMutationsPerSeed; ++i) {
      std::vector<uint8_t> input = seed;
      const int edits = 1 + static_cast<int>(random() % 4);
      for (int edit = 0; edit < edits; ++edit) Mutate(random, &input);
      // Usually keep the IKE header's Length right, so that the mutation
      // reaches the payloads instead of failing the first length check.
      if (input.size() >= 28 && random() % 4 != 0) {
        for (int byte = 0; byte < 4; ++byte) {
          input[24 + byte] = static_cast<uint8_t>(input.size() >> (8 * (3 - byte)));
        }
      }
      RunOne(input);
    }
  }
}

}  // namespace
