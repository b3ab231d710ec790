// esp-forwarder: the data plane and the only component on the public
// network. It receives IKE on UDP 500 and 4500 and relays it to ike-service
// replicas over IkeTransport; ESP arrives on 4500 (RFC 3948) and as IP
// protocol 50 and is handled by the data plane (dataplane/), whose SAs come
// from the store's "child/" records (sa_table/store_sync).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "common/store/store_handle.h"
#include "esp-forwarder/dataplane/dataplane.h"
#include "esp-forwarder/forwarder_service.h"
#include "esp-forwarder/ike_relay/ike_relay.h"
#include "esp-forwarder/path_reports/mobility_reporter.h"
#include "esp-forwarder/io/udp_socket.h"
#include "esp-forwarder/sa_table/sa_table.h"
#include "esp-forwarder/sa_table/store_sync.h"
#include "prometheus/registry.h"

namespace vpn::forwarder {

struct ForwarderConfig {
  rpc::ServerOptions server;
  std::string ike_listen = "0.0.0.0:500";    // IKE
  std::string natt_listen = "0.0.0.0:4500";  // IKE and ESP in UDP (RFC 3948)
  // Data plane (see README "esp-forwarder" rows).
  uint64_t workers = 0;                      // 0: one per core
  std::string tun_name;                      // empty: no TUN (ESP is not forwarded)
  std::string tun_address;                   // e.g. "10.10.0.1/24"
  std::string tun_address6;                  // e.g. "fd00:10::1/64"
  uint64_t tun_mtu = 1400;
  bool tun_offload = true;                   // IFF_VNET_HDR + TSO/CSUM
  std::vector<std::string> client_routes;    // extra CIDRs routed into the TUN
  bool raw_esp = true;                       // IP protocol 50 (no NAT)
  bool udp_gro = true;
  bool udp_gso = true;
  uint64_t path_mtu = 1500;                  // outer MTU towards clients
  uint64_t replay_window = 1024;             // when a CHILD SA record says 0
  // mobility-service (host:port) told of NAT rebinding seen on ESP and of
  // liveness; empty: neither is reported and ESP from a new source moves
  // nothing. `gateway` points it at its own mobility-service.
  std::string mobility_service = "mobility-service:50053";
  // At most one liveness report per IKE SA this often while ESP comes in.
  absl::Duration liveness_report_interval = absl::Seconds(10);
  store::StoreConfig store;
  // Set by `gateway` to share its store; otherwise `store` is opened, and
  // without `store` no SAs are installed (warned).
  absl::optional<store::StoreHandle> shared_store;
  // Set by `gateway`: its mobility-service, called directly.
  v1::Mobility::Service* local_mobility = nullptr;
};

void ReadForwarderConfig(config::ConfigReader& reader, ForwarderConfig* out);

class ForwarderComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<ForwarderComponent>> Create(
      const ForwarderConfig& config, prometheus::Registry& registry);
  ~ForwarderComponent() override;

  std::vector<grpc::Service*> services() override { return {&relay_, service_.get()}; }
  void Stop() override;
  // For `gateway`, which reaches them directly.
  IkeRelay* relay() { return &relay_; }
  v1::Forwarder::Service* forwarder_service() { return service_.get(); }

  uint16_t ike_port() const { return ike_socket_->bound().port(); }
  uint16_t natt_port() const { return dataplane_->natt_socket().bound().port(); }
  const SaTable& sa_table() const { return sa_table_; }
  const Dataplane& dataplane() const { return *dataplane_; }

 private:
  ForwarderComponent(std::unique_ptr<UdpSocket> ike_socket, prometheus::Registry& registry);

  // Sends a datagram from ike-service through the right socket.
  absl::Status SendIke(const v1::IkeDatagram& datagram);
  // Points an IKE SA's CHILD SAs at the path ike-service announced.
  void MovePath(const v1::SaPathUpdate& update);
  void ReceiveLoop();
  void DeliverIke(bool natt, absl::Span<const uint8_t> data, const net::IpEndpoint& local,
                  const net::IpEndpoint& remote);

  std::unique_ptr<UdpSocket> ike_socket_;
  SaTable sa_table_;
  std::unique_ptr<MobilityReporter> mobility_;  // null: no mobility_service
  std::unique_ptr<Dataplane> dataplane_;  // owns the NAT-T sockets
  std::unique_ptr<StoreSync> store_sync_;
  IkeRelay relay_;
  std::unique_ptr<ForwarderService> service_;  // vpn.v1.Forwarder
  prometheus::Counter& malformed_;
  int stop_fd_ = -1;  // eventfd that wakes ReceiveLoop to stop
  std::thread receiver_;
};

}  // namespace vpn::forwarder
