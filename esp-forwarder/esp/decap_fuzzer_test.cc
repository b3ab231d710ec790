// Deterministic driver for the decap fuzz target: seeds of every suite, then
// random mutations with a fixed seed. Fails only by crashing (or ASan).
#include <cstdint>
#include <random>
#include <vector>

#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/esp/suites.h"
#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace vpn::forwarder::esp {
namespace {

TEST(DecapFuzzerTest, MutationsOfValidPacketsNeverCrash) {
  std::mt19937 random(20240601);
  const size_t suites = AllSuites().size();
  size_t runs = 0;
  for (size_t s = 0; s < suites; ++s) {
    auto pair = testing::MakeSaPair(AllSuites()[s].algorithms, 64, 7);
    for (size_t size : {0, 1, 20, 28, 40, 64, 300, 1500}) {
      // Raw: a real packet for the fuzz target's SA (same keys: seed 7).
      std::vector<uint8_t> esp = testing::Protect(*pair.client,
                                                  testing::Ipv4Packet(testing::kClientVip, testing::kLanHost, size));
      for (int m = 0; m < 60; ++m) {
        std::vector<uint8_t> input = {uint8_t(s)};
        input.insert(input.end(), esp.begin(), esp.end());
        const int edits = 1 + random() % 4;
        for (int e = 0; e < edits && input.size() > 1; ++e) {
          switch (random() % 3) {
            case 0: input[1 + random() % (input.size() - 1)] ^= uint8_t(1 + random() % 255); break;
            case 1: input.resize(1 + random() % input.size()); break;
            case 2: input.push_back(uint8_t(random())); break;
          }
        }
        LLVMFuzzerTestOneInput(input.data(), input.size());
        // Sealed: random inner bytes, optional corruption.
        std::vector<uint8_t> sealed = {uint8_t(0x80 | s), uint8_t(m % 3 == 0 ? 0 : random())};
        for (size_t i = 0; i < size % 200; ++i) sealed.push_back(uint8_t(random()));
        if (sealed.size() > 2 && m % 2 == 0) {
          auto inner = testing::Ipv4Packet(testing::kClientVip, testing::kLanHost, size % 200 + 20);
          inner[random() % inner.size()] ^= uint8_t(random());
          sealed.resize(2);
          sealed.insert(sealed.end(), inner.begin(), inner.end());
        }
        LLVMFuzzerTestOneInput(sealed.data(), sealed.size());
        runs += 2;
      }
    }
  }
  EXPECT_GT(runs, 10000u);
}

}  // namespace
}  // namespace vpn::forwarder::esp
