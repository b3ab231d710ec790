// mobility-service: tracks where each client is, applies address changes and
// keeps SAs through outages.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "prometheus/registry.h"

namespace vpn::mobility {

struct MobilityServiceConfig {
  rpc::ServerOptions server;
  // How long a silent client's SA is kept (Windows VPN Reconnect: 30 min).
  absl::Duration outage_window = absl::Minutes(30);
};

void ReadMobilityServiceConfig(config::ConfigReader& reader,
                               MobilityServiceConfig* out);

class MobilityComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<MobilityComponent>> Create(
      const MobilityServiceConfig& config, prometheus::Registry& registry);

  std::vector<grpc::Service*> services() override { return {}; }

 private:
  explicit MobilityComponent(MobilityServiceConfig config)
      : config_(std::move(config)) {}

  MobilityServiceConfig config_;
};

}  // namespace vpn::mobility
