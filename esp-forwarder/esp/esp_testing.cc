#include "esp-forwarder/esp/esp_testing.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace vpn::forwarder::esp::testing {

std::vector<uint8_t> Ipv4Packet(const uint8_t src[4], const uint8_t dst[4], size_t size,
                                uint8_t fill) {
  if (size < 28) size = 28;
  std::vector<uint8_t> p(size, fill);
  p[0] = 0x45;
  p[1] = 0;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[4] = p[5] = p[6] = p[7] = 0;
  p[8] = 64;
  p[9] = 17;
  p[10] = p[11] = 0;
  std::memcpy(&p[12], src, 4);
  std::memcpy(&p[16], dst, 4);
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  p[10] = ~sum >> 8;
  p[11] = ~sum & 0xff;
  const size_t udp = size - 20;
  p[20] = 0x30; p[21] = 0x39; p[22] = 0x13; p[23] = 0x89;
  p[24] = udp >> 8; p[25] = udp & 0xff; p[26] = p[27] = 0;
  return p;
}

std::vector<uint8_t> Ipv6Packet(const uint8_t src[16], const uint8_t dst[16], size_t size,
                                uint8_t fill) {
  if (size < 48) size = 48;
  std::vector<uint8_t> p(size, fill);
  p[0] = 0x60;
  p[1] = p[2] = p[3] = 0;
  const size_t payload = size - 40;
  p[4] = payload >> 8;
  p[5] = payload & 0xff;
  p[6] = 17;
  p[7] = 64;
  std::memcpy(&p[8], src, 16);
  std::memcpy(&p[24], dst, 16);
  p[40] = 0x30; p[41] = 0x39; p[42] = 0x13; p[43] = 0x89;
  p[44] = payload >> 8; p[45] = payload & 0xff; p[46] = p[47] = 0;
  return p;
}

SaPair MakeSaPair(const EspAlgorithms& algorithms, uint32_t window, uint32_t seed,
                  Lifetime lifetime) {
  SaPair pair;
  pair.params.inbound_spi = 0x1000 + seed;
  pair.params.outbound_spi = 0x2000 + seed;
  pair.params.algorithms = algorithms;
  pair.params.replay_window = window;
  pair.params.lifetime = lifetime;
  const uint8_t zero[16] = {};
  pair.params.local_ts = {AddressRange::Prefix(zero, false, 0),
                          AddressRange::Prefix(zero, true, 0)};
  pair.params.remote_ts = {AddressRange::Prefix(kClientVip, false, 32),
                           AddressRange::Prefix(kClientVip6, true, 128)};
  auto keys = MakeTestKeys(algorithms, seed);
  if (!keys.ok()) std::abort();
  pair.keys = *keys;
  auto gateway = EspSa::Create(pair.params, pair.keys.view());
  SaParams mirror = MirrorParams(pair.params);
  mirror.lifetime = {};
  auto client = EspSa::Create(mirror, pair.keys.mirrored());
  if (!gateway.ok() || !client.ok()) std::abort();
  pair.gateway = *gateway;
  pair.client = *client;
  return pair;
}

Frame::Frame(const std::vector<uint8_t>& packet)
    : storage(kEspHeadroom + packet.size() + kEspTailroom) {
  std::copy(packet.begin(), packet.end(), storage.begin() + kEspHeadroom);
}

std::vector<uint8_t> Protect(EspSa& sender, const std::vector<uint8_t>& inner) {
  Frame frame(inner);
  Encapsulated out;
  if (Encapsulate(sender, frame.inner(), inner.size(), &out) != DropReason::kNone) return {};
  return std::vector<uint8_t>(out.esp, out.esp + out.size);
}

}  // namespace vpn::forwarder::esp::testing
