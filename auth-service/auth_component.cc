#include "auth-service/auth_component.h"

namespace vpn::auth {

void ReadAuthServiceConfig(config::ConfigReader& reader, AuthServiceConfig* out) {
  // auth-service has only the `server` section so far; credentials and the
  // gateway key arrive with EAP and certificate authentication.
  (void)reader;
  (void)out;
}

absl::StatusOr<std::unique_ptr<AuthComponent>> AuthComponent::Create(
    const AuthServiceConfig& config, prometheus::Registry& registry) {
  (void)registry;
  return std::unique_ptr<AuthComponent>(new AuthComponent(config));
}

}  // namespace vpn::auth
