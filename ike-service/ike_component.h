// ike-service: the IKEv2 responder (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA,
// INFORMATIONAL, MOBIKE). Unprivileged; runs as several replicas. It reaches
// clients through the forwarders' IkeTransport streams.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "common/store/store_handle.h"
#include "common/store/watch_loop.h"
#include "ike-service/auth_client/authenticator.h"
#include "ike-service/engine/ike_engine.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/management/management_service.h"
#include "ike-service/mobility_client/mobility_client.h"
#include "ike-service/pool/address_pool.h"
#include "ike-service/sa/sa_recorder.h"
#include "ike-service/transport/forwarder_link.h"
#include "prometheus/registry.h"

namespace vpn::ike {

struct IkeServiceConfig {
  rpc::ServerOptions server;
  std::string replica;                      // defaults to the host name
  std::string auth_service = "auth-service:50052";
  std::string mobility_service = "mobility-service:50053";
  std::vector<std::string> forwarders = {"esp-forwarder:50054"};
  store::StoreConfig store;
  ResponderPolicy policy;                   // proposals, TS, DNS, IDr, lifetimes
  std::string pool_v4 = "10.10.0.0/24";
  std::string pool_v6;                      // empty: no IPv6 virtual addresses
  EngineOptions engine;
  // Set by `gateway` to share its store; otherwise `store` is opened.
  absl::optional<store::StoreHandle> shared_store;
  // Set by `gateway`: auth-service and mobility-service in the same process,
  // called directly (`auth_service` and `mobility_service` are then unused).
  v1::Auth::Service* local_auth = nullptr;
  v1::Mobility::Service* local_mobility = nullptr;
  // Set by `gateway`: the forwarder in the same process, reached without
  // gRPC (`forwarders` is then unused).
  std::function<std::unique_ptr<ForwarderLink>(const std::string& replica,
                                               ForwarderLink::Handler handler)>
      local_forwarder;
};

void ReadIkeServiceConfig(config::ConfigReader& reader, IkeServiceConfig* out);

class IkeComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<IkeComponent>> Create(
      const IkeServiceConfig& config, prometheus::Registry& registry);
  ~IkeComponent() override;

  std::vector<grpc::Service*> services() override { return {management_.get()}; }
  void Stop() override;
  // For `gateway`, which serves it on the operator's API.
  v1::Management::Service* management_service() { return management_.get(); }

 private:
  IkeComponent() = default;

  ResponderPolicy policy_;
  store::StoreHandle store_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<MobilityClient> mobility_;
  std::unique_ptr<AddressPool> pool_v4_;
  std::unique_ptr<AddressPool> pool_v6_;
  std::unique_ptr<SaRecorder> recorder_;
  std::unique_ptr<IkeEngine> engine_;
  std::unique_ptr<ForwarderLink> transport_;
  std::unique_ptr<ManagementService> management_;
  absl::Notification stopping_;
  std::thread sweeper_;
  std::thread record_watcher_;  // follows IKE records changed elsewhere

  // Follows the IKE records: another replica's takeover, mobility-service's
  // moves and deletes.
  std::unique_ptr<store::WatchLoop> RecordLoop();
  std::unique_ptr<store::WatchLoop> record_loop_;
};

}  // namespace vpn::ike
