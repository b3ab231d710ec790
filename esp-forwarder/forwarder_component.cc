#include "esp-forwarder/forwarder_component.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "esp-forwarder/esp/replay_window.h"
#include "esp-forwarder/io/tun_device.h"

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
  reader.Uint("workers", 0, 64, &out->workers);
  reader.String("tun_name", &out->tun_name);
  if (out->tun_name.size() > 15) reader.Fail("tun_name", "must be at most 15 characters");
  reader.String("tun_address", &out->tun_address);
  reader.String("tun_address6", &out->tun_address6);
  reader.Uint("tun_mtu", 576, 9000, &out->tun_mtu);
  reader.Bool("tun_offload", &out->tun_offload);
  reader.StringList("client_routes", &out->client_routes);
  reader.Bool("raw_esp", &out->raw_esp);
  reader.Bool("udp_gro", &out->udp_gro);
  reader.Bool("udp_gso", &out->udp_gso);
  reader.Uint("path_mtu", 576, 65535, &out->path_mtu);
  reader.Uint("replay_window", 32, esp::ReplayWindow::kMaxWindow, &out->replay_window);
  store::ReadStoreConfig(reader, &out->store);
  std::string mobility = out->mobility_service;
  reader.String("mobility_service", &mobility);
  if (!mobility.empty() && mobility != out->mobility_service) {
    absl::Status valid = config::ValidateHostPort(mobility);
    if (!valid.ok()) reader.Fail("mobility_service", valid.message());
  }
  out->mobility_service = mobility;
  reader.Duration("liveness_report_interval", &out->liveness_report_interval);
  if (out->liveness_report_interval < absl::Seconds(1) ||
      out->liveness_report_interval > absl::Minutes(10)) {
    reader.Fail("liveness_report_interval", "must be between 1s and 10m");
  }
  std::string address;
  int prefix = 0;
  if (!out->tun_address.empty() && (!ParseCidr(out->tun_address, &address, &prefix).ok() ||
                                    address.size() != 4)) {
    reader.Fail("tun_address", "must be an IPv4 address/prefix, e.g. 10.10.0.1/24");
  }
  if (!out->tun_address6.empty() && (!ParseCidr(out->tun_address6, &address, &prefix).ok() ||
                                     address.size() != 16)) {
    reader.Fail("tun_address6", "must be an IPv6 address/prefix, e.g. fd00:10::1/64");
  }
  for (size_t i = 0; i < out->client_routes.size(); ++i) {
    if (!ParseCidr(out->client_routes[i], &address, &prefix).ok()) {
      reader.Fail(absl::StrCat("client_routes[", i, "]"), "must be a CIDR, e.g. 10.10.0.0/24");
    }
  }
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string&>{"ike_listen", out->ike_listen},
        {"natt_listen", out->natt_listen}}) {
    if (!net::IpEndpoint::Parse(value).ok()) {
      reader.Fail(field, "must be an IP address and port, e.g. 0.0.0.0:500");
    }
  }
}

ForwarderComponent::ForwarderComponent(std::unique_ptr<UdpSocket> ike_socket,
                                       prometheus::Registry& registry)
    : ike_socket_(std::move(ike_socket)),
      relay_([this](const v1::IkeDatagram& d) { return SendIke(d); },
             [this](const v1::SaPathUpdate& u) { MovePath(u); },
             [this](const v1::ChildSa& c) {
               if (store_sync_) store_sync_->Offer(c);
             },
             registry),
      malformed_(UdpFamily(registry).Add({{"kind", "malformed"}})) {}

absl::StatusOr<std::unique_ptr<ForwarderComponent>> ForwarderComponent::Create(
    const ForwarderConfig& config, prometheus::Registry& registry) {
  absl::StatusOr<net::IpEndpoint> ike_address = net::IpEndpoint::Parse(config.ike_listen);
  if (!ike_address.ok()) return ike_address.status();
  absl::StatusOr<std::unique_ptr<UdpSocket>> ike_socket = UdpSocket::Bind(*ike_address);
  if (!ike_socket.ok()) return ike_socket.status();

  std::unique_ptr<ForwarderComponent> component(
      new ForwarderComponent(std::move(*ike_socket), registry));
  const log::Logger log("esp-forwarder");
  DataplaneOptions options;
  options.natt_listen = config.natt_listen;
  options.workers = static_cast<int>(config.workers);
  options.tun.name = config.tun_name;
  options.tun.address = config.tun_address;
  options.tun.address6 = config.tun_address6;
  options.tun.mtu = static_cast<int>(config.tun_mtu);
  options.tun.offload = config.tun_offload;
  options.tun.routes = config.client_routes;
  options.raw_esp = config.raw_esp;
  options.udp_gro = config.udp_gro;
  options.udp_gso = config.udp_gso;
  options.path_mtu = static_cast<uint32_t>(config.path_mtu);
  absl::optional<store::StoreHandle> store = config.shared_store;
  if (!store.has_value() && !config.store.store.empty()) {
    absl::StatusOr<store::StoreHandle> opened =
        store::OpenStoreHandle(config.store, "esp-forwarder");
    if (!opened.ok()) return opened.status();
    store = std::move(*opened);
  }
  if (config.local_mobility != nullptr || !config.mobility_service.empty()) {
    absl::StatusOr<std::unique_ptr<MobilityApi>> api =
        config.local_mobility != nullptr
            ? MakeInProcessMobilityApi(config.local_mobility)
            : MakeGrpcMobilityApi(config.mobility_service, config.server.client_tls);
    if (!api.ok()) return api.status();
    MobilityReporterOptions reporter;
    reporter.liveness_interval = config.liveness_report_interval;
    // The sealer tags the NAT rebindings this forwarder authorizes.
    component->mobility_ = std::make_unique<MobilityReporter>(
        std::move(*api), &component->sa_table_, registry, reporter,
        store.has_value() ? store->sealer : nullptr);
    options.observer = component->mobility_.get();
  } else {
    log.Warning("no mobility_service configured: NAT rebinding on ESP is not followed and "
                "liveness is not reported");
  }
  ForwarderComponent* self = component.get();
  absl::StatusOr<std::unique_ptr<Dataplane>> dataplane = Dataplane::Create(
      options, &component->sa_table_, registry,
      [self](absl::Span<const uint8_t> ike, const net::IpEndpoint& local,
             const net::IpEndpoint& remote) { self->DeliverIke(true, ike, local, remote); });
  if (!dataplane.ok() && !config.tun_name.empty()) {
    // No TUN here (a sandbox, no NET_ADMIN): keep serving IKE.
    log.Warning("cannot open the TUN device; ESP will not be forwarded",
                {{"tun_name", config.tun_name}, {"error", dataplane.status().ToString()}});
    options.tun.name.clear();
    dataplane = Dataplane::Create(
        options, &component->sa_table_, registry,
        [self](absl::Span<const uint8_t> ike, const net::IpEndpoint& local,
               const net::IpEndpoint& remote) { self->DeliverIke(true, ike, local, remote); });
  }
  if (!dataplane.ok()) return dataplane.status();
  component->dataplane_ = std::move(*dataplane);
  if (config.tun_name.empty()) {
    log.Warning("no tun_name configured: ESP is decrypted but not forwarded");
  }

  if (store.has_value()) {
    StoreSyncOptions sync_options;
    sync_options.default_replay_window = static_cast<uint32_t>(config.replay_window);
    component->store_sync_ = std::make_unique<StoreSync>(
        store->store, store->sealer, &component->sa_table_, registry, sync_options);
    component->store_sync_->Start();
  } else {
    log.Warning("no store configured: no CHILD SAs will be installed");
  }
  component->service_ = std::make_unique<ForwarderService>(
      &component->sa_table_, store.has_value() ? store->store : nullptr);
  if (component->mobility_) component->mobility_->Start();
  component->dataplane_->Start();
  component->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  component->receiver_ = std::thread([c = component.get()] {
    log::SetThreadName("fwd-ike-500");
    c->ReceiveLoop();
  });
  log.Info("listening for IKE",
           {{"ike", component->ike_socket_->bound().ToString()},
            {"natt", component->dataplane_->natt_socket().bound().ToString()}});
  return component;
}

ForwarderComponent::~ForwarderComponent() {
  Stop();
  if (stop_fd_ >= 0) close(stop_fd_);
}

void ForwarderComponent::Stop() {
  relay_.Shutdown();
  if (store_sync_) store_sync_->Stop();
  if (dataplane_) dataplane_->Stop();
  if (mobility_) mobility_->Stop();
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
  return dataplane_->natt_socket().Send(framed, *local, *remote);
}

void ForwarderComponent::MovePath(const v1::SaPathUpdate& update) {
  absl::StatusOr<net::IpEndpoint> local = net::IpEndpoint::FromProto(update.local());
  absl::StatusOr<net::IpEndpoint> remote = net::IpEndpoint::FromProto(update.remote());
  const log::Logger log("esp-forwarder");
  const std::string spi_r = absl::StrCat(absl::Hex(update.responder_spi(), absl::kZeroPad16));
  if (!local.ok() || !remote.ok()) {
    log.Warning("path update without a valid endpoint", {{"spi_r", spi_r}});
    return;
  }
  // Behind a NAT the CHILD SAs go into UDP (as mobility-service commits it).
  const Encap udp = Encap::kUdp;
  const std::vector<std::shared_ptr<const SaEntry>> left =
      sa_table_.MovePath(update.initiator_spi(), update.responder_spi(), *local, *remote,
                         update.remote_behind_nat() ? &udp : nullptr);
  if (mobility_) mobility_->HoldOffAfterMove(left);
  log.Info("CHILD SAs follow their IKE SA's new path",
           {{"spi_r", spi_r}, {"remote", remote->ToString()}, {"child_sas", left.size()}});
}

void ForwarderComponent::DeliverIke(bool natt, absl::Span<const uint8_t> data,
                                    const net::IpEndpoint& local,
                                    const net::IpEndpoint& remote) {
  uint64_t initiator_spi = 0, responder_spi = 0;
  if (!ReadIkeSpis(data, &initiator_spi, &responder_spi)) {
    malformed_.Increment();
    return;
  }
  v1::IkeDatagram datagram;
  *datagram.mutable_local() = local.ToProto();
  *datagram.mutable_remote() = remote.ToProto();
  datagram.set_initiator_spi(initiator_spi);
  datagram.set_responder_spi(responder_spi);
  datagram.set_payload(reinterpret_cast<const char*>(data.data()), data.size());
  datagram.set_udp_encapsulated(natt);
  relay_.Deliver(datagram);
}

// UDP 500 only; the data plane's workers read UDP 4500.
void ForwarderComponent::ReceiveLoop() {
  std::vector<uint8_t> buffer(kMaxDatagram);
  pollfd fds[2] = {{ike_socket_->fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    // Drain what is waiting, then poll again.
    for (int budget = 64; budget > 0; --budget) {
      absl::StatusOr<UdpSocket::Received> received =
          ike_socket_->Receive(absl::MakeSpan(buffer));
      if (!received.ok()) {
        if (absl::IsOutOfRange(received.status())) malformed_.Increment();
        if (absl::IsUnavailable(received.status())) break;
        continue;
      }
      DeliverIke(false, absl::MakeConstSpan(buffer.data(), received->size), received->local,
                 received->remote);
    }
  }
}

}  // namespace vpn::forwarder
