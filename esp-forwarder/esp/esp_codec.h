// ESP tunnel mode (RFC 4303) on buffers in place. Decapsulate() is the
// inbound path after the SPI lookup: bounds, replay, ICV, padding, next
// header, inner header and selector checks, in that order, each failure a
// DropReason. Encapsulate() wraps an inner IP packet that has
// kEspHeadroom bytes free before it and kEspTailroom after it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "esp-forwarder/esp/drop_reason.h"
#include "esp-forwarder/esp/esp_sa.h"

namespace vpn::forwarder::esp {

inline constexpr size_t kEspHeaderSize = 8;   // SPI + sequence number
inline constexpr size_t kEspHeadroom = 8 + 16;  // header + largest IV
inline constexpr size_t kEspTailroom = 15 + 2 + 32;  // pad + trailer + largest ICV
inline constexpr uint8_t kNextHeaderIpv4 = 4;
inline constexpr uint8_t kNextHeaderIpv6 = 41;
inline constexpr uint8_t kNextHeaderNone = 59;

inline uint32_t ReadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

inline void WriteBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

struct Decapsulated {
  uint8_t* inner = nullptr;  // the inner IP packet, inside the input buffer
  size_t inner_size = 0;
  bool inner_v6 = false;
  uint64_t sequence = 0;
  bool highest = false;  // above every sequence number accepted before
};

// `esp` starts at the ESP header (the SPI must be `sa`'s inbound SPI).
DropReason Decapsulate(EspSa& sa, uint8_t* esp, size_t size, Decapsulated* out);

struct Encapsulated {
  uint8_t* esp = nullptr;  // = inner - 8 - IV size
  size_t size = 0;
};

// Protects the inner packet `inner` (an IPv4 or IPv6 packet, as its version
// nibble says) for `sa`'s outbound direction. Checks the inner addresses
// against the SA's selectors.
DropReason Encapsulate(EspSa& sa, uint8_t* inner, size_t inner_size, Encapsulated* out);

// Outer size for an inner packet of `inner_size` bytes (ESP only).
size_t EspSize(const EspCipher& cipher, size_t inner_size);

}  // namespace vpn::forwarder::esp
