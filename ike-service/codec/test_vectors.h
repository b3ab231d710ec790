#pragma once

// Real IKE datagrams, as hex, for tests.

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace vpn::ike::codec::test_vectors {

std::vector<uint8_t> FromHex(absl::string_view hex);

// IKE_SA_INIT requests sent by strongSwan 5.9.8 (1048 and 376 bytes).
extern const char kStrongswanDefaultIkeSaInit[];
extern const char kStrongswanWindowsIkeSaInit[];

}  // namespace vpn::ike::codec::test_vectors
