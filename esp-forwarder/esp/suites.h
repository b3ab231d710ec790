// Named ESP algorithm sets (strongSwan proposal syntax) with deterministic
// keys, for tests, the fuzz target and the load generator; and the mirror
// of an SA as the client sees it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "esp-forwarder/esp/esp_sa.h"

namespace vpn::forwarder::esp {

struct Suite {
  std::string name;  // "aes128gcm16", "aes256-sha1", "3des-sha1", ...
  EspAlgorithms algorithms;
};

// Every algorithm set the forwarder implements.
const std::vector<Suite>& AllSuites();
absl::StatusOr<Suite> SuiteByName(const std::string& name);

// Keys for both directions, derived from `seed` (not secret: tests only).
struct TestKeys {
  std::vector<uint8_t> in_enc, in_int, out_enc, out_int;
  SaKeys view() const;
  SaKeys mirrored() const;  // the client's view: directions swapped
};
absl::StatusOr<TestKeys> MakeTestKeys(const EspAlgorithms& algorithms, uint32_t seed);

// The client's side of `gateway`: SPIs, keys and selectors swapped.
SaParams MirrorParams(const SaParams& gateway);

}  // namespace vpn::forwarder::esp
