// Helpers shared by the ESP tests and the fuzz target: inner packets and a
// gateway SA with its client mirror.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "esp-forwarder/esp/esp_codec.h"
#include "esp-forwarder/esp/suites.h"

namespace vpn::forwarder::esp::testing {

inline const uint8_t kClientVip[4] = {10, 10, 0, 2};
inline const uint8_t kLanHost[4] = {203, 0, 113, 2};
inline const uint8_t kClientVip6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
inline const uint8_t kLanHost6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

// An IPv4 (or IPv6) UDP packet of `size` bytes in total, src -> dst.
std::vector<uint8_t> Ipv4Packet(const uint8_t src[4], const uint8_t dst[4], size_t size,
                                uint8_t fill = 0xab);
std::vector<uint8_t> Ipv6Packet(const uint8_t src[16], const uint8_t dst[16], size_t size,
                                uint8_t fill = 0xcd);

struct SaPair {
  std::shared_ptr<EspSa> gateway;  // receives on 0x1000, sends on 0x2000
  std::shared_ptr<EspSa> client;   // the mirror
  TestKeys keys;
  SaParams params;
};
// Client selector = its VIP (v4 and v6) /32 and /128; gateway's = anything.
SaPair MakeSaPair(const EspAlgorithms& algorithms, uint32_t window = 64,
                  uint32_t seed = 7, Lifetime lifetime = {});

// A buffer with headroom/tailroom around `inner`, for Encapsulate().
struct Frame {
  std::vector<uint8_t> storage;
  uint8_t* inner() { return storage.data() + kEspHeadroom; }
  explicit Frame(const std::vector<uint8_t>& packet);
};

// Encapsulates `inner` with `sender`'s outbound side; returns the ESP bytes.
std::vector<uint8_t> Protect(EspSa& sender, const std::vector<uint8_t>& inner);

}  // namespace vpn::forwarder::esp::testing
