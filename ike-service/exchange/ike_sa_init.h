// IKE_SA_INIT (RFC 7296 §1.2): proposal choice, the key exchange, nonces,
// NAT detection, cookies, and SKEYSEED.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/types/optional.h"
#include "ike-service/codec/message.h"
#include "ike-service/exchange/cookies.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/sa/ike_sa.h"

namespace vpn::ike {

struct IkeSaInitResult {
  codec::Message response;     // sent unprotected, unless `drop`
  std::unique_ptr<IkeSa> sa;   // the new half-open SA; null after an error reply
  std::string error;           // why no SA, for the log
  // A request RFC 7296 lets no unprotected error answer (3.10.1: INVALID_SYNTAX
  // only protected): sent nothing, counted by `refusal`.
  bool drop = false;
  std::string refusal;         // a metric label: short, fixed per cause
};

// Why `request` (an IKE_SA_INIT) is malformed beyond what the codec checks,
// as (metric label, detail); nullopt if it is not: SPIi zero (3.1), no
// Initiator flag or a message ID other than 0 (3.1, 1.2), other than one SA,
// KE and Nonce, or a payload IKE_SA_INIT does not carry (1.2: SK, IDi,
// AUTH, ...).
absl::optional<std::pair<std::string, std::string>> MalformedIkeSaInit(
    const codec::Message& request);

// Answers one IKE_SA_INIT request. `raw_request` is the datagram as
// received (it is signed in IKE_AUTH). With `cookies` set, the request must
// carry a valid COOKIE or is answered with one. The response carries a
// CERTREQ naming `certificate_authorities` (SHA-1 hashes of CA keys), so
// clients that send their certificate only when asked send it.
IkeSaInitResult HandleIkeSaInit(const codec::Message& request,
                                crypto::ByteSpan raw_request,
                                const net::IpEndpoint& local,
                                const net::IpEndpoint& remote,
                                const ResponderPolicy& policy, CookieJar* cookies,
                                crypto::ByteSpan certificate_authorities = {});

// An unprotected reply carrying one notify, for IKE_SA_INIT errors.
codec::Message NotifyResponse(const codec::Header& request_header,
                              codec::NotifyType type, codec::Bytes data = {});

}  // namespace vpn::ike
