// The server side of a pluggable EAP authentication method (EAP-MSCHAPv2
// today; EAP-TLS can follow). An EapSession runs EAP-Identity, then hands
// the conversation to one Method.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "auth-service/eap/eap_packet.h"
#include "common/crypto/crypto.h"

namespace vpn::auth::eap {

class Method {
 public:
  // What to do after a peer's response.
  struct Step {
    enum class Kind { kContinue, kSuccess, kFailure };
    Kind kind = Kind::kFailure;
    Bytes request;            // kContinue: the next EAP-Request
    crypto::SecretBytes msk;  // kSuccess: the 64-byte MSK
    std::string identity;     // kSuccess: the authenticated user name
    std::string reason;       // kFailure: why, for logs (no secrets)
  };

  virtual ~Method() = default;
  virtual uint8_t type() const = 0;
  // The method's first EAP-Request, with EAP identifier `identifier`.
  virtual absl::StatusOr<Bytes> Initiate(uint8_t identifier) = 0;
  // A response of type() whose identifier matches the last request. A
  // further request must use `next_identifier`. An error status means the
  // response was malformed or unexpected; the session then fails.
  virtual absl::StatusOr<Step> Process(const Packet& response,
                                       uint8_t next_identifier) = 0;
};

// The peer a method is created for, as IKE and EAP-Identity saw it.
struct PeerInfo {
  absl::string_view identity;  // its answer to EAP-Identity
  ByteSpan address;            // its IP address (4 or 16 bytes); may be empty
};

// Creates the method for a peer that answered EAP-Identity.
using MethodFactory = std::function<std::unique_ptr<Method>(const PeerInfo& peer)>;

// Brute-force protection for methods that check a password: asked before a
// credential is checked, told the outcome after. Thread-safe.
class AttemptLimiter {
 public:
  enum class Outcome {
    kSuccess,     // the credential verified
    kFailure,     // it did not (wrong password, unknown or disabled user)
    kNotChecked,  // no verdict (e.g. the user store failed)
  };

  virtual ~AttemptLimiter() = default;
  // False refuses the attempt: the method then fails it exactly as it fails
  // a wrong password, without looking up or checking the credential. `user`
  // is the user name without its domain; `address` as in PeerInfo. Every
  // true must be followed by one Finish with the same arguments.
  virtual bool Begin(absl::string_view user, ByteSpan address) = 0;
  virtual void Finish(absl::string_view user, ByteSpan address,
                      Outcome outcome) = 0;
};

// Where EAP methods find user credentials.
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  // The 16-byte NT hash (MD4 of the UTF-16LE password) of an enabled user;
  // kNotFound when the user is unknown or disabled.
  virtual absl::StatusOr<crypto::SecretBytes> NtHash(absl::string_view user) = 0;
};

}  // namespace vpn::auth::eap
