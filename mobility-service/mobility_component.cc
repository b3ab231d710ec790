#include "mobility-service/mobility_component.h"

namespace vpn::mobility {

void ReadMobilityServiceConfig(config::ConfigReader& reader,
                               MobilityServiceConfig* out) {
  reader.Duration("outage_window", &out->outage_window);
  if (out->outage_window < absl::Seconds(10)) {
    reader.Fail("outage_window", "must be at least 10s");
  }
}

absl::StatusOr<std::unique_ptr<MobilityComponent>> MobilityComponent::Create(
    const MobilityServiceConfig& config, prometheus::Registry& registry) {
  (void)registry;
  return std::unique_ptr<MobilityComponent>(new MobilityComponent(config));
}

}  // namespace vpn::mobility
