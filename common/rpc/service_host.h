// Runs one component's gRPC server with what every service must have:
// grpc.health.v1, server reflection, request metrics, mTLS, and the
// authorization table checked on every call (common/rpc/authorization.h).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/log/log.h"
#include "common/rpc/credentials.h"
#include "common/rpc/metrics.h"
#include "common/rpc/server_options.h"
#include "grpcpp/grpcpp.h"

namespace vpn::rpc {

class ServiceHost {
 public:
  // Builds and starts the server. `services` must outlive the host. A
  // unix:/path listener is created mode 0600. Who may call what without a
  // certificate: a Unix socket's callers hold the operator role; with
  // insecure_plaintext every role; otherwise only health checks.
  static absl::StatusOr<std::unique_ptr<ServiceHost>> Start(
      const std::string& component, const ServerOptions& options,
      const std::vector<grpc::Service*>& services, MetricsEndpoint& metrics);

  ~ServiceHost();

  int port() const { return port_; }
  // The health-only listener's port (server.health_listen), or 0.
  int health_port() const { return health_port_; }

  // Reports NOT_SERVING, then lets in-flight RPCs finish for up to `grace`.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

 private:
  ServiceHost(std::unique_ptr<grpc::Server> server, int port, std::string component)
      : server_(std::move(server)), port_(port), log_(std::move(component)) {}
  void WarnInsecureEveryMinute();

  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;  // plaintext, health only
  int health_port_ = 0;
  absl::Notification stopping_;
  std::thread insecure_warning_;
  int port_;
  log::Logger log_;
  bool shut_down_ = false;
};

}  // namespace vpn::rpc
