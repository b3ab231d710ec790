// esp-forwarder: the data plane and the only component on the public
// network. It receives IKE on UDP 500 and 4500 and relays it to ike-service
// replicas over IkeTransport; ESP arrives on 4500 (RFC 3948) and as IP
// protocol 50.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "esp-forwarder/ike_relay/ike_relay.h"
#include "esp-forwarder/io/udp_socket.h"
#include "prometheus/registry.h"

namespace vpn::forwarder {

struct ForwarderConfig {
  rpc::ServerOptions server;
  std::string ike_listen = "0.0.0.0:500";    // IKE
  std::string natt_listen = "0.0.0.0:4500";  // IKE and ESP in UDP (RFC 3948)
};

void ReadForwarderConfig(config::ConfigReader& reader, ForwarderConfig* out);

class ForwarderComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<ForwarderComponent>> Create(
      const ForwarderConfig& config, prometheus::Registry& registry);
  ~ForwarderComponent() override;

  std::vector<grpc::Service*> services() override { return {&relay_}; }
  void Stop() override;

  uint16_t ike_port() const { return ike_socket_->bound().port(); }
  uint16_t natt_port() const { return natt_socket_->bound().port(); }

 private:
  ForwarderComponent(std::unique_ptr<UdpSocket> ike_socket,
                     std::unique_ptr<UdpSocket> natt_socket,
                     prometheus::Registry& registry);

  // Sends a datagram from ike-service through the right socket.
  absl::Status SendIke(const v1::IkeDatagram& datagram);
  void ReceiveLoop();
  void HandleDatagram(bool natt, absl::Span<const uint8_t> data,
                      const UdpSocket::Received& received);

  std::unique_ptr<UdpSocket> ike_socket_;
  std::unique_ptr<UdpSocket> natt_socket_;
  IkeRelay relay_;
  prometheus::Counter& malformed_;
  prometheus::Counter& keepalives_;
  prometheus::Counter& esp_without_sa_;
  int stop_fd_ = -1;  // eventfd that wakes ReceiveLoop to stop
  std::thread receiver_;
};

}  // namespace vpn::forwarder
