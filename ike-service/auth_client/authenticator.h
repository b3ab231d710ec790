// What ike-service asks of auth-service. An interface so exchange handlers
// can be tested without a server; GrpcAuthenticator is the real one.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/rpc/server_options.h"
#include "proto/vpn/v1/auth.grpc.pb.h"

namespace vpn::ike {

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual absl::StatusOr<v1::EapReply> EapStart(const v1::EapStartRequest& request) = 0;
  virtual absl::StatusOr<v1::EapReply> EapRound(const v1::EapRoundRequest& request) = 0;
  virtual absl::StatusOr<v1::SignReply> Sign(const v1::SignRequest& request) = 0;
  virtual absl::StatusOr<v1::ValidateCertificateReply> ValidateCertificate(
      const v1::ValidateCertificateRequest& request) = 0;
  virtual absl::StatusOr<v1::GatewayCertificateReply> GatewayCertificate() = 0;
};

// Calls an auth-service implementation in this process (`gateway`).
std::unique_ptr<Authenticator> NewInProcessAuthenticator(v1::Auth::Service* service);

// Calls auth-service at `target` with a per-call deadline.
absl::StatusOr<std::unique_ptr<Authenticator>> NewGrpcAuthenticator(
    const std::string& target, const rpc::TlsFiles& tls);

}  // namespace vpn::ike
