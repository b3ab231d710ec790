#include "esp-forwarder/forwarder_component.h"

namespace vpn::forwarder {

void ReadForwarderConfig(config::ConfigReader& reader, ForwarderConfig* out) {
  reader.HostPort("ike_listen", &out->ike_listen);
  reader.HostPort("natt_listen", &out->natt_listen);
}

absl::StatusOr<std::unique_ptr<ForwarderComponent>> ForwarderComponent::Create(
    const ForwarderConfig& config) {
  return std::unique_ptr<ForwarderComponent>(new ForwarderComponent(config));
}

}  // namespace vpn::forwarder
