#include "esp-forwarder/forwarder_component.h"
#include "common/rpc/service_main.h"

int main(int argc, char** argv) {
  vpn::forwarder::ForwarderConfig config;
  vpn::rpc::ServiceDefinition service;
  service.name = "esp-forwarder";
  service.default_grpc_listen = "0.0.0.0:50054";
  service.default_metrics_listen = "0.0.0.0:9104";
  service.read_config = [&](vpn::config::ConfigReader& reader) {
    vpn::forwarder::ReadForwarderConfig(reader, &config);
  };
  service.create = [&](const vpn::rpc::ServerOptions& server,
                        prometheus::Registry& registry)
      -> absl::StatusOr<std::unique_ptr<vpn::rpc::Component>> {
    config.server = server;
    return vpn::forwarder::ForwarderComponent::Create(config, registry);
  };
  return vpn::rpc::RunServiceMain(argc, argv, service);
}
