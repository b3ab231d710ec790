// EAP-MSCHAPv2 (EAP type 26), authenticator side: RFC 2759 inside EAP as
// draft-kamath-pppext-eap-mschapv2 and [MS-CHAP] §3.3 describe it.
//
//   server                                   peer
//   Challenge (16-byte challenge, name)  ->
//                                        <-  Response (peer challenge,
//                                            NT-Response, user name)
//   Success request "S=<40 hex> M=..."   ->  (NT-Response verified)
//                                        <-  Success response (OpCode only)
//   -> kSuccess: EAP-Success, MSK
//
// A wrong password (or an unknown or disabled user, indistinguishably) gets
// a Failure request "E=691 R=1 C=<new challenge> V=3 M=..." while retries
// remain; the peer may answer with a new Response or give up with a Failure
// response. Once no retries remain the method fails at once (the session
// sends EAP-Failure), as strongSwan's server does, because Windows and
// strongSwan peers do not answer an R=0 Failure request ([MS-CHAP]
// §3.2.5.4: the peer SHOULD just fail). With `failure_request` set it sends
// the R=0 Failure request instead and fails on the peer's Failure response.
//
// With a `limiter`, each Response is an attempt: a refused one takes the
// wrong-password path above without any credential lookup or crypto, so the
// peer cannot tell a locked-out user from a wrong password.
#pragma once

#include <functional>
#include <string>

#include "absl/types/span.h"
#include "auth-service/eap/eap_method.h"
#include "common/crypto/crypto.h"

namespace vpn::auth::eap {

struct MsChapV2Options {
  std::string server_name = "vpn-gateway";  // the Challenge's Name field
  int retries = 0;               // R=1 Failure requests after a wrong password
  bool failure_request = false;  // end with an R=0 Failure request
  // Fills authenticator challenges; the provider's RNG when unset. A test
  // hook (RFC 2759 §9.2 vectors).
  std::function<void(absl::Span<uint8_t>)> random;
  // Brute-force protection; none when null. Must outlive the method.
  AttemptLimiter* limiter = nullptr;
};

class MsChapV2Server : public Method {
 public:
  // `credentials` must outlive the method. `peer_address` (4 or 16 bytes,
  // or empty) is what attempts are counted against besides the user name.
  MsChapV2Server(const crypto::Provider& provider,
                 CredentialSource& credentials, MsChapV2Options options,
                 ByteSpan peer_address = {});

  uint8_t type() const override { return type::kMsChapV2; }
  absl::StatusOr<Bytes> Initiate(uint8_t identifier) override;
  absl::StatusOr<Step> Process(const Packet& response,
                               uint8_t next_identifier) override;

  // The user part of "DOMAIN\user" (RFC 2759 §4: the challenge hash uses
  // the name without its domain).
  static absl::string_view UserPart(absl::string_view name);

 private:
  enum class State {
    kIdle,
    kExpectResponse,    // Challenge or R=1 Failure request sent
    kExpectSuccessAck,  // Success request sent
    kExpectFailureAck,  // R=0 Failure request sent
  };

  absl::StatusOr<Step> ProcessResponse(const Response& response,
                                       uint8_t next_identifier);
  // A wrong password (or a refused attempt): a retry while retries remain,
  // else the end of the method.
  Step Reject(std::string reason, uint8_t ms_chapv2_id,
              uint8_t next_identifier);
  Step Fail(std::string reason);
  void NewChallenge();
  std::string FailureMessage(bool retry) const;

  const crypto::Provider& provider_;
  CredentialSource& credentials_;
  const MsChapV2Options options_;
  const Bytes peer_address_;
  State state_ = State::kIdle;
  uint8_t ms_chapv2_id_ = 0;
  Bytes challenge_;
  int retries_left_;
  crypto::SecretBytes msk_;
  std::string user_;
};

}  // namespace vpn::auth::eap
