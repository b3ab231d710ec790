// ike-service's side of IkeTransport: one Relay stream to each forwarder,
// re-opened with back-off when it breaks. Datagrams from clients arrive
// through `handler`; replies leave through the forwarder they came from.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/rpc/server_options.h"
#include "ike-service/transport/forwarder_link.h"
#include "proto/vpn/v1/ike_transport.grpc.pb.h"

namespace vpn::ike {

class IkeTransportClient final : public ForwarderLink {
 public:
  // `forwarder` indexes `forwarders`.
  IkeTransportClient(std::string replica, std::vector<std::string> forwarders,
                     rpc::TlsFiles tls, Handler handler);
  ~IkeTransportClient() override;

  void Start() override;
  void Stop() override;
  bool Send(size_t forwarder, const v1::IkeDatagram& datagram) override;
  size_t SendPathUpdate(const v1::SaPathUpdate& update) override;
  bool SendChildSa(size_t forwarder, const v1::ChildSa& child) override;

  // True once every forwarder's stream is open (for tests and readiness).
  bool AllConnected() const;

 private:
  struct Connection {
    std::string target;
    absl::Mutex mu;
    std::unique_ptr<grpc::ClientContext> context ABSL_GUARDED_BY(mu);
    std::unique_ptr<grpc::ClientReaderWriter<v1::IkeTransportUp, v1::IkeDatagram>>
        stream ABSL_GUARDED_BY(mu);
    std::thread reader;
  };

  void Run(size_t index);
  size_t SendToAll(const v1::IkeTransportUp& up);
  bool SendTo(size_t forwarder, const v1::IkeTransportUp& up);

  const std::string replica_;
  const rpc::TlsFiles tls_;
  const Handler handler_;
  std::vector<std::unique_ptr<Connection>> connections_;
  absl::Notification stopping_;
};

}  // namespace vpn::ike
