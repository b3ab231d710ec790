#include "ike-service/ike_component.h"

#include <unistd.h>

namespace vpn::ike {

void ReadIkeServiceConfig(config::ConfigReader& reader, IkeServiceConfig* out) {
  if (out->replica.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    out->replica = host;
  }
  reader.String("replica", &out->replica);
  if (out->replica.empty()) reader.Fail("replica", "must not be empty");
  reader.HostPort("auth_service", &out->auth_service);
  reader.HostPort("mobility_service", &out->mobility_service);
  reader.HostPortList("forwarders", &out->forwarders);
}

absl::StatusOr<std::unique_ptr<IkeComponent>> IkeComponent::Create(
    const IkeServiceConfig& config, prometheus::Registry& registry) {
  (void)registry;
  return std::unique_ptr<IkeComponent>(new IkeComponent(config));
}

}  // namespace vpn::ike
