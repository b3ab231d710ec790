// INFORMATIONAL requests from the client (RFC 7296 §1.4): deletes, error
// notifies, liveness checks, and MOBIKE address updates (RFC 4555 §3.5).
#pragma once

#include <vector>

#include "common/net/ip_endpoint.h"
#include "ike-service/codec/payloads.h"
#include "ike-service/exchange/exchange_result.h"
#include "ike-service/sa/ike_sa.h"

namespace vpn::ike {

// Where an authenticated request came from and arrived at.
struct RequestPath {
  net::IpEndpoint local;
  net::IpEndpoint remote;
  bool udp_encapsulated = false;
  size_t forwarder = 0;
};

ExchangeResult HandleInformational(IkeSa& sa, const std::vector<codec::Payload>& request,
                                   const RequestPath& path);

}  // namespace vpn::ike
