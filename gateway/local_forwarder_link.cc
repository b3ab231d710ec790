#include "gateway/local_forwarder_link.h"

#include <utility>

namespace vpn::gateway {

LocalForwarderLink::LocalForwarderLink(forwarder::IkeRelay* relay, std::string replica,
                                       Handler handler)
    : relay_(relay), replica_(std::move(replica)), handler_(std::move(handler)) {}

LocalForwarderLink::~LocalForwarderLink() { Stop(); }

void LocalForwarderLink::Start() {
  absl::MutexLock lock(&mu_);
  attached_ = relay_->AttachLocal(
      replica_, [this](const v1::IkeDatagram& datagram) { handler_(0, datagram); });
}

void LocalForwarderLink::Stop() {
  std::unique_ptr<forwarder::IkeRelay::LocalReplica> attached;
  {
    absl::MutexLock lock(&mu_);
    attached = std::move(attached_);
  }
  // Detached outside mu_: detaching waits for a delivery in progress.
}

bool LocalForwarderLink::Send(size_t forwarder, const v1::IkeDatagram& datagram) {
  if (forwarder != 0) return false;
  v1::IkeTransportUp up;
  *up.mutable_datagram() = datagram;
  return SendUp(up);
}

size_t LocalForwarderLink::SendPathUpdate(const v1::SaPathUpdate& update) {
  v1::IkeTransportUp up;
  *up.mutable_path_update() = update;
  return SendUp(up) ? 1 : 0;
}

bool LocalForwarderLink::SendChildSa(size_t /*forwarder: the only one*/, const v1::ChildSa& child) {
  v1::IkeTransportUp up;
  *up.mutable_child_sa() = child;
  return SendUp(up);
}

bool LocalForwarderLink::SendUp(const v1::IkeTransportUp& up) {
  absl::ReaderMutexLock lock(&mu_);
  if (attached_ == nullptr) return false;
  attached_->Send(up);
  return true;
}

}  // namespace vpn::gateway
