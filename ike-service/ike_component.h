// ike-service: the IKEv2 responder (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA,
// INFORMATIONAL, MOBIKE). Unprivileged; runs as several replicas.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "prometheus/registry.h"

namespace vpn::ike {

struct IkeServiceConfig {
  rpc::ServerOptions server;
  std::string replica;                      // defaults to the host name
  std::string auth_service = "auth-service:50052";
  std::string mobility_service = "mobility-service:50053";
  std::vector<std::string> forwarders = {"esp-forwarder:50054"};
};

void ReadIkeServiceConfig(config::ConfigReader& reader, IkeServiceConfig* out);

class IkeComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<IkeComponent>> Create(
      const IkeServiceConfig& config, prometheus::Registry& registry);

  std::vector<grpc::Service*> services() override { return {}; }

 private:
  explicit IkeComponent(IkeServiceConfig config) : config_(std::move(config)) {}

  IkeServiceConfig config_;
};

}  // namespace vpn::ike
