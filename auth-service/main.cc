#include "auth-service/auth_component.h"
#include "common/rpc/service_main.h"

int main(int argc, char** argv) {
  vpn::auth::AuthServiceConfig config;
  vpn::rpc::ServiceDefinition service;
  service.name = "auth-service";
  service.default_grpc_listen = "0.0.0.0:50052";
  service.default_metrics_listen = "0.0.0.0:9102";
  service.read_config = [&](vpn::config::ConfigReader& reader) {
    vpn::auth::ReadAuthServiceConfig(reader, &config);
  };
  service.create = [&](const vpn::rpc::ServerOptions& server,
                        prometheus::Registry& registry)
      -> absl::StatusOr<std::unique_ptr<vpn::rpc::Component>> {
    config.server = server;
    return vpn::auth::AuthComponent::Create(config, registry);
  };
  return vpn::rpc::RunServiceMain(argc, argv, service);
}
