#include "esp-forwarder/sa_table/store_sync.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crypto/crypto.h"
#include "common/ipsec/transform_records.h"
#include "common/log/log.h"
#include "common/store/sa_keys.h"
#include "google/protobuf/util/time_util.h"

namespace vpn::forwarder {
namespace {

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("esp-forwarder");
  return *logger;
}

std::string Hex(uint32_t spi) { return absl::StrFormat("%08x", spi); }

absl::StatusOr<esp::AddressRange> RangeFromSelector(const v1::TrafficSelector& ts) {
  esp::AddressRange range;
  const size_t n = ts.ts_type() == 8 ? 16 : 4;
  if ((ts.ts_type() != 7 && ts.ts_type() != 8) || ts.start_address().size() != n ||
      ts.end_address().size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("bad traffic selector (type ", ts.ts_type(), ")"));
  }
  range.v6 = n == 16;
  std::memcpy(range.start.data(), ts.start_address().data(), n);
  std::memcpy(range.end.data(), ts.end_address().data(), n);
  return range;
}

void Wipe(std::string* s) { crypto::SecureZero(s->data(), s->size()); }

}  // namespace

absl::StatusOr<std::shared_ptr<const SaEntry>> EntryFromRecord(
    const store::Sealer& sealer, const std::string& key, const v1::ChildSa& record,
    int64_t create_revision, uint32_t default_replay_window, const SaEntry* previous,
    store::PathVerdict* path) {
  *path = store::PathVerdict::kValid;
  if (key != store::ChildSaKey(record.inbound_spi())) {
    return absl::InvalidArgumentError(
        absl::StrCat("record under ", key, " has inbound SPI ", Hex(record.inbound_spi())));
  }
  if (record.mode() == v1::IPSEC_MODE_TRANSPORT) {
    return absl::InvalidArgumentError("transport mode is not supported");
  }
  // Every record, also a rewrite that keeps its EspSa: the seal is what
  // says its selectors, proposal and lifetimes come from ike-service.
  absl::StatusOr<v1::ChildSaKeys> keys = store::OpenChildSa(sealer, key, record);
  if (!keys.ok()) return keys.status();
  struct WipeOnExit {
    v1::ChildSaKeys* keys;
    ~WipeOnExit() {
      Wipe(keys->mutable_inbound_encryption());
      Wipe(keys->mutable_inbound_integrity());
      Wipe(keys->mutable_outbound_encryption());
      Wipe(keys->mutable_outbound_integrity());
    }
  } wipe{&*keys};

  auto entry = std::make_shared<SaEntry>();
  entry->create_revision = create_revision;
  entry->ike_spi_i = record.ike_initiator_spi();
  entry->ike_spi_r = record.ike_responder_spi();
  // The path: only as a key holder authorized it (mobility-service copies
  // the tag), never back to an older one.
  *path = store::CheckChildPath(sealer, record,
                                previous != nullptr ? previous->path_generation : 0);
  if (*path == store::PathVerdict::kValid && record.remote_behind_nat() &&
      record.encapsulation() != v1::ENCAPSULATION_UDP) {
    *path = store::PathVerdict::kForged;  // behind a NAT ESP must go in UDP
  }
  if (*path == store::PathVerdict::kValid) {
    entry->encap = record.encapsulation() == v1::ENCAPSULATION_RAW ? Encap::kRaw : Encap::kUdp;
    absl::StatusOr<net::IpEndpoint> remote = net::IpEndpoint::FromProto(record.remote());
    if (!remote.ok()) return absl::InvalidArgumentError("no remote endpoint");
    entry->remote = *remote;
    if (entry->encap == Encap::kUdp && entry->remote.port() == 0) entry->remote.set_port(4500);
    if (absl::StatusOr<net::IpEndpoint> local = net::IpEndpoint::FromProto(record.local());
        local.ok()) {
      entry->local = *local;
    }
    entry->path_generation = record.path_auth().generation();
  } else if (previous != nullptr) {
    entry->encap = previous->encap;
    entry->remote = previous->remote;
    entry->local = previous->local;
    entry->path_generation = previous->path_generation;
  } else {
    return absl::PermissionDeniedError(
        absl::StrCat("path not authorized: ", store::PathVerdictName(*path)));
  }

  esp::SaParams params;
  params.inbound_spi = record.inbound_spi();
  params.outbound_spi = record.outbound_spi();
  const ipsec::TransformSet transforms = ipsec::FromProposal(record.proposal());
  params.algorithms.encryption = transforms.encryption;
  params.algorithms.encryption_key_bits = transforms.encryption_key_bits;
  params.algorithms.integrity = transforms.integrity;
  params.algorithms.esn = transforms.esn == 1;
  params.replay_window = record.replay_window() != 0 ? record.replay_window()
                                                     : default_replay_window;
  for (const auto& ts : record.local_ts()) {
    auto range = RangeFromSelector(ts);
    if (!range.ok()) return range.status();
    params.local_ts.push_back(*range);
  }
  for (const auto& ts : record.remote_ts()) {
    auto range = RangeFromSelector(ts);
    if (!range.ok()) return range.status();
    params.remote_ts.push_back(*range);
  }
  if (params.remote_ts.empty()) return absl::InvalidArgumentError("no remote traffic selector");
  params.lifetime.soft_bytes = record.lifetime().soft_bytes();
  params.lifetime.hard_bytes = record.lifetime().hard_bytes();
  params.lifetime.soft_time = absl::Seconds(record.lifetime().soft_seconds());
  params.lifetime.hard_time = absl::Seconds(record.lifetime().hard_seconds());
  if (record.has_created()) {
    params.created = absl::FromUnixNanos(
        google::protobuf::util::TimeUtil::TimestampToNanoseconds(record.created()));
  }

  // Same SA rewritten (endpoint change): keep its state.
  const std::shared_ptr<esp::EspSa>& reuse = previous != nullptr ? previous->sa : nullptr;
  if (reuse != nullptr && reuse->outbound_spi() == params.outbound_spi &&
      reuse->params().algorithms.encryption == params.algorithms.encryption &&
      reuse->params().algorithms.encryption_key_bits == params.algorithms.encryption_key_bits &&
      reuse->params().algorithms.integrity == params.algorithms.integrity &&
      reuse->params().algorithms.esn == params.algorithms.esn) {
    entry->sa = reuse;
    return std::shared_ptr<const SaEntry>(std::move(entry));
  }

  const esp::SaKeys view = {crypto::AsBytes(keys->inbound_encryption()),
                            crypto::AsBytes(keys->inbound_integrity()),
                            crypto::AsBytes(keys->outbound_encryption()),
                            crypto::AsBytes(keys->outbound_integrity())};
  absl::StatusOr<std::shared_ptr<esp::EspSa>> sa = esp::EspSa::Create(params, view);
  if (!sa.ok()) return sa.status();
  entry->sa = std::move(*sa);
  return std::shared_ptr<const SaEntry>(std::move(entry));
}

StoreSync::StoreSync(std::shared_ptr<store::Store> store, std::shared_ptr<store::Sealer> sealer,
                     SaTable* table, prometheus::Registry& registry, StoreSyncOptions options)
    : store_(std::move(store)),
      sealer_(std::move(sealer)),
      table_(table),
      options_(std::move(options)),
      events_(prometheus::BuildCounter()
                  .Name("forwarder_sa_events_total")
                  .Help("CHILD SA changes applied from the store watch, by kind.")
                  .Register(registry)),
      installs_(events_.Add({{"event", "install"}})),
      offered_installs_(events_.Add({{"event", "install_announced"}})),
      updates_(events_.Add({{"event", "update"}})),
      removes_(events_.Add({{"event", "remove"}})),
      resyncs_(events_.Add({{"event", "resync"}})),
      rejected_(events_.Add({{"event", "rejected"}})),
      rejected_records_(prometheus::BuildCounter()
                            .Name("forwarder_sa_records_rejected_total")
                            .Help("CHILD SA records, or their paths, not applied, by reason "
                                  "(seal, invalid, path_tag_missing, path_tag_invalid, "
                                  "path_generation_stale).")
                            .Register(registry)),
      soft_expired_(events_.Add({{"event", "soft_expired"}})),
      hard_expired_(events_.Add({{"event", "hard_expired"}})),
      installed_(prometheus::BuildGauge()
                     .Name("forwarder_sas_installed")
                     .Help("CHILD SAs installed in the data plane.")
                     .Register(registry)
                     .Add({})) {
  if (options_.checkpoint_sequences) {
    checkpointer_ = std::make_unique<SeqCheckpointer>(store_, registry, options_.checkpoint);
  }
  for (const char* reason : {"seal", "invalid", "path_tag_missing", "path_tag_invalid",
                             "path_generation_stale"}) {
    rejected_records_.Add({{"reason", reason}});  // present at 0 from the start
  }
}

void StoreSync::CountRejected(absl::string_view reason) {
  rejected_records_.Add({{"reason", std::string(reason)}}).Increment();
}

StoreSync::~StoreSync() { Stop(); }

void StoreSync::Start() {
  if (checkpointer_) checkpointer_->Start();
  absl::Status listed;
  int64_t listed_revision = -1;
  {
    absl::MutexLock lock(&apply_mu_);
    listed = Relist();
    if (listed.ok()) listed_revision = revision_.load();
  }
  if (!listed.ok()) {
    Log().Warning("cannot list CHILD SAs; retrying", {{"error", listed.ToString()}});
  }
  // The handlers but tick run with apply_mu_ held for a whole batch
  // (options.batch_mutex): the offer thread, which installs what is pending
  // as announced (unwritten sequence numbers), must never find an SA that
  // came by watch in pending_.
  store::WatchHandlers handlers;
  handlers.snapshot = [this](const std::vector<store::KeyValue>& kvs, int64_t revision) {
    apply_mu_.AssertHeld();
    ApplySnapshot(kvs, revision);
  };
  handlers.put = [this](const store::KeyValue& kv, int64_t revision) {
    apply_mu_.AssertHeld();
    store::WatchEvent event;
    event.revision = revision;
    event.kv = kv;
    Apply(event);
  };
  handlers.del = [this](const store::KeyValue& kv, int64_t revision) {
    apply_mu_.AssertHeld();
    store::WatchEvent event;
    event.type = store::WatchEvent::Type::kDelete;
    event.revision = revision;
    event.kv = kv;
    Apply(event);
  };
  // Many events, one publication.
  handlers.batch_done = [this] {
    apply_mu_.AssertHeld();
    InstallPending();
    table_->Publish();
    installed_.Set(table_->Current()->size());
  };
  handlers.tick = [this] {
    if (absl::Now() - last_sweep_ < options_.sweep_interval) return;
    last_sweep_ = absl::Now();
    absl::MutexLock lock(&apply_mu_);
    Sweep();
  };
  store::WatchLoopOptions options;
  options.wait = options_.sweep_interval;
  options.retry = absl::Milliseconds(200);
  options.what = "CHILD SAs";
  options.batch_mutex = &apply_mu_;
  loop_ = std::make_unique<store::WatchLoop>(store_.get(), store::kChildSaPrefix,
                                             std::move(handlers), options);
  // Listed: the watch starts after that listing (an empty store is at
  // revision 0; listing again would drop SAs announced meanwhile).
  thread_ = std::thread([this, listed_revision] {
    log::SetThreadName("fwd-store-sync");
    loop_->RunFrom(listed_revision);
  });
  offer_thread_ = std::thread([this] {
    log::SetThreadName("fwd-offers");
    RunOffers();
  });
}

void StoreSync::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (loop_ != nullptr) loop_->Stop();
  {
    absl::MutexLock lock(&offer_mu_);
    offer_cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  if (offer_thread_.joinable()) offer_thread_.join();
  if (checkpointer_) checkpointer_->Stop();
}

absl::Status StoreSync::Relist() {
  absl::StatusOr<store::ListResult> list = store_->List(store::kChildSaPrefix);
  if (!list.ok()) return list.status();
  ApplySnapshot(list->kvs, list->revision);
  return absl::OkStatus();
}

void StoreSync::ApplySnapshot(const std::vector<store::KeyValue>& kvs, int64_t revision) {
  store::WatchEvent resync;
  resync.type = store::WatchEvent::Type::kResync;
  resync.revision = revision;
  resync.snapshot = kvs;
  Apply(resync);
  InstallPending();
  table_->Publish();
  installed_.Set(table_->Current()->size());
}

void StoreSync::ApplyPut(const store::KeyValue& kv) {
  v1::ChildSa record;
  if (!record.ParseFromString(kv.value)) {
    rejected_.Increment();
    Log().Warning("CHILD SA record does not parse", {{"key", kv.key}});
    return;
  }
  const uint32_t spi = record.inbound_spi();
  std::shared_ptr<const SaEntry> old = Current(spi);
  store::PathVerdict path = store::PathVerdict::kValid;
  auto entry = EntryFromRecord(*sealer_, kv.key, record, kv.create_revision,
                               options_.default_replay_window, old.get(), &path);
  if (!entry.ok()) {
    rejected_.Increment();
    const absl::StatusCode code = entry.status().code();
    const bool seal = code == absl::StatusCode::kDataLoss ||
                      code == absl::StatusCode::kFailedPrecondition;
    const bool unauthorized_path = code == absl::StatusCode::kPermissionDenied;
    CountRejected(seal ? "seal" : unauthorized_path ? store::PathVerdictName(path) : "invalid");
    Log().Warning("CHILD SA not installed",
                  {{"key", kv.key}, {"error", entry.status().ToString()}});
    // A record not sealed by ike-service (a store writer without the key)
    // changes nothing: the SA it claims to rewrite keeps its state.
    if (seal || unauthorized_path) return;
    // A record that no longer works must not keep its old SA alive (its
    // checkpoint stays: the record may be fixed under the same SPI).
    Drop(spi);
    if (checkpointer_) checkpointer_->Untrack(spi);
    return;
  }
  if (path != store::PathVerdict::kValid) {
    CountRejected(store::PathVerdictName(path));
    Log().Warning("CHILD SA path not authorized; keeping its previous path",
                  {{"key", kv.key},
                   {"reason", store::PathVerdictName(path)},
                   {"remote", (*entry)->remote.ToString()}});
  }
  const bool kept = old != nullptr && old->sa == (*entry)->sa;
  // The first version of the record of an SA ike-service announced: the
  // same SA, nothing new to report.
  const bool confirmed = kept && kv.version == 1;
  if (!confirmed) (kept ? updates_ : installs_).Increment();
  const char* what = confirmed ? "CHILD SA record arrived"
                     : kept    ? "CHILD SA updated"
                               : "CHILD SA installed";
  Log().Write(confirmed ? log::Level::kDebug : log::Level::kInfo, what,
             {{"spi_in", Hex(record.inbound_spi())},
              {"spi_out", Hex(record.outbound_spi())},
              {"remote", (*entry)->remote.ToString()},
              {"encap", (*entry)->encap == Encap::kUdp ? "udp" : "raw"}});
  if (kept && !pending_.contains(spi)) {
    table_->Put(*std::move(entry));
  } else {
    // A new EspSa: staged once its sequence numbers are restored.
    pending_[spi] = *std::move(entry);
  }
}

std::shared_ptr<const SaEntry> StoreSync::Current(uint32_t spi) const {
  if (auto it = pending_.find(spi); it != pending_.end()) return it->second;
  return table_->Staged(spi);
}

void StoreSync::Drop(uint32_t spi) {
  pending_.erase(spi);
  table_->Remove(spi);
}

void StoreSync::InstallPending(bool announced) {
  if (pending_.empty()) return;
  if (checkpointer_) {
    std::vector<std::shared_ptr<esp::EspSa>> sas;
    sas.reserve(pending_.size());
    for (const auto& [spi, entry] : pending_) sas.push_back(entry->sa);
    checkpointer_->Install(sas, announced);
  }
  for (auto& [spi, entry] : pending_) table_->Put(std::move(entry));
  pending_.clear();
}

void StoreSync::Apply(const store::WatchEvent& event) {
  switch (event.type) {
    case store::WatchEvent::Type::kPut:
      ApplyPut(event.kv);
      break;
    case store::WatchEvent::Type::kDelete: {
      uint32_t spi = 0;
      const std::string hex = event.kv.key.substr(sizeof(store::kChildSaPrefix) - 1);
      if (absl::SimpleHexAtoi(hex, &spi)) {
        Drop(spi);
        if (checkpointer_) checkpointer_->Remove(spi);
        removes_.Increment();
        Log().Info("CHILD SA removed", {{"spi_in", Hex(spi)}});
      }
      break;
    }
    case store::WatchEvent::Type::kResync: {
      resyncs_.Increment();
      // Drop what is gone; SAs still there keep their state (ApplyPut).
      absl::flat_hash_set<uint32_t> present;
      for (const store::KeyValue& kv : event.snapshot) {
        uint32_t spi = 0;
        if (absl::SimpleHexAtoi(kv.key.substr(sizeof(store::kChildSaPrefix) - 1), &spi)) {
          present.insert(spi);
        }
      }
      table_->RetainOnly(present);
      absl::erase_if(pending_, [&](const auto& kv) { return !present.contains(kv.first); });
      if (checkpointer_) checkpointer_->Retain(present, event.revision);
      for (const store::KeyValue& kv : event.snapshot) ApplyPut(kv);
      break;
    }
  }
  revision_.store(event.revision);
}

void StoreSync::Sweep() {
  const absl::Time now = absl::Now();
  for (const auto& entry : table_->Current()->All()) {
    if (entry->sa->TakeSoftExpiry(now)) {
      soft_expired_.Increment();
      Log().Info("CHILD SA reached its soft lifetime; rekey needed",
                 {{"spi_in", Hex(entry->sa->inbound_spi())}});
      if (options_.on_soft_expire) options_.on_soft_expire(*entry);
    }
    if (entry->sa->TakeHardExpiry(now)) {
      hard_expired_.Increment();
      Log().Warning("CHILD SA reached its hard lifetime; dropping its traffic",
                    {{"spi_in", Hex(entry->sa->inbound_spi())}});
      if (options_.on_hard_expire) options_.on_hard_expire(*entry);
    }
  }
}

void StoreSync::Offer(v1::ChildSa record) {
  absl::MutexLock lock(&offer_mu_);
  offered_.push_back(std::move(record));
  offer_cv_.Signal();
}

void StoreSync::RunOffers() {
  while (true) {
    std::vector<v1::ChildSa> offered;
    {
      absl::MutexLock lock(&offer_mu_);
      while (offered_.empty() && !stop_.HasBeenNotified()) offer_cv_.Wait(&offer_mu_);
      if (stop_.HasBeenNotified()) return;
      offered.swap(offered_);
    }
    absl::MutexLock lock(&apply_mu_);
    size_t added = 0;
    for (const v1::ChildSa& record : offered) {
      if (Current(record.inbound_spi()) != nullptr) continue;  // the watch was first
      store::KeyValue kv;
      kv.key = store::ChildSaKey(record.inbound_spi());
      kv.value = record.SerializeAsString();
      // Newer than every SA the table holds (make-before-break order); the
      // record's own revision replaces it when the watch brings it.
      kv.create_revision = kv.mod_revision = revision_.load() + 1;
      kv.version = 1;
      ApplyPut(kv);
      ++added;
    }
    if (added == 0) continue;
    offered_installs_.Increment(static_cast<double>(added));
    InstallPending(/*announced=*/true);
    table_->Publish();
    installed_.Set(table_->Current()->size());
  }
}

}  // namespace vpn::forwarder
