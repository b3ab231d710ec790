// IKE_SA_INIT (RFC 7296 §1.2): proposal choice, the key exchange, nonces,
// NAT detection, cookies, and SKEYSEED.
#pragma once

#include <memory>

#include "ike-service/codec/message.h"
#include "ike-service/exchange/cookies.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/sa/ike_sa.h"

namespace vpn::ike {

struct IkeSaInitResult {
  codec::Message response;     // sent unprotected
  std::unique_ptr<IkeSa> sa;   // the new half-open SA; null after an error reply
  std::string error;           // why no SA, for the log
};

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
