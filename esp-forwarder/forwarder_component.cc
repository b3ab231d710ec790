#include "esp-forwarder/forwarder_component.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace vpn::forwarder {
namespace {

// RFC 3948 §2.2: IKE on port 4500 starts with four zero octets.
constexpr size_t kNonEspMarkerSize = 4;
constexpr size_t kMaxDatagram = 65536;

prometheus::Family<prometheus::Counter>& UdpFamily(prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("forwarder_udp_datagrams_total")
      .Help("Datagrams received on the public UDP ports that were not relayed.")
      .Register(registry);
}

}  // namespace

void ReadForwarderConfig(config::ConfigReader& reader, ForwarderConfig* out) {
  reader.HostPort("ike_listen", &out->ike_listen);
  reader.HostPort("natt_listen", &out->natt_listen);
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string&>{"ike_listen", out->ike_listen},
        {"natt_listen", out->natt_listen}}) {
    if (!net::IpEndpoint::Parse(value).ok()) {
      reader.Fail(field, "must be an IP address and port, e.g. 0.0.0.0:500");
    }
  }
}

ForwarderComponent::ForwarderComponent(std::unique_ptr<UdpSocket> ike_socket,
                                       std::unique_ptr<UdpSocket> natt_socket,
                                       prometheus::Registry& registry)
    : ike_socket_(std::move(ike_socket)),
      natt_socket_(std::move(natt_socket)),
      relay_([this](const v1::IkeDatagram& d) { return SendIke(d); }, registry),
      malformed_(UdpFamily(registry).Add({{"kind", "malformed"}})),
      keepalives_(UdpFamily(registry).Add({{"kind", "nat_keepalive"}})),
      esp_without_sa_(UdpFamily(registry).Add({{"kind", "esp_no_sa"}})) {}

absl::StatusOr<std::unique_ptr<ForwarderComponent>> ForwarderComponent::Create(
    const ForwarderConfig& config, prometheus::Registry& registry) {
  absl::StatusOr<net::IpEndpoint> ike_address = net::IpEndpoint::Parse(config.ike_listen);
  if (!ike_address.ok()) return ike_address.status();
  absl::StatusOr<net::IpEndpoint> natt_address =
      net::IpEndpoint::Parse(config.natt_listen);
  if (!natt_address.ok()) return natt_address.status();
  absl::StatusOr<std::unique_ptr<UdpSocket>> ike_socket = UdpSocket::Bind(*ike_address);
  if (!ike_socket.ok()) return ike_socket.status();
  absl::StatusOr<std::unique_ptr<UdpSocket>> natt_socket =
      UdpSocket::Bind(*natt_address);
  if (!natt_socket.ok()) return natt_socket.status();

  std::unique_ptr<ForwarderComponent> component(new ForwarderComponent(
      std::move(*ike_socket), std::move(*natt_socket), registry));
  component->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  component->receiver_ = std::thread([c = component.get()] { c->ReceiveLoop(); });
  log::Logger("esp-forwarder")
      .Info("listening for IKE",
            {{"ike", component->ike_socket_->bound().ToString()},
             {"natt", component->natt_socket_->bound().ToString()}});
  return component;
}

ForwarderComponent::~ForwarderComponent() {
  Stop();
  if (stop_fd_ >= 0) close(stop_fd_);
}

void ForwarderComponent::Stop() {
  relay_.Shutdown();
  if (!receiver_.joinable()) return;
  const uint64_t one = 1;
  ssize_t ignored = write(stop_fd_, &one, sizeof(one));
  (void)ignored;
  receiver_.join();
}

absl::Status ForwarderComponent::SendIke(const v1::IkeDatagram& datagram) {
  absl::StatusOr<net::IpEndpoint> local = net::IpEndpoint::FromProto(datagram.local());
  if (!local.ok()) return local.status();
  absl::StatusOr<net::IpEndpoint> remote = net::IpEndpoint::FromProto(datagram.remote());
  if (!remote.ok()) return remote.status();
  const auto* payload = reinterpret_cast<const uint8_t*>(datagram.payload().data());
  if (!datagram.udp_encapsulated()) {
    return ike_socket_->Send(absl::MakeConstSpan(payload, datagram.payload().size()),
                             *local, *remote);
  }
  std::vector<uint8_t> framed(kNonEspMarkerSize + datagram.payload().size(), 0);
  std::copy(payload, payload + datagram.payload().size(),
            framed.begin() + kNonEspMarkerSize);
  return natt_socket_->Send(framed, *local, *remote);
}

void ForwarderComponent::HandleDatagram(bool natt, absl::Span<const uint8_t> data,
                                        const UdpSocket::Received& received) {
  if (natt) {
    if (data.size() == 1 && data[0] == 0xff) {  // RFC 3948 §2.3 keepalive
      keepalives_.Increment();
      return;
    }
    if (data.size() < kNonEspMarkerSize) {
      malformed_.Increment();
      return;
    }
    if (data[0] != 0 || data[1] != 0 || data[2] != 0 || data[3] != 0) {
      // ESP in UDP: the data plane handles it once SAs are installed.
      esp_without_sa_.Increment();
      return;
    }
    data.remove_prefix(kNonEspMarkerSize);
  }
  uint64_t initiator_spi = 0, responder_spi = 0;
  if (!ReadIkeSpis(data, &initiator_spi, &responder_spi)) {
    malformed_.Increment();
    return;
  }
  v1::IkeDatagram datagram;
  *datagram.mutable_local() = received.local.ToProto();
  *datagram.mutable_remote() = received.remote.ToProto();
  datagram.set_initiator_spi(initiator_spi);
  datagram.set_responder_spi(responder_spi);
  datagram.set_payload(reinterpret_cast<const char*>(data.data()), data.size());
  datagram.set_udp_encapsulated(natt);
  relay_.Deliver(datagram);
}

void ForwarderComponent::ReceiveLoop() {
  std::vector<uint8_t> buffer(kMaxDatagram);
  pollfd fds[3] = {{ike_socket_->fd(), POLLIN, 0},
                   {natt_socket_->fd(), POLLIN, 0},
                   {stop_fd_, POLLIN, 0}};
  while (true) {
    if (poll(fds, 3, -1) < 0) continue;
    if (fds[2].revents != 0) return;
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      UdpSocket* socket = i == 0 ? ike_socket_.get() : natt_socket_.get();
      // Drain what is waiting, then poll again.
      for (int budget = 64; budget > 0; --budget) {
        absl::StatusOr<UdpSocket::Received> received = socket->Receive(
            absl::MakeSpan(buffer));
        if (!received.ok()) {
          if (absl::IsOutOfRange(received.status())) malformed_.Increment();
          if (absl::IsUnavailable(received.status())) break;
          continue;
        }
        HandleDatagram(i == 1, absl::MakeConstSpan(buffer.data(), received->size),
                       *received);
      }
    }
  }
}

}  // namespace vpn::forwarder
