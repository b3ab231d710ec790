// `gateway`: all four services in one process, for a single machine and for
// a newcomer's first run. The components call each other directly; none of
// their internal APIs is served. One gRPC server carries what an operator
// uses (Management, the user calls of Auth, the forwarder's counters) on a
// Unix socket only root can open, or with mTLS when `server.tls` is set;
// one /metrics endpoint serves all four.
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
  // The operator's API: grpc_listen, tls, insecure_plaintext.
  rpc::ServerOptions server;
  store::StoreConfig store;  // one store for all four components
  auth::AuthServiceConfig auth;
  mobility::MobilityServiceConfig mobility;
  forwarder::ForwarderConfig forwarder;
  ike::IkeServiceConfig ike;
};

// The operator's API listens on unix:/run/vpn-gateway/gateway.sock by
// default. The file has a top-level `server` (grpc_listen, tls,
// insecure_plaintext) and sections auth_service, mobility_service,
// esp_forwarder and ike_service, each with the fields of that service's own
// config file except `server`.
GatewayConfig DefaultGatewayConfig();
void ReadGatewayConfig(config::ConfigReader& reader, GatewayConfig* out);

class Gateway {
 public:
  // Starts auth, mobility and the forwarder, then ike-service pointed at them.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(GatewayConfig config);
  ~Gateway();

  int metrics_port() const { return metrics_->port(); }

  void Stop();

 private:
  Gateway() = default;

  std::unique_ptr<rpc::MetricsEndpoint> metrics_;
  store::StoreHandle store_;
  std::unique_ptr<rpc::ServiceHost> operator_api_;
  // Started in this order; stopped in reverse.
  std::unique_ptr<auth::AuthComponent> auth_;
  std::unique_ptr<mobility::MobilityComponent> mobility_;
  std::unique_ptr<forwarder::ForwarderComponent> forwarder_;
  std::unique_ptr<ike::IkeComponent> ike_;
};

// The operator's API socket when the config names none.
inline constexpr char kDefaultOperatorSocket[] = "unix:/run/vpn-gateway/gateway.sock";

}  // namespace vpn::gateway
