// mobility-service: tracks where each client is, applies address changes and
// keeps SAs through outages (the Mobility Manager, tracker/), over the SA
// records in the shared store.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "common/store/store_handle.h"
#include "mobility-service/mobility_service_impl.h"
#include "mobility-service/tracker/mobility_manager.h"
#include "prometheus/registry.h"

namespace vpn::mobility {

struct MobilityServiceConfig {
  rpc::ServerOptions server;
  // How long a silent client's SA is kept (Windows VPN Reconnect: 30 min).
  absl::Duration outage_window = absl::Minutes(30);
  // Silence after which an SA is marked DORMANT.
  absl::Duration liveness_timeout = absl::Minutes(2);
  // How often a newer last_seen is written to the store.
  absl::Duration liveness_persist_interval = absl::Seconds(30);
  // Path history entries kept per SA.
  uint64_t path_history = 16;
  // `store` (and `store_key_file`, read for a shared config but unused:
  // this service never opens sealed keys).
  store::StoreConfig store;
  // Set by `gateway` to share its store; otherwise `store` is opened.
  absl::optional<store::StoreHandle> shared_store;
};

void ReadMobilityServiceConfig(config::ConfigReader& reader,
                               MobilityServiceConfig* out);

class MobilityComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<MobilityComponent>> Create(
      const MobilityServiceConfig& config, prometheus::Registry& registry);
  ~MobilityComponent() override;

  std::vector<grpc::Service*> services() override { return {service_.get()}; }
  void Stop() override;
  // For `gateway`, which calls it directly.
  v1::Mobility::Service* mobility_service() { return service_.get(); }

 private:
  MobilityComponent() = default;

  std::shared_ptr<store::Store> store_;
  std::unique_ptr<MobilityManager> manager_;
  std::unique_ptr<MobilityServiceImpl> service_;
};

}  // namespace vpn::mobility
