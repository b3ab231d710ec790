#include "ike-service/ike_component.h"
#include "common/rpc/service_main.h"

int main(int argc, char** argv) {
  vpn::ike::IkeServiceConfig config;
  vpn::rpc::ServiceDefinition service;
  service.name = "ike-service";
  service.default_grpc_listen = "0.0.0.0:50051";
  service.default_metrics_listen = "0.0.0.0:9101";
  service.read_config = [&](vpn::config::ConfigReader& reader) {
    vpn::ike::ReadIkeServiceConfig(reader, &config);
  };
  service.create = [&](const vpn::rpc::ServerOptions& server,
                        prometheus::Registry& registry)
      -> absl::StatusOr<std::unique_ptr<vpn::rpc::Component>> {
    config.server = server;
    return vpn::ike::IkeComponent::Create(config, registry);
  };
  return vpn::rpc::RunServiceMain(argc, argv, service);
}
