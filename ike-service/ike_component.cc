#include "ike-service/ike_component.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/net/ip_endpoint.h"
#include "common/store/sa_keys.h"
#include "ike-service/exchange/traffic_selectors.h"
#include "ike-service/transport/ike_transport_client.h"

namespace vpn::ike {

void ReadIkeServiceConfig(config::ConfigReader& reader, IkeServiceConfig* out) {
  if (out->replica.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    out->replica = host;
  }
  reader.String("replica", &out->replica);
  if (out->replica.empty()) reader.Fail("replica", "must not be empty");
  reader.HostPort("auth_service", &out->auth_service);
  reader.HostPort("mobility_service", &out->mobility_service);
  reader.HostPortList("forwarders", &out->forwarders);
  store::ReadStoreConfig(reader, &out->store);

  std::vector<std::string> ike = DefaultIkeProposals(), esp = DefaultEspProposals();
  reader.StringList("ike_proposals", &ike);
  reader.StringList("esp_proposals", &esp);
  out->policy.ike_proposals.clear();
  out->policy.esp_proposals.clear();
  for (size_t i = 0; i < ike.size(); ++i) {
    absl::StatusOr<ProposalPolicy> p = ParseProposalPolicy(ike[i], ProposalKind::kIke);
    if (!p.ok()) return reader.Fail(absl::StrCat("ike_proposals[", i, "]"), p.status().message());
    out->policy.ike_proposals.push_back(*p);
  }
  for (size_t i = 0; i < esp.size(); ++i) {
    absl::StatusOr<ProposalPolicy> p = ParseProposalPolicy(esp[i], ProposalKind::kEsp);
    if (!p.ok()) return reader.Fail(absl::StrCat("esp_proposals[", i, "]"), p.status().message());
    out->policy.esp_proposals.push_back(*p);
  }

  std::vector<std::string> local_ts = {"0.0.0.0/0", "::/0"};
  reader.StringList("local_ts", &local_ts);
  out->policy.local_ts.clear();
  for (size_t i = 0; i < local_ts.size(); ++i) {
    absl::StatusOr<codec::TrafficSelector> ts = SelectorFromCidr(local_ts[i]);
    if (!ts.ok()) return reader.Fail(absl::StrCat("local_ts[", i, "]"), ts.status().message());
    out->policy.local_ts.push_back(*ts);
  }
  std::vector<std::string> dns;
  reader.StringList("dns", &dns);
  for (size_t i = 0; i < dns.size(); ++i) {
    absl::StatusOr<net::IpEndpoint> address = net::IpEndpoint::Parse(dns[i]);
    if (!address.ok() || address->port() != 0) {
      return reader.Fail(absl::StrCat("dns[", i, "]"), "must be an IP address");
    }
    out->policy.dns_servers.emplace_back(
        reinterpret_cast<const char*>(address->address_bytes().data()),
        address->address_bytes().size());
  }
  std::vector<std::string> additional;
  reader.StringList("mobike_addresses", &additional);
  for (size_t i = 0; i < additional.size(); ++i) {
    absl::StatusOr<net::IpEndpoint> address = net::IpEndpoint::Parse(additional[i]);
    if (!address.ok() || address->port() != 0) {
      return reader.Fail(absl::StrCat("mobike_addresses[", i, "]"), "must be an IP address");
    }
    out->policy.additional_addresses.emplace_back(
        reinterpret_cast<const char*>(address->address_bytes().data()),
        address->address_bytes().size());
  }
  std::string gateway_id;
  reader.String("gateway_id", &gateway_id);
  if (!gateway_id.empty()) {
    absl::StatusOr<net::IpEndpoint> address = net::IpEndpoint::Parse(gateway_id);
    if (address.ok() && address->port() == 0) {
      out->policy.id_type = address->is_v6() ? codec::IdType::kIpv6Addr
                                             : codec::IdType::kIpv4Addr;
      out->policy.id_data.assign(address->address_bytes().begin(),
                                 address->address_bytes().end());
    } else {
      out->policy.id_type = codec::IdType::kFqdn;
      out->policy.id_data.assign(gateway_id.begin(), gateway_id.end());
    }
  }
  reader.String("pool_v4", &out->pool_v4);
  reader.String("pool_v6", &out->pool_v6);
  uint64_t value = out->engine.half_open_limit;
  reader.Uint("half_open_limit", 1, 10'000'000, &value);
  out->engine.half_open_limit = value;
  value = out->engine.cookie_threshold;
  reader.Uint("cookie_threshold", 0, 10'000'000, &value);
  out->engine.cookie_threshold = value;
  value = out->engine.half_open_per_source_limit;
  reader.Uint("half_open_per_source_limit", 1, 10'000'000, &value);
  out->engine.half_open_per_source_limit = value;
  value = out->engine.max_ike_sa_init_size;
  reader.Uint("max_ike_sa_init_size", 1280, 65535, &value);
  out->engine.max_ike_sa_init_size = value;
    reader.Duration("half_open_timeout", &out->engine.half_open_timeout);
  value = out->engine.fragment_size;
  reader.Uint("fragment_size", 576, 65535, &value);
  out->engine.fragment_size = value;
  value = out->engine.workers;
  reader.Uint("workers", 1, 256, &value);
  out->engine.workers = value;
  reader.Duration("liveness_interval", &out->engine.liveness_interval);
  reader.Duration("dead_peer_timeout", &out->engine.dead_peer_timeout);
  if (out->engine.liveness_interval < absl::Seconds(1)) {
    reader.Fail("liveness_interval", "must be at least 1s");
  }
}

absl::StatusOr<std::unique_ptr<IkeComponent>> IkeComponent::Create(
    const IkeServiceConfig& config, prometheus::Registry& registry) {
  std::unique_ptr<IkeComponent> component(new IkeComponent());
  component->policy_ = config.policy;
  if (config.shared_store.has_value()) {
    component->store_ = *config.shared_store;
  } else {
    absl::StatusOr<store::StoreHandle> handle =
        store::OpenStoreHandle(config.store, "ike-service");
    if (!handle.ok()) return handle.status();
    component->store_ = std::move(*handle);
  }
  for (auto [cidr, pool] : {std::make_pair(&config.pool_v4, &component->pool_v4_),
                            std::make_pair(&config.pool_v6, &component->pool_v6_)}) {
    if (cidr->empty()) continue;
    absl::StatusOr<std::unique_ptr<AddressPool>> created =
        AddressPool::Create(*cidr, component->store_.store.get());
    if (!created.ok()) return created.status();
    (*created)->ExportMetricsIn(registry);
    *pool = std::move(*created);
  }
  if (config.local_auth != nullptr) {
    component->authenticator_ = NewInProcessAuthenticator(config.local_auth);
  } else {
    absl::StatusOr<std::unique_ptr<Authenticator>> authenticator =
        NewGrpcAuthenticator(config.auth_service, config.server.client_tls);
    if (!authenticator.ok()) return authenticator.status();
    component->authenticator_ = std::move(*authenticator);
  }
  if (config.local_mobility != nullptr) {
    component->mobility_ = MobilityServiceClient::InProcess(config.local_mobility);
  } else {
    absl::StatusOr<std::unique_ptr<MobilityServiceClient>> mobility =
        MobilityServiceClient::OverGrpc(config.mobility_service, config.server.client_tls);
    if (!mobility.ok()) return mobility.status();
    component->mobility_ = std::move(*mobility);
  }
  component->recorder_ = std::make_unique<SaRecorder>(
      component->store_.store.get(), component->store_.sealer.get(), config.replica,
      &component->policy_);
  component->recorder_->StartWriteBehind(registry);
  component->recorder_->CountRejectedIn(registry);

  AuthServices services;
  services.authenticator = component->authenticator_.get();
  services.pool_v4 = component->pool_v4_.get();
  services.pool_v6 = component->pool_v6_.get();
  IkeComponent* self = component.get();
  component->engine_ = std::make_unique<IkeEngine>(
      component->policy_, config.engine, services, component->recorder_.get(),
      component->mobility_.get(),
      [self](size_t forwarder, const v1::IkeDatagram& datagram) {
        self->transport_->Send(forwarder, datagram);
      },
      [self](const v1::SaPathUpdate& update) { self->transport_->SendPathUpdate(update); },
      [self](size_t forwarder, const v1::ChildSa& child) {
        self->transport_->SendChildSa(forwarder, child);
      },
      registry);
  ForwarderLink::Handler submit = [self](size_t forwarder, const v1::IkeDatagram& datagram) {
    self->engine_->Submit(forwarder, datagram);
  };
  if (config.local_forwarder) {
    component->transport_ = config.local_forwarder(config.replica, std::move(submit));
  } else {
    component->transport_ = std::make_unique<IkeTransportClient>(
        config.replica, config.forwarders, config.server.client_tls, std::move(submit));
  }
  // SAs this replica owned before a restart carry on from the store.
  size_t skipped = 0;
  absl::StatusOr<std::vector<std::unique_ptr<IkeSa>>> restored =
      component->recorder_->LoadOwned(&skipped);
  if (restored.ok()) {
    log::Logger("ike-service").Info("SAs restored from the store",
                                    {{"restored", restored->size()}, {"skipped", skipped}});
    component->engine_->Restore(std::move(*restored));
  } else {
    log::Logger("ike-service").Warning("cannot restore SAs",
                                       {{"error", restored.status().message()}});
  }
  component->management_ = std::make_unique<ManagementService>(
      component->store_.store.get(),
      [self](uint64_t spi_i, uint64_t spi_r) { return self->engine_->Terminate(spi_i, spi_r); });
  component->transport_->Start();
  component->record_loop_ = component->RecordLoop();
  component->record_watcher_ = std::thread([self] {
    log::SetThreadName("ike-records");
    self->record_loop_->Run();
  });
  component->sweeper_ = std::thread([self] {
    log::SetThreadName("ike-sweep");
    while (!self->stopping_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      self->engine_->ExpireHalfOpen();
      self->engine_->CheckLiveness();
    }
  });
  return component;
}

std::unique_ptr<store::WatchLoop> IkeComponent::RecordLoop() {
  auto apply = [this](const store::KeyValue& kv, bool deleted) {
    uint64_t spi_i = 0, spi_r = 0;
    if (!store::ParseIkeSaKey(kv.key, &spi_i, &spi_r)) return;
    if (deleted) return engine_->ApplyRecord(spi_i, spi_r, nullptr, 0);
    v1::IkeSa record;
    if (record.ParseFromString(kv.value)) engine_->ApplyRecord(spi_i, spi_r, &record, kv.version);
  };
  store::WatchHandlers handlers;
  // Every record as of a (re)list or resync: held SAs whose records are gone
  // are forgotten, and each listed record is applied (a takeover or a
  // delete missed while the watch was down is not lost).
  handlers.snapshot = [this, apply](const std::vector<store::KeyValue>& kvs, int64_t revision) {
    std::vector<std::pair<uint64_t, uint64_t>> spis;
    for (const store::KeyValue& kv : kvs) {
      uint64_t spi_i = 0, spi_r = 0;
      if (store::ParseIkeSaKey(kv.key, &spi_i, &spi_r)) spis.emplace_back(spi_i, spi_r);
    }
    engine_->ResetStoredRecords(spis, revision);
    for (const store::KeyValue& kv : kvs) apply(kv, false);
  };
  handlers.put = [apply](const store::KeyValue& kv, int64_t) { apply(kv, false); };
  handlers.del = [apply](const store::KeyValue& kv, int64_t) { apply(kv, true); };
  store::WatchLoopOptions options;
  options.what = "IKE records";
  return std::make_unique<store::WatchLoop>(store_.store.get(), "ike/", std::move(handlers),
                                            options);
}

IkeComponent::~IkeComponent() { Stop(); }

void IkeComponent::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (record_loop_ != nullptr) record_loop_->Stop();
  if (sweeper_.joinable()) sweeper_.join();
  if (record_watcher_.joinable()) record_watcher_.join();
  if (transport_ != nullptr) transport_->Stop();
  if (engine_ != nullptr) engine_->Stop();
  // After the engine, which reports to it; before the gateway stops
  // mobility-service, which the in-process client calls.
  if (mobility_ != nullptr) mobility_->Stop();
  if (recorder_ != nullptr) recorder_->Stop();  // what was queued is written
}

}  // namespace vpn::ike
