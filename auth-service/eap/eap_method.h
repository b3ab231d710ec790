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

// Creates the method for a peer that answered EAP-Identity with `identity`.
using MethodFactory =
    std::function<std::unique_ptr<Method>(absl::string_view identity)>;

// Where EAP methods find user credentials.
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  // The 16-byte NT hash (MD4 of the UTF-16LE password) of an enabled user;
  // kNotFound when the user is unknown or disabled.
  virtual absl::StatusOr<crypto::SecretBytes> NtHash(absl::string_view user) = 0;
};

}  // namespace vpn::auth::eap
