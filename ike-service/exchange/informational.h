// INFORMATIONAL requests from the client (RFC 7296 §1.4): deletes, error
// notifies and liveness checks.
#pragma once

#include <vector>

#include "ike-service/codec/payloads.h"
#include "ike-service/exchange/exchange_result.h"
#include "ike-service/sa/ike_sa.h"

namespace vpn::ike {

ExchangeResult HandleInformational(IkeSa& sa, const std::vector<codec::Payload>& request);

}  // namespace vpn::ike
