// Who may call what between the services. Each service presents its own
// certificate with its role in a SAN URI (spiffe://vpn-gateway/<role>,
// tools/service-pki.sh); one table maps each RPC method to the roles allowed
// to call it, and one hook in every ServiceHost enforces it before a handler
// runs. docs/architecture.md ("Trust") shows the table.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/log/log.h"
#include "common/rpc/roles.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"

namespace vpn::rpc {

// Every method's grant. `roles` empty: any caller, even one without a
// certificate (health checks only).
struct MethodGrant {
  const char* method;  // "/vpn.v1.Auth/Sign"
  std::vector<const char*> roles;
};
const std::vector<MethodGrant>& AuthorizationTable();

// Whether a caller holding `roles` may call `method`. A method missing from
// the table is denied to everyone.
bool IsAllowed(absl::string_view method, const std::vector<std::string>& roles);

// The role a verified peer certificate names (its spiffe://vpn-gateway/ URI),
// or "" when the peer presented none or another URI.
std::string PeerRole(const grpc::AuthContext& context);

// What callers without a certificate hold. A server with mTLS has none; a
// plaintext server grants either nothing (health only), the operator role
// (gateway's 0600 Unix socket) or every role (`insecure_plaintext: true`).
enum class PlaintextTrust { kNone, kOperator, kEveryRole };

// The hook: gRPC runs it on each call's initial metadata, before the
// handler. A denied call gets PERMISSION_DENIED, a warning naming the method
// and the caller, and grpc_server_denied_total{method,caller}.
class CallerAuthorizer final : public grpc::AuthMetadataProcessor {
 public:
  CallerAuthorizer(std::string component, PlaintextTrust plaintext,
                   prometheus::Family<prometheus::Counter>& denied);

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  const PlaintextTrust plaintext_;
  prometheus::Family<prometheus::Counter>& denied_;
  const log::Logger log_;
};

}  // namespace vpn::rpc
