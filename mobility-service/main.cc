#include "mobility-service/mobility_component.h"
#include "common/rpc/service_main.h"

int main(int argc, char** argv) {
  vpn::mobility::MobilityServiceConfig config;
  vpn::rpc::ServiceDefinition service;
  service.name = "mobility-service";
  service.default_grpc_listen = "0.0.0.0:50053";
  service.default_metrics_listen = "0.0.0.0:9103";
  service.read_config = [&](vpn::config::ConfigReader& reader) {
    vpn::mobility::ReadMobilityServiceConfig(reader, &config);
  };
  service.create = [&](const vpn::rpc::ServerOptions& server,
                        prometheus::Registry& registry)
      -> absl::StatusOr<std::unique_ptr<vpn::rpc::Component>> {
    config.server = server;
    return vpn::mobility::MobilityComponent::Create(config, registry);
  };
  return vpn::rpc::RunServiceMain(argc, argv, service);
}
