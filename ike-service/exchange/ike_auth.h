// IKE_AUTH (RFC 7296 §1.2, §2.15, §2.16): the gateway's certificate
// signature, the client's EAP rounds or certificate, the configuration
// payload and the first CHILD SA.
#pragma once

#include <string>
#include <vector>

#include "ike-service/auth_client/authenticator.h"
#include "ike-service/codec/payloads.h"
#include "ike-service/exchange/exchange_result.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/pool/address_pool.h"
#include "ike-service/sa/ike_sa.h"

namespace vpn::ike {

struct AuthServices {
  Authenticator* authenticator = nullptr;
  AddressPool* pool_v4 = nullptr;  // null: no IPv4 virtual addresses
  AddressPool* pool_v6 = nullptr;
};

// Handles one IKE_AUTH request on `sa` (locked by the caller).
ExchangeResult HandleIkeAuth(IkeSa& sa, const std::vector<codec::Payload>& request,
                             const ResponderPolicy& policy, const AuthServices& services);

}  // namespace vpn::ike
