// What the gateway offers and allows, from ike-service's config: the input
// every exchange handler reads.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ike-service/codec/constants.h"
#include "ike-service/codec/payloads.h"
#include "ike-service/exchange/proposals.h"

namespace vpn::ike {

struct ResponderPolicy {
  std::vector<ProposalPolicy> ike_proposals;
  std::vector<ProposalPolicy> esp_proposals;
  // TSr: the networks behind the gateway.
  std::vector<codec::TrafficSelector> local_ts;
  // CP reply attributes: 4- or 16-byte DNS server addresses.
  std::vector<std::string> dns_servers;
  // IDr. Empty data means "the address the client sent to".
  codec::IdType id_type = codec::IdType::kIpv4Addr;
  codec::Bytes id_data;
  // CHILD SA lifetimes the forwarder enforces (the client rekeys first).
  absl::Duration child_soft_lifetime = absl::Minutes(50);
  absl::Duration child_hard_lifetime = absl::Minutes(60);
  uint32_t replay_window = 128;
  // The gateway's other public addresses, offered to MOBIKE clients as
  // ADDITIONAL_IP4/6_ADDRESS (RFC 4555 §3.4); 4- or 16-byte addresses.
  std::vector<std::string> additional_addresses;
};

}  // namespace vpn::ike
