#include "gateway/gateway.h"

#include "absl/strings/str_cat.h"
#include "gateway/local_forwarder_link.h"

namespace vpn::gateway {

GatewayConfig DefaultGatewayConfig() {
  GatewayConfig config;
  config.server.grpc_listen = kDefaultOperatorSocket;
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
  rpc::ReadServerOptions(reader, &out->server);
  if (!out->server.metrics_listen.empty()) {
    reader.Fail("server.metrics_listen", "gateway has one /metrics: set the top-level metrics_listen");
  }
  if (out->server.client_tls.enabled()) {
    reader.Fail("server.client_tls", "gateway calls no other service over the network");
  }
  store::ReadStoreConfig(reader, &out->store);

  reader.PushSection("auth_service");
  auth::ReadAuthServiceConfig(reader, &out->auth);
  reader.PopSection();

  reader.PushSection("mobility_service");
  mobility::ReadMobilityServiceConfig(reader, &out->mobility);
  reader.PopSection();

  reader.PushSection("esp_forwarder");
  forwarder::ReadForwarderConfig(reader, &out->forwarder);
  reader.PopSection();
  // The forwarder reports to this process's mobility-service by direct call;
  // "" turns the reports off.
  if (!out->forwarder.mobility_service.empty() &&
      out->forwarder.mobility_service != forwarder::ForwarderConfig().mobility_service) {
    reader.Fail("esp_forwarder.mobility_service",
                "gateway serves no internal API: its forwarder reports to its own "
                "mobility-service, or to none with \"\"");
  }

  reader.PushSection("ike_service");
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

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(GatewayConfig config) {
  std::unique_ptr<Gateway> gateway(new Gateway());
  absl::StatusOr<std::unique_ptr<rpc::MetricsEndpoint>> metrics =
      rpc::MetricsEndpoint::Start(config.metrics_listen);
  if (!metrics.ok()) return metrics.status();
  gateway->metrics_ = std::move(*metrics);
  absl::StatusOr<store::StoreHandle> store = store::OpenStoreHandle(config.store, "gateway");
  if (!store.ok()) return store.status();
  gateway->store_ = std::move(*store);
  prometheus::Registry& registry = gateway->metrics_->registry();

  absl::StatusOr<std::unique_ptr<auth::AuthComponent>> auth =
      auth::AuthComponent::Create(config.auth, registry);
  if (!auth.ok()) return auth.status();
  gateway->auth_ = std::move(*auth);
  v1::Auth::Service* auth_service = gateway->auth_->auth_service();

  config.mobility.shared_store = gateway->store_;
  absl::StatusOr<std::unique_ptr<mobility::MobilityComponent>> mobility =
      mobility::MobilityComponent::Create(config.mobility, registry);
  if (!mobility.ok()) return mobility.status();
  gateway->mobility_ = std::move(*mobility);
  v1::Mobility::Service* mobility_service = gateway->mobility_->mobility_service();

  config.forwarder.shared_store = gateway->store_;
  if (!config.forwarder.mobility_service.empty()) {
    config.forwarder.local_mobility = mobility_service;
  }
  absl::StatusOr<std::unique_ptr<forwarder::ForwarderComponent>> forwarder =
      forwarder::ForwarderComponent::Create(config.forwarder, registry);
  if (!forwarder.ok()) return forwarder.status();
  gateway->forwarder_ = std::move(*forwarder);
  forwarder::IkeRelay* relay = gateway->forwarder_->relay();

  // ike-service calls auth-service and mobility-service directly, and
  // reaches the forwarder's relay directly: nothing goes over gRPC.
  config.ike.shared_store = gateway->store_;
  config.ike.local_auth = auth_service;
  config.ike.local_mobility = mobility_service;
  config.ike.local_forwarder = [relay](const std::string& replica,
                                       ike::ForwarderLink::Handler handler) {
    return std::make_unique<LocalForwarderLink>(relay, replica, std::move(handler));
  };
  absl::StatusOr<std::unique_ptr<ike::IkeComponent>> ike =
      ike::IkeComponent::Create(config.ike, registry);
  if (!ike.ok()) return ike.status();
  gateway->ike_ = std::move(*ike);

  // What an operator calls; the authorization table grants a Unix socket's
  // callers the operator role, so Auth answers only the user calls here.
  absl::StatusOr<std::unique_ptr<rpc::ServiceHost>> host = rpc::ServiceHost::Start(
      "gateway", config.server,
      {gateway->ike_->management_service(), auth_service, gateway->forwarder_->forwarder_service()},
      *gateway->metrics_);
  if (!host.ok()) return host.status();
  gateway->operator_api_ = std::move(*host);
  for (const char* component : {"auth-service", "mobility-service", "esp-forwarder", "ike-service"}) {
    gateway->metrics_->AddBuildInfo(component);
  }
  return gateway;
}

void Gateway::Stop() {
  if (operator_api_ != nullptr) operator_api_->Shutdown();
  operator_api_.reset();
  // Stopped, then destroyed, in the reverse of their start order: each one
  // calls only those started before it (ike-service's mobility flush thread
  // calls mobility-service), so nothing is called after it is gone.
  const std::vector<rpc::Component*> started_last_first = {ike_.get(), forwarder_.get(),
                                                           mobility_.get(), auth_.get()};
  for (rpc::Component* component : started_last_first) {
    if (component != nullptr) component->Stop();
  }
  ike_.reset();
  forwarder_.reset();
  mobility_.reset();
  auth_.reset();
}

Gateway::~Gateway() { Stop(); }

}  // namespace vpn::gateway
