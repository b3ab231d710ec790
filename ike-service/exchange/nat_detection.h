// NAT detection (RFC 7296 §2.23): SHA-1 of the SPIs and an address.
#pragma once

#include <cstdint>

#include "common/crypto/crypto.h"
#include "common/net/ip_endpoint.h"

namespace vpn::ike {

// SHA1(SPIi | SPIr | IP | Port), the data of NAT_DETECTION_*_IP.
crypto::Bytes NatDetectionHash(uint64_t spi_i, uint64_t spi_r,
                               const net::IpEndpoint& endpoint);

}  // namespace vpn::ike
