// ike-service's link to the forwarder when both run in `gateway`: datagrams
// and path updates cross as function calls through the forwarder's relay
// (attached as a local replica), not over a loopback gRPC stream.
#pragma once

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "esp-forwarder/ike_relay/ike_relay.h"
#include "ike-service/transport/forwarder_link.h"

namespace vpn::gateway {

class LocalForwarderLink final : public ike::ForwarderLink {
 public:
  // `relay` must outlive the link.
  LocalForwarderLink(forwarder::IkeRelay* relay, std::string replica, Handler handler);
  ~LocalForwarderLink() override;

  void Start() override;
  void Stop() override;
  bool Send(size_t forwarder, const v1::IkeDatagram& datagram) override;
  size_t SendPathUpdate(const v1::SaPathUpdate& update) override;
  bool SendChildSa(size_t forwarder, const v1::ChildSa& child) override;

 private:
  bool SendUp(const v1::IkeTransportUp& up);

  forwarder::IkeRelay* const relay_;
  const std::string replica_;
  const Handler handler_;
  absl::Mutex mu_;
  std::unique_ptr<forwarder::IkeRelay::LocalReplica> attached_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vpn::gateway
