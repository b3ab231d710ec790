// How ike-service reaches the forwarders: over gRPC IkeTransport streams
// (IkeTransportClient), or, in `gateway`, through the forwarder's relay in
// the same process (gateway/local_forwarder_link.h).
#pragma once

#include <cstddef>
#include <functional>

#include "proto/vpn/v1/ike_transport.pb.h"

namespace vpn::ike {

class ForwarderLink {
 public:
  // `forwarder` names where a datagram came from; pass it back to Send().
  using Handler = std::function<void(size_t forwarder, const v1::IkeDatagram& datagram)>;

  virtual ~ForwarderLink() = default;
  virtual void Start() = 0;
  virtual void Stop() = 0;
  // False when that forwarder is not reachable now; IKE retransmits cover it.
  virtual bool Send(size_t forwarder, const v1::IkeDatagram& datagram) = 0;
  // Tells every reachable forwarder where an IKE SA's CHILD SAs go now.
  // Returns how many it reached.
  virtual size_t SendPathUpdate(const v1::SaPathUpdate& update) = 0;
  // Announces a CHILD SA just created (its record, keys sealed) to the
  // forwarder the client is reached by, which installs it before its record
  // is written and may send on it at once, without reserving sequence
  // numbers in the store (esp-forwarder/sa_table/seq_checkpoint.h). Only
  // that one: two forwarders sending unreserved numbers on one SA would
  // repeat AES-GCM nonces. The others install it from the store.
  // False when it is not reachable now.
  virtual bool SendChildSa(size_t forwarder, const v1::ChildSa& child) = 0;
};

}  // namespace vpn::ike
