// The forwarder's side of IkeTransport: ike-service replicas open a Relay
// stream each; received IKE datagrams go to a replica chosen by the
// initiator's SPI, and whatever the replicas send leaves through `send`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "proto/vpn/v1/ike_transport.grpc.pb.h"

namespace vpn::forwarder {

class IkeRelay final : public v1::IkeTransport::Service {
 public:
  using SendFunction = std::function<absl::Status(const v1::IkeDatagram&)>;

  IkeRelay(SendFunction send, prometheus::Registry& registry);

  // Hands a received datagram to its replica. Rendezvous hashing on the
  // initiator SPI keeps every message of an SA, and the retransmits of its
  // first IKE_SA_INIT, on one replica while the set of replicas is stable.
  // Returns false when no replica is connected.
  bool Deliver(const v1::IkeDatagram& datagram);

  size_t replica_count() const;

  // Ends every replica's stream, so the server can stop without waiting.
  void Shutdown();

  grpc::Status Relay(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::IkeDatagram, v1::IkeTransportUp>* stream) override;

 private:
  struct Replica {
    std::string name;
    grpc::ServerContext* context;
    grpc::ServerReaderWriter<v1::IkeDatagram, v1::IkeTransportUp>* stream;
    absl::Mutex write_mu;  // one Write at a time per stream
    bool closed ABSL_GUARDED_BY(write_mu) = false;
  };

  std::shared_ptr<Replica> ChooseReplica(uint64_t initiator_spi) const;

  const SendFunction send_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Replica>> replicas_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  prometheus::Counter& to_replicas_;
  prometheus::Counter& from_replicas_;
  prometheus::Counter& dropped_no_replica_;
  prometheus::Counter& send_failures_;
};

// Reads the IKE header's initiator and responder SPIs (RFC 7296 §3.1).
// Returns false for a datagram too short to be IKE.
bool ReadIkeSpis(absl::Span<const uint8_t> message, uint64_t* initiator_spi,
                 uint64_t* responder_spi);

}  // namespace vpn::forwarder
