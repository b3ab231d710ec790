#include "esp-forwarder/ike_relay/ike_relay.h"

#include <thread>

#include "absl/hash/hash.h"
#include "common/log/log.h"

namespace vpn::forwarder {
namespace {

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("esp-forwarder");
  return *logger;
}

prometheus::Family<prometheus::Counter>& DatagramFamily(
    prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("forwarder_ike_datagrams_total")
      .Help("IKE datagrams relayed between clients and ike-service replicas.")
      .Register(registry);
}

}  // namespace

bool ReadIkeSpis(absl::Span<const uint8_t> message, uint64_t* initiator_spi,
                 uint64_t* responder_spi) {
  constexpr size_t kIkeHeaderSize = 28;
  if (message.size() < kIkeHeaderSize) return false;
  uint64_t i = 0, r = 0;
  for (int k = 0; k < 8; ++k) {
    i = (i << 8) | message[k];
    r = (r << 8) | message[8 + k];
  }
  *initiator_spi = i;
  *responder_spi = r;
  return true;
}

IkeRelay::IkeRelay(SendFunction send, PathFunction move_path, ChildSaFunction install_child,
                   prometheus::Registry& registry)
    : send_(std::move(send)),
      move_path_(std::move(move_path)),
      install_child_(std::move(install_child)),
      to_replicas_(DatagramFamily(registry).Add({{"direction", "to_replica"}})),
      from_replicas_(DatagramFamily(registry).Add({{"direction", "from_replica"}})),
      dropped_no_replica_(
          DatagramFamily(registry).Add({{"direction", "dropped_no_replica"}})),
      dropped_queue_full_(
          DatagramFamily(registry).Add({{"direction", "dropped_queue_full"}})),
      send_failures_(DatagramFamily(registry).Add({{"direction", "send_failed"}})),
      path_updates_(prometheus::BuildCounter()
                        .Name("forwarder_ike_path_updates_total")
                        .Help("IKE SA moves announced by ike-service replicas.")
                        .Register(registry)
                        .Add({})),
      duplicate_hellos_(prometheus::BuildCounter()
                            .Name("forwarder_ike_relay_refused_total")
                            .Help("Relay streams refused: a hello for a replica name "
                                  "whose stream is still open.")
                            .Register(registry)
                            .Add({})),
      replicas_gauge_(prometheus::BuildGauge()
                          .Name("forwarder_ike_replicas")
                          .Help("ike-service replicas connected to this forwarder.")
                          .Register(registry)
                          .Add({})) {}

size_t IkeRelay::replica_count() const {
  absl::MutexLock lock(&mu_);
  return replicas_.size();
}

void IkeRelay::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  for (const std::shared_ptr<Replica>& replica : replicas_) {
    if (replica->context != nullptr) replica->context->TryCancel();
  }
}

bool IkeRelay::AddReplica(std::shared_ptr<Replica> replica) {
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<Replica>& r : replicas_) {
    if (r->name == replica->name) return false;
  }
  replicas_.push_back(std::move(replica));
  replicas_gauge_.Set(static_cast<double>(replicas_.size()));
  return true;
}

void IkeRelay::RemoveReplica(const std::shared_ptr<Replica>& replica) {
  {
    absl::MutexLock lock(&mu_);
    replicas_.erase(std::remove(replicas_.begin(), replicas_.end(), replica),
                    replicas_.end());
    replicas_gauge_.Set(static_cast<double>(replicas_.size()));
  }
  // Wait for a Deliver() still handing to this replica; none may start
  // after. Its writer, if any, stops.
  absl::MutexLock lock(&replica->mu);
  replica->closed = true;
  replica->queue.clear();
  replica->queued_bytes = 0;
}

void IkeRelay::HandleUp(const v1::IkeTransportUp& up) {
  if (up.has_path_update()) {
    path_updates_.Increment();
    if (move_path_) move_path_(up.path_update());
    return;
  }
  if (up.has_child_sa()) {
    if (install_child_) install_child_(up.child_sa());
    return;
  }
  if (!up.has_datagram()) return;
  from_replicas_.Increment();
  if (absl::Status sent = send_(up.datagram()); !sent.ok()) {
    send_failures_.Increment();
    Log().Warning("cannot send IKE datagram", {{"error", sent.message()}});
  }
}

std::unique_ptr<IkeRelay::LocalReplica> IkeRelay::AttachLocal(std::string name,
                                                              DeliverFunction deliver) {
  auto replica = std::make_shared<Replica>();
  replica->name = std::move(name);
  replica->deliver = std::move(deliver);
  if (!AddReplica(replica)) return nullptr;
  Log().Info("ike-service replica attached in process", {{"replica", replica->name}});
  return std::unique_ptr<LocalReplica>(new LocalReplica(this, replica));
}

IkeRelay::LocalReplica::~LocalReplica() {
  relay_->RemoveReplica(std::static_pointer_cast<Replica>(handle_));
}

void IkeRelay::LocalReplica::Send(const v1::IkeTransportUp& up) { relay_->HandleUp(up); }

std::shared_ptr<IkeRelay::Replica> IkeRelay::ChooseReplica(
    uint64_t initiator_spi) const {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Replica> best;
  size_t best_score = 0;
  for (const std::shared_ptr<Replica>& replica : replicas_) {
    const size_t score = absl::HashOf(replica->name, initiator_spi);
    if (best == nullptr || score > best_score) {
      best = replica;
      best_score = score;
    }
  }
  return best;
}

bool IkeRelay::Deliver(const v1::IkeDatagram& datagram) {
  std::shared_ptr<Replica> replica = ChooseReplica(datagram.initiator_spi());
  if (replica == nullptr) {
    dropped_no_replica_.Increment();
    return false;
  }
  absl::MutexLock lock(&replica->mu);
  if (replica->closed) {
    dropped_no_replica_.Increment();
    return false;
  }
  if (replica->deliver) {
    replica->deliver(datagram);  // in process: ike-service only queues it
  } else {
    const size_t size = datagram.payload().size();
    if (replica->queue.size() >= kQueueLimit || replica->queued_bytes + size > kQueueBytes) {
      dropped_queue_full_.Increment();
      return false;
    }
    replica->queue.push_back(datagram);
    replica->queued_bytes += size;
  }
  to_replicas_.Increment();
  return true;
}

void IkeRelay::WriteLoop(Replica* replica) {
  log::SetThreadName("fwd-ike-write");
  while (true) {
    v1::IkeDatagram next;
    {
      absl::MutexLock lock(&replica->mu);
      auto ready = [replica]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(replica->mu) {
        return replica->closed || !replica->queue.empty();
      };
      replica->mu.Await(absl::Condition(&ready));
      if (replica->closed) return;
      next = std::move(replica->queue.front());
      replica->queue.pop_front();
      replica->queued_bytes -= next.payload().size();
    }
    // Blocks while the replica does not read (flow control); only this
    // thread waits, and Deliver() drops once the queue is full.
    if (!replica->stream->Write(next)) {
      replica->context->TryCancel();  // the reader sees the end and cleans up
      return;
    }
  }
}

grpc::Status IkeRelay::Relay(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::IkeDatagram, v1::IkeTransportUp>* stream) {
  v1::IkeTransportUp up;
  if (!stream->Read(&up) || !up.has_hello() || up.hello().replica().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message must be a hello naming the replica");
  }
  auto replica = std::make_shared<Replica>();
  replica->name = up.hello().replica();
  replica->context = context;
  replica->stream = stream;
  // Only ike-service may call Relay (the authorization table). A second
  // hello for a name whose stream is open is refused, never a replacement:
  // it would hand that replica's clients to whoever sent it.
  if (!AddReplica(replica)) {
    duplicate_hellos_.Increment();
    Log().Warning("refused a second stream for a connected replica",
                  {{"replica", replica->name}, {"peer", context->peer()}});
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                        "replica '" + replica->name + "' is already connected");
  }
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) context->TryCancel();
  }
  Log().Info("ike-service replica connected",
             {{"replica", replica->name}, {"peer", context->peer()}});

  std::thread writer([this, r = replica.get()] { WriteLoop(r); });
  while (stream->Read(&up)) HandleUp(up);

  RemoveReplica(replica);
  writer.join();
  Log().Info("ike-service replica disconnected", {{"replica", replica->name}});
  return grpc::Status::OK;
}

}  // namespace vpn::forwarder
