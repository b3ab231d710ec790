// Where the SA records live in the store: one spelling for every service.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace vpn::store {

inline constexpr char kIkeSaPrefix[] = "ike/";
inline constexpr char kChildSaPrefix[] = "child/";

// "ike/<spi_i>-<spi_r>", 16 hex digits each.
inline std::string IkeSaKey(uint64_t spi_i, uint64_t spi_r) {
  return absl::StrFormat("ike/%016x-%016x", spi_i, spi_r);
}

// The SPIs of an IkeSaKey; false for any other key.
inline bool ParseIkeSaKey(absl::string_view key, uint64_t* spi_i, uint64_t* spi_r) {
  constexpr size_t kPrefixSize = sizeof(kIkeSaPrefix) - 1;
  return key.size() == kPrefixSize + 16 + 1 + 16 && key.substr(0, kPrefixSize) == kIkeSaPrefix &&
         key[kPrefixSize + 16] == '-' &&
         absl::SimpleHexAtoi(key.substr(kPrefixSize, 16), spi_i) &&
         absl::SimpleHexAtoi(key.substr(kPrefixSize + 17, 16), spi_r);
}

// "child/<inbound spi>", 8 hex digits: the SPI the gateway receives on.
inline std::string ChildSaKey(uint32_t inbound_spi) {
  return absl::StrFormat("child/%08x", inbound_spi);
}

}  // namespace vpn::store
