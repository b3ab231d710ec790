// `gateway`: all four services in one process, for a single machine and for
// a newcomer's first run. Each component keeps its own gRPC server, exactly
// as when it runs alone; they share one /metrics endpoint.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "auth-service/auth_component.h"
#include "common/config/config_reader.h"
#include "common/rpc/metrics.h"
#include "common/rpc/service_host.h"
#include "common/store/store_handle.h"
#include "esp-forwarder/forwarder_component.h"
#include "ike-service/ike_component.h"
#include "mobility-service/mobility_component.h"

namespace vpn::gateway {

struct GatewayConfig {
  std::string metrics_listen = "0.0.0.0:9100";
  store::StoreConfig store;  // one store for all four components
  auth::AuthServiceConfig auth;
  mobility::MobilityServiceConfig mobility;
  forwarder::ForwarderConfig forwarder;
  ike::IkeServiceConfig ike;
};

// Defaults: the services on 127.0.0.1:50051..50054. The file has sections
// auth_service, mobility_service, esp_forwarder and ike_service, each with
// the fields of that service's own config file.
GatewayConfig DefaultGatewayConfig();
void ReadGatewayConfig(config::ConfigReader& reader, GatewayConfig* out);

class Gateway {
 public:
  // Starts auth, mobility and the forwarder, then ike-service pointed at them.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(GatewayConfig config);
  ~Gateway();

  // The four components' gRPC ports, by service name.
  std::vector<std::pair<std::string, int>> ports() const;
  int metrics_port() const { return metrics_->port(); }

  void Stop();

 private:
  Gateway() = default;
  absl::Status StartOne(const std::string& name, const rpc::ServerOptions& options,
                        std::unique_ptr<rpc::Component> component);

  std::unique_ptr<rpc::MetricsEndpoint> metrics_;
  store::StoreHandle store_;
  struct Running {
    std::string name;
    std::unique_ptr<rpc::Component> component;
    std::unique_ptr<rpc::ServiceHost> host;
  };
  std::vector<Running> running_;  // in start order; stopped in reverse
};

}  // namespace vpn::gateway
