// The forwarder's side of IkeTransport: ike-service replicas open a Relay
// stream each; received IKE datagrams go to a replica chosen by the
// initiator's SPI, and whatever the replicas send leaves through `send`.
// Path updates (an IKE SA's authenticated move) go to `move_path`, new
// CHILD SAs to `install_child`.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "proto/vpn/v1/ike_transport.grpc.pb.h"

namespace vpn::forwarder {

class IkeRelay final : public v1::IkeTransport::Service {
 public:
  using SendFunction = std::function<absl::Status(const v1::IkeDatagram&)>;
  using PathFunction = std::function<void(const v1::SaPathUpdate&)>;
  using ChildSaFunction = std::function<void(const v1::ChildSa&)>;

  IkeRelay(SendFunction send, PathFunction move_path, ChildSaFunction install_child,
           prometheus::Registry& registry);

  // Hands a received datagram to its replica. Rendezvous hashing on the
  // initiator SPI keeps every message of an SA, and the retransmits of its
  // first IKE_SA_INIT, on one replica while the set of replicas is stable.
  // Returns false when no replica is connected.
  bool Deliver(const v1::IkeDatagram& datagram);

  size_t replica_count() const;

  // Ends every replica's stream, so the server can stop without waiting.
  void Shutdown();

  // A replica in this process (`gateway`): no gRPC stream, no copies
  // through it. Datagrams chosen for it go to `deliver` on the receiving
  // thread; Send() takes what it sends up. Detached when destroyed.
  class LocalReplica {
   public:
    ~LocalReplica();
    void Send(const v1::IkeTransportUp& up);

   private:
    friend class IkeRelay;
    LocalReplica(IkeRelay* relay, std::shared_ptr<void> handle)
        : relay_(relay), handle_(std::move(handle)) {}
    IkeRelay* const relay_;
    const std::shared_ptr<void> handle_;  // the relay's Replica
  };
  using DeliverFunction = std::function<void(const v1::IkeDatagram&)>;
  // Null when a replica of that name is already connected.
  std::unique_ptr<LocalReplica> AttachLocal(std::string name, DeliverFunction deliver);

  grpc::Status Relay(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::IkeDatagram, v1::IkeTransportUp>* stream) override;

 private:
  // What a remote replica has not been sent yet: Deliver() runs on the
  // data plane's threads (IKE on UDP 4500) and must never wait for a
  // replica, so it queues and the stream's writer thread sends.
  static constexpr size_t kQueueLimit = 1024;
  static constexpr size_t kQueueBytes = 4 << 20;

  struct Replica {
    std::string name;
    grpc::ServerContext* context = nullptr;  // null for a local replica
    grpc::ServerReaderWriter<v1::IkeDatagram, v1::IkeTransportUp>* stream = nullptr;
    DeliverFunction deliver;                 // a local replica's
    absl::Mutex mu;
    bool closed ABSL_GUARDED_BY(mu) = false;
    std::deque<v1::IkeDatagram> queue ABSL_GUARDED_BY(mu);
    size_t queued_bytes ABSL_GUARDED_BY(mu) = 0;
  };
  // A remote replica's writer: sends its queue until it is closed.
  void WriteLoop(Replica* replica);

  std::shared_ptr<Replica> ChooseReplica(uint64_t initiator_spi) const;
  // Adds a replica; false (and nothing changes) while one of the same name
  // is connected.
  bool AddReplica(std::shared_ptr<Replica> replica);
  void RemoveReplica(const std::shared_ptr<Replica>& replica);
  // What a replica sent: a datagram to send, or a path update.
  void HandleUp(const v1::IkeTransportUp& up);

  const SendFunction send_;
  const PathFunction move_path_;
  const ChildSaFunction install_child_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Replica>> replicas_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  prometheus::Counter& to_replicas_;
  prometheus::Counter& from_replicas_;
  prometheus::Counter& dropped_no_replica_;
  prometheus::Counter& dropped_queue_full_;
  prometheus::Counter& send_failures_;
  prometheus::Counter& path_updates_;
  prometheus::Counter& duplicate_hellos_;
  prometheus::Gauge& replicas_gauge_;
};

// Reads the IKE header's initiator and responder SPIs (RFC 7296 §3.1).
// Returns false for a datagram too short to be IKE.
bool ReadIkeSpis(absl::Span<const uint8_t> message, uint64_t* initiator_spi,
                 uint64_t* responder_spi);

}  // namespace vpn::forwarder
