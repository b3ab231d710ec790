#include "ike-service/exchange/nat_detection.h"

namespace vpn::ike {

crypto::Bytes NatDetectionHash(uint64_t spi_i, uint64_t spi_r,
                               const net::IpEndpoint& endpoint) {
  crypto::Bytes spis(16);
  for (int k = 0; k < 8; ++k) {
    spis[k] = static_cast<uint8_t>(spi_i >> (56 - 8 * k));
    spis[8 + k] = static_cast<uint8_t>(spi_r >> (56 - 8 * k));
  }
  const uint8_t port[2] = {static_cast<uint8_t>(endpoint.port() >> 8),
                           static_cast<uint8_t>(endpoint.port())};
  const crypto::ByteSpan parts[] = {spis, endpoint.address_bytes(), port};
  return crypto::GetProvider().Hash(crypto::HashAlgorithm::kSha1, parts);
}

}  // namespace vpn::ike
