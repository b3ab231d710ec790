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
#include "proto/vpn/v1/ike_transport.grpc.pb.h"

namespace vpn::ike {

class IkeTransportClient {
 public:
  // `forwarder` indexes `forwarders`; pass it back to Send() to answer.
  using Handler =
      std::function<void(size_t forwarder, const v1::IkeDatagram& datagram)>;

  IkeTransportClient(std::string replica, std::vector<std::string> forwarders,
                     rpc::TlsFiles tls, Handler handler);
  ~IkeTransportClient();

  void Start();
  void Stop();

  // False when that forwarder's stream is down; IKE retransmits cover it.
  bool Send(size_t forwarder, const v1::IkeDatagram& datagram);

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

  const std::string replica_;
  const rpc::TlsFiles tls_;
  const Handler handler_;
  std::vector<std::unique_ptr<Connection>> connections_;
  absl::Notification stopping_;
};

}  // namespace vpn::ike
