// Fuzz target for the inbound path: any bytes as an ESP packet for SAs of
// each algorithm set. The first input byte picks the suite; with its top bit
// set, the rest is first wrapped as a valid ESP packet by the client side and
// then the fuzzer's second byte picks one byte to corrupt, so mutations also
// reach the padding, next-header and inner-header checks.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "esp-forwarder/esp/esp_codec.h"
#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/esp/suites.h"

namespace {

using namespace vpn::forwarder::esp;  // NOLINT

std::vector<testing::SaPair>& Pairs() {
  static auto* pairs = [] {
    auto* v = new std::vector<testing::SaPair>();
    for (const Suite& suite : AllSuites()) v->push_back(testing::MakeSaPair(suite.algorithms, 64));
    return v;
  }();
  return *pairs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto& pairs = Pairs();
  testing::SaPair& pair = pairs[(data[0] & 0x7f) % pairs.size()];
  std::vector<uint8_t> packet;
  if ((data[0] & 0x80) != 0 && size >= 2) {
    // Sealed by the client, so the ICV holds over whatever the fuzzer wrote
    // as the inner packet (bad headers, lengths, versions ...).
    std::vector<uint8_t> inner(data + 2, data + size);
    testing::Frame frame(inner);
    Encapsulated out;
    if (Encapsulate(*pair.client, frame.inner(), inner.size(), &out) == DropReason::kNone) {
      packet.assign(out.esp, out.esp + out.size);
      if (data[1] != 0 && !packet.empty()) packet[data[1] % packet.size()] ^= data[1];
    }
  } else {
    packet.assign(data + 1, data + size);
  }
  Decapsulated result;
  const DropReason reason = Decapsulate(*pair.gateway, packet.data(), packet.size(), &result);
  if (reason == DropReason::kNone) {
    // The inner packet lies inside the input and its header is consistent.
    if (result.inner < packet.data() || result.inner + result.inner_size > packet.data() + packet.size()) {
      __builtin_trap();
    }
    if (result.inner_size < 20) __builtin_trap();
  }
  return 0;
}
