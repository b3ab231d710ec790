// auth-service: EAP and certificate authentication. The only component that
// holds user credentials and the gateway's private key.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "prometheus/registry.h"

namespace vpn::auth {

struct AuthServiceConfig {
  rpc::ServerOptions server;
};

void ReadAuthServiceConfig(config::ConfigReader& reader, AuthServiceConfig* out);

class AuthComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<AuthComponent>> Create(
      const AuthServiceConfig& config, prometheus::Registry& registry);

  std::vector<grpc::Service*> services() override { return {}; }

 private:
  explicit AuthComponent(AuthServiceConfig config) : config_(std::move(config)) {}

  AuthServiceConfig config_;
};

}  // namespace vpn::auth
