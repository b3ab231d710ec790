// Writes ChildSa records with sealed keys and a path tag exactly as
// ike-service's SaRecorder does (under store::ChildSaKey of the inbound SPI;
// inbound = client -> gateway keys), for tests, the netns data-plane test and the load
// generator, which play ike-service with keys they choose.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/net/ip_endpoint.h"
#include "common/store/sealer.h"
#include "common/store/store.h"
#include "esp-forwarder/esp/suites.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn::forwarder {

struct ChildSaSpec {
  uint32_t inbound_spi = 0;
  uint32_t outbound_spi = 0;
  esp::EspAlgorithms algorithms;
  esp::TestKeys keys;           // the gateway's view
  net::IpEndpoint local;        // gateway address (port 4500 or 0)
  net::IpEndpoint remote;       // client address and NAT-T port
  bool udp = true;
  bool remote_behind_nat = false;
  uint64_t ike_spi_i = 0, ike_spi_r = 0;  // the IKE SA the path tag names
  uint64_t path_generation = 1;           // of the path tag (PathAuth)
  std::vector<std::string> remote_cidrs = {"10.10.0.2/32"};  // client VIP(s)
  std::vector<std::string> local_cidrs = {"0.0.0.0/0", "::/0"};
  uint32_t replay_window = 0;
  uint64_t soft_bytes = 0, hard_bytes = 0;
  uint32_t soft_seconds = 0, hard_seconds = 0;
};

absl::StatusOr<v1::ChildSa> MakeChildSaRecord(const store::Sealer& sealer,
                                              const ChildSaSpec& spec);
// Writes (creates or overwrites) the record.
absl::Status PutChildSa(store::Store& store, const store::Sealer& sealer,
                        const ChildSaSpec& spec);

}  // namespace vpn::forwarder
