// CREATE_CHILD_SA requests from the client (RFC 7296 §1.3): a new CHILD SA,
// a CHILD SA rekey (N(REKEY_SA)), and an IKE SA rekey. The gateway never
// starts a rekey itself, so the collisions of §2.8.1/§2.8.2 cannot arise.
#pragma once

#include <vector>

#include "ike-service/codec/payloads.h"
#include "ike-service/exchange/exchange_result.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/sa/ike_sa.h"

namespace vpn::ike {

ExchangeResult HandleCreateChildSa(IkeSa& sa, const std::vector<codec::Payload>& request,
                                   const ResponderPolicy& policy);

// A fresh CHILD SA SPI (256 and up; RFC 4303 §2.1).
uint32_t RandomChildSpi();

}  // namespace vpn::ike
