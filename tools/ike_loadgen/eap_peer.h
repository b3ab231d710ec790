// The client side of EAP-Identity and EAP-MSCHAPv2 (RFC 3748, RFC 2759 inside
// EAP as draft-kamath-pppext-eap-mschapv2 describes it): enough for a load
// generator. The MSCHAPv2 math is common/crypto/mschapv2.h.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/crypto.h"

namespace vpn::loadgen {

class EapMsChapV2Peer {
 public:
  EapMsChapV2Peer(std::string identity, std::string password);

  // What to do with one EAP packet from the server.
  struct Step {
    enum class Kind {
      kRespond,  // send `response`
      kSuccess,  // EAP-Success after a verified MSCHAPv2 Success: msk() is ready
      kFailure,  // EAP-Failure or an MSCHAPv2 Failure request; see `reason`
    };
    Kind kind = Kind::kRespond;
    crypto::Bytes response;
    std::string reason;
  };

  // Answers Identity and MSCHAPv2 Challenge/Success/Failure requests, and
  // checks the server's authenticator response (S=...). Malformed or
  // unexpected packets are errors.
  absl::StatusOr<Step> Process(crypto::ByteSpan packet);

  // The 64-byte MSK (RFC 3079 via mschapv2::DeriveMsk); empty before success.
  const crypto::SecretBytes& msk() const { return msk_; }

 private:
  absl::StatusOr<Step> ProcessMsChapV2(uint8_t identifier, crypto::ByteSpan data);

  const std::string identity_;
  crypto::SecretBytes password_hash_;
  crypto::Bytes nt_response_;
  std::string expected_authenticator_response_;  // "S=<40 hex>"
  bool server_verified_ = false;
  crypto::SecretBytes msk_;
};

// EAP packet builders, shared with the tests.
crypto::Bytes EapPacket(uint8_t code, uint8_t identifier, uint8_t type, crypto::ByteSpan type_data);

}  // namespace vpn::loadgen
