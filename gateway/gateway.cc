#include "gateway/gateway.h"

#include "absl/strings/str_cat.h"
#include "gateway/local_forwarder_link.h"

namespace vpn::gateway {

GatewayConfig DefaultGatewayConfig() {
  GatewayConfig config;
  config.ike.server.grpc_listen = "127.0.0.1:50051";
  config.auth.server.grpc_listen = "127.0.0.1:50052";
  config.mobility.server.grpc_listen = "127.0.0.1:50053";
  config.forwarder.server.grpc_listen = "127.0.0.1:50054";
  return config;
}

void ReadGatewayConfig(config::ConfigReader& reader, GatewayConfig* out) {
  std::string metrics = out->metrics_listen;
  reader.String("metrics_listen", &metrics);
  if (!metrics.empty() && metrics != out->metrics_listen) {
    absl::Status valid = config::ValidateHostPort(metrics);
    if (!valid.ok()) reader.Fail("metrics_listen", valid.message());
  }
  out->metrics_listen = metrics;
  store::ReadStoreConfig(reader, &out->store);

  reader.PushSection("auth_service");
  rpc::ReadServerOptions(reader, &out->auth.server);
  auth::ReadAuthServiceConfig(reader, &out->auth);
  reader.PopSection();

  reader.PushSection("mobility_service");
  rpc::ReadServerOptions(reader, &out->mobility.server);
  mobility::ReadMobilityServiceConfig(reader, &out->mobility);
  reader.PopSection();

  reader.PushSection("esp_forwarder");
  rpc::ReadServerOptions(reader, &out->forwarder.server);
  forwarder::ReadForwarderConfig(reader, &out->forwarder);
  reader.PopSection();

  reader.PushSection("ike_service");
  rpc::ReadServerOptions(reader, &out->ike.server);
  ike::ReadIkeServiceConfig(reader, &out->ike);
  reader.PopSection();
  // One store serves all four components: the top-level `store`.
  if (!out->ike.store.store.empty() || !out->ike.store.key_file.empty()) {
    reader.Fail("ike_service.store", "gateway shares one store; set the top-level store");
  }
  if (!out->mobility.store.store.empty() || !out->mobility.store.key_file.empty()) {
    reader.Fail("mobility_service.store", "gateway shares one store; set the top-level store");
  }
  if (!out->forwarder.store.store.empty() || !out->forwarder.store.key_file.empty()) {
    reader.Fail("esp_forwarder.store", "gateway shares one store; set the top-level store");
  }
}

absl::Status Gateway::StartOne(const std::string& name,
                               const rpc::ServerOptions& options,
                               std::unique_ptr<rpc::Component> component) {
  absl::StatusOr<std::unique_ptr<rpc::ServiceHost>> host =
      rpc::ServiceHost::Start(name, options, component->services(), *metrics_);
  if (!host.ok()) return host.status();
  running_.push_back({name, std::move(component), std::move(*host)});
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(GatewayConfig config) {
  std::unique_ptr<Gateway> gateway(new Gateway());
  absl::StatusOr<std::unique_ptr<rpc::MetricsEndpoint>> metrics =
      rpc::MetricsEndpoint::Start(config.metrics_listen);
  if (!metrics.ok()) return metrics.status();
  gateway->metrics_ = std::move(*metrics);
  absl::StatusOr<store::StoreHandle> store = store::OpenStoreHandle(config.store, "gateway");
  if (!store.ok()) return store.status();
  gateway->store_ = std::move(*store);

  absl::StatusOr<std::unique_ptr<auth::AuthComponent>> auth =
      auth::AuthComponent::Create(config.auth, gateway->metrics_->registry());
  if (!auth.ok()) return auth.status();
  if (absl::Status s = gateway->StartOne("auth-service", config.auth.server,
                                         std::move(*auth));
      !s.ok()) {
    return s;
  }
  config.mobility.shared_store = gateway->store_;
  absl::StatusOr<std::unique_ptr<mobility::MobilityComponent>> mobility =
      mobility::MobilityComponent::Create(config.mobility, gateway->metrics_->registry());
  if (!mobility.ok()) return mobility.status();
  if (absl::Status s = gateway->StartOne("mobility-service",
                                         config.mobility.server,
                                         std::move(*mobility));
      !s.ok()) {
    return s;
  }
  config.forwarder.shared_store = gateway->store_;
  v1::Mobility::Service* mobility_service = nullptr;
  for (grpc::Service* service : gateway->running_[1].component->services()) {
    if (auto* m = dynamic_cast<v1::Mobility::Service*>(service)) mobility_service = m;
  }
  // The forwarder tells this process's mobility-service of NAT rebinding and
  // liveness, by direct call; an explicit address (or "", off) in the config
  // is kept.
  if (config.forwarder.mobility_service == forwarder::ForwarderConfig().mobility_service) {
    config.forwarder.local_mobility = mobility_service;
  }
  absl::StatusOr<std::unique_ptr<forwarder::ForwarderComponent>> forwarder =
      forwarder::ForwarderComponent::Create(config.forwarder, gateway->metrics_->registry());
  if (!forwarder.ok()) return forwarder.status();
  if (absl::Status s = gateway->StartOne("esp-forwarder", config.forwarder.server,
                                         std::move(*forwarder));
      !s.ok()) {
    return s;
  }

  // ike-service reaches its peers on this host, on the ports they got.
  config.ike.auth_service =
      absl::StrCat("127.0.0.1:", gateway->running_[0].host->port());
  config.ike.mobility_service =
      absl::StrCat("127.0.0.1:", gateway->running_[1].host->port());
  config.ike.forwarders = {
      absl::StrCat("127.0.0.1:", gateway->running_[2].host->port())};
  config.ike.shared_store = gateway->store_;
  // In one process ike-service calls auth-service and mobility-service
  // directly, not over gRPC.
  for (grpc::Service* service : gateway->running_[0].component->services()) {
    if (auto* auth = dynamic_cast<v1::Auth::Service*>(service)) config.ike.local_auth = auth;
  }
  config.ike.local_mobility = mobility_service;
  // ... and reaches the forwarder's relay directly, not over gRPC.
  for (grpc::Service* service : gateway->running_[2].component->services()) {
    if (auto* relay = dynamic_cast<forwarder::IkeRelay*>(service)) {
      config.ike.local_forwarder = [relay](const std::string& replica,
                                           ike::ForwarderLink::Handler handler) {
        return std::make_unique<LocalForwarderLink>(relay, replica, std::move(handler));
      };
    }
  }
  absl::StatusOr<std::unique_ptr<ike::IkeComponent>> ike =
      ike::IkeComponent::Create(config.ike, gateway->metrics_->registry());
  if (!ike.ok()) return ike.status();
  if (absl::Status s =
          gateway->StartOne("ike-service", config.ike.server, std::move(*ike));
      !s.ok()) {
    return s;
  }
  return gateway;
}

std::vector<std::pair<std::string, int>> Gateway::ports() const {
  std::vector<std::pair<std::string, int>> ports;
  for (const Running& running : running_) {
    ports.emplace_back(running.name, running.host->port());
  }
  return ports;
}

void Gateway::Stop() {
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    it->component->Stop();
    it->host->Shutdown();
  }
  running_.clear();
}

Gateway::~Gateway() { Stop(); }

}  // namespace vpn::gateway
