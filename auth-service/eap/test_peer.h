// A minimal EAP-MSCHAPv2 peer (client) for tests, written from RFC 2759 and
// draft-kamath-pppext-eap-mschapv2 on the crypto/mschapv2 primitives.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "auth-service/eap/eap_packet.h"
#include "common/crypto/crypto.h"

namespace vpn::auth::eap::testing {

class TestPeer {
 public:
  // `name` goes in the MSCHAPv2 Response ("DOMAIN\user" allowed);
  // `peer_challenge` is random when empty.
  TestPeer(std::string identity, std::string name, std::string password,
           Bytes peer_challenge = {});

  // Answers one EAP-Request. Fails on a malformed request or on a Success
  // request whose authenticator response does not verify.
  absl::StatusOr<Bytes> Answer(ByteSpan request);

  // Answer R=1 Failure requests with a new Response (else a Failure response).
  void set_retry_with_password(std::string password) {
    retry_password_ = std::move(password);
  }

  const Bytes& nt_response() const { return nt_response_; }
  const std::string& authenticator_response() const { return auth_response_; }
  const std::string& failure_message() const { return failure_message_; }
  bool server_authenticated() const { return server_authenticated_; }

 private:
  absl::StatusOr<Bytes> Respond(uint8_t identifier, uint8_t ms_chapv2_id,
                                ByteSpan challenge);

  const std::string identity_;
  const std::string name_;
  std::string password_;
  Bytes peer_challenge_;
  std::string retry_password_;
  Bytes challenge_;
  Bytes nt_response_;
  std::string auth_response_;
  std::string failure_message_;
  bool server_authenticated_ = false;
};

}  // namespace vpn::auth::eap::testing
