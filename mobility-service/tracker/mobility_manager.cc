#include "mobility-service/tracker/mobility_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/net/ip_endpoint.h"
#include "common/store/sa_keys.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"

namespace vpn::mobility {
namespace {

constexpr char kIkePrefix[] = "ike/";
constexpr char kPathPrefix[] = "mobility/";
// Records per batched persist Txn (two ops each: the put and a guard).
constexpr size_t kPersistBatch = 60;

google::protobuf::Timestamp ToTimestamp(absl::Time time) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(time));
}

// An unset Timestamp is "never".
absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return absl::InfinitePast();
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Deterministic, so an unchanged record gives unchanged bytes.
std::string Serialize(const google::protobuf::MessageLite& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializePartialToCodedStream(&coded);
  }
  return bytes;
}

bool SameEndpoint(const v1::Endpoint& a, const v1::Endpoint& b) {
  return a.ip() == b.ip() && a.port() == b.port();
}

std::string EndpointString(const v1::Endpoint& endpoint) {
  absl::StatusOr<net::IpEndpoint> parsed = net::IpEndpoint::FromProto(endpoint);
  return parsed.ok() ? parsed->ToString() : "none";
}

// States in which an SA carries traffic and is subject to the outage window.
bool Tracks(v1::IkeSaState state) {
  return state == v1::IKE_SA_STATE_ESTABLISHED || state == v1::IKE_SA_STATE_REKEYING ||
         state == v1::IKE_SA_STATE_DORMANT;
}

std::string CauseLabel(v1::EndpointUpdate::Cause cause) {
  switch (cause) {
    case v1::EndpointUpdate::MOBIKE:
      return "mobike";
    case v1::EndpointUpdate::NAT_REBINDING:
      return "nat_rebinding";
    default:
      return "unspecified";
  }
}

// The path record key of an "ike/<spis>" key.
std::string PathKeyOf(absl::string_view ike_key) {
  return absl::StrCat(kPathPrefix, ike_key.substr(sizeof(kIkePrefix) - 1));
}

// The lease key ike-service's AddressPool writes for a virtual IP.
std::string LeaseKey(const std::string& address) {
  return absl::StrCat("pool/", address.size() == 16 ? "v6/" : "v4/",
                      absl::BytesToHexString(address));
}

// Whether a CHILD record belongs to this IKE SA (ike-service rewrites the
// CHILD records under the new SPIs when the IKE SA is rekeyed).
bool OwnedBy(const v1::ChildSa& child, const v1::IkeSa& ike) {
  return child.ike_initiator_spi() == ike.initiator_spi() &&
         child.ike_responder_spi() == ike.responder_spi();
}

std::string Hex(uint64_t spi) { return absl::StrFormat("%016x", spi); }

}  // namespace

std::string MobilityManager::IkeKey(uint64_t spi_i, uint64_t spi_r) {
  return store::IkeSaKey(spi_i, spi_r);
}

std::string MobilityManager::PathKey(uint64_t spi_i, uint64_t spi_r) {
  return absl::StrFormat("mobility/%016x-%016x", spi_i, spi_r);
}

std::string MobilityManager::ChildKey(uint32_t inbound_spi) {
  return store::ChildSaKey(inbound_spi);
}

MobilityManager::MobilityManager(store::Store* store, Clock* clock,
                                 ManagerOptions options,
                                 prometheus::Registry& registry)
    : store_(store),
      clock_(clock),
      options_(std::move(options)),
      window_(options_.outage, clock->Now()),
      tracked_gauge_(prometheus::BuildGauge()
                         .Name("mobility_sas_tracked")
                         .Help("Established IKE SAs the Mobility Manager tracks.")
                         .Register(registry)
                         .Add({})),
      dormant_gauge_(prometheus::BuildGauge()
                         .Name("mobility_sas_dormant")
                         .Help("IKE SAs whose client is silent, kept for the outage window.")
                         .Register(registry)
                         .Add({})),
      updates_family_(prometheus::BuildCounter()
                          .Name("mobility_endpoint_updates_total")
                          .Help("Endpoint changes committed to the store, by cause.")
                          .Register(registry)),
      conflicts_(prometheus::BuildCounter()
                     .Name("mobility_update_conflicts_total")
                     .Help("Compare-on-version commits that lost a race and were retried.")
                     .Register(registry)
                     .Add({})),
      expired_(prometheus::BuildCounter()
                   .Name("mobility_sas_expired_total")
                   .Help("SAs cleaned up after staying silent past the outage window.")
                   .Register(registry)
                   .Add({})) {
  updates_family_.Add({{"cause", "mobike"}});
  updates_family_.Add({{"cause", "nat_rebinding"}});
  absl::MutexLock lock(&mu_);
  last_persist_ = clock_->Now();
}

MobilityManager::~MobilityManager() { Stop(); }

void MobilityManager::Start() {
  store::WatchHandlers handlers;
  handlers.list = [this] { return ListForView(); };
  handlers.snapshot = [this](const std::vector<store::KeyValue>& kvs, int64_t revision) {
    ReplaceView(kvs, std::exchange(listed_paths_, {}), revision);
  };
  handlers.put = [this](const store::KeyValue& kv, int64_t revision) { ApplyPut(kv, revision); };
  handlers.del = [this](const store::KeyValue& kv, int64_t revision) {
    ApplyDelete(kv, revision);
  };
  store::WatchLoopOptions options;
  options.wait = absl::Milliseconds(250);
  options.what = "SAs";
  loop_ = std::make_unique<store::WatchLoop>(store_, kIkePrefix, std::move(handlers), options);
  watcher_ = std::thread([this] {
    log::SetThreadName("mob-watch");
    loop_->Run();
  });
  if (options_.sweep_interval > absl::ZeroDuration()) {
    sweeper_ = std::thread([this] {
      log::SetThreadName("mob-sweep");
      while (!stopping_.WaitForNotificationWithTimeout(options_.sweep_interval)) {
        Sweep();
      }
    });
  }
}

void MobilityManager::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (loop_ != nullptr) loop_->Stop();
  if (sweeper_.joinable()) sweeper_.join();
  if (watcher_.joinable()) watcher_.join();
}

// ---- The view of the store -------------------------------------------------

absl::StatusOr<store::ListResult> MobilityManager::ListForView() {
  // Path records first: one whose SA is absent from the later IKE list is an
  // orphan for sure (an IKE record never comes back).
  absl::StatusOr<store::ListResult> paths = store_->List(kPathPrefix);
  if (!paths.ok()) return paths.status();
  absl::StatusOr<store::ListResult> ike = store_->List(kIkePrefix);
  if (!ike.ok()) return ike.status();

  listed_paths_.clear();
  for (const store::KeyValue& kv : paths->kvs) {
    PathRecord record;
    if (record.ParseFromString(kv.value)) {
      listed_paths_[kv.key] = FromTimestamp(record.last_seen());
    }
  }
  absl::flat_hash_map<std::string, bool> live;
  for (const store::KeyValue& kv : ike->kvs) live[PathKeyOf(kv.key)] = true;
  for (const store::KeyValue& kv : paths->kvs) {
    if (live.contains(kv.key)) continue;
    absl::Status removed =
        store_->Delete(kv.key, store::Condition::VersionIs(kv.version)).status();
    if (!removed.ok() && !absl::IsNotFound(removed) && !store::IsConflict(removed)) {
      log_.Warning("cannot remove orphan path record",
                   {{"key", kv.key}, {"error", removed.message()}});
    }
  }
  return ike;
}

void MobilityManager::ReplaceView(
    const std::vector<store::KeyValue>& ike,
    const absl::flat_hash_map<std::string, absl::Time>& persisted, int64_t revision) {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_map<std::string, bool> present;
  for (const store::KeyValue& kv : ike) {
    v1::IkeSa record;
    if (!record.ParseFromString(kv.value)) continue;
    present[kv.key] = true;
    absl::Time baseline = absl::InfinitePast();
    auto stored = persisted.find(PathKeyOf(kv.key));
    if (stored != persisted.end()) baseline = stored->second;
    UpsertLocked(kv.key, record, kv.version, kv.mod_revision, baseline);
    auto it = sas_.find(kv.key);
    if (it != sas_.end()) it->second.persisted = std::max(it->second.persisted, baseline);
  }
  std::vector<std::string> gone;
  for (const auto& [key, sa] : sas_) {
    if (!present.contains(key)) gone.push_back(key);
  }
  for (const std::string& key : gone) EraseLocked(key);
  applied_revision_ = std::max(applied_revision_, revision);
  PublishGaugesLocked();
  log_.Info("SA view loaded", {{"revision", revision}, {"tracked", sas_.size()}});
}

void MobilityManager::ApplyPut(const store::KeyValue& kv, int64_t revision) {
  v1::IkeSa record;
  absl::MutexLock lock(&mu_);
  if (record.ParseFromString(kv.value)) {
    // A new SA was just established (or first written): seen now.
    UpsertLocked(kv.key, record, kv.version, kv.mod_revision, clock_->Now());
  }
  applied_revision_ = std::max(applied_revision_, revision);
  PublishGaugesLocked();
}

void MobilityManager::ApplyDelete(const store::KeyValue& kv, int64_t revision) {
  {
    absl::MutexLock lock(&mu_);
    EraseLocked(kv.key);
    applied_revision_ = std::max(applied_revision_, revision);
    PublishGaugesLocked();
  }
  // The SA ended (client DELETE, operator, or our own cleanup): its path
  // record goes with it.
  absl::Status removed = store_->Delete(PathKeyOf(kv.key)).status();
  if (!removed.ok() && !absl::IsNotFound(removed)) {
    log_.Warning("cannot remove path record", {{"key", kv.key}, {"error", removed.message()}});
  }
}

void MobilityManager::UpsertLocked(const std::string& key, const v1::IkeSa& record,
                                   int64_t version, int64_t mod_revision,
                                   absl::Time baseline) {
  if (!Tracks(record.state())) {
    EraseLocked(key);
    return;
  }
  auto [it, inserted] = sas_.try_emplace(key);
  Tracked& sa = it->second;
  if (inserted) {
    sa.spi_i = record.initiator_spi();
    sa.spi_r = record.responder_spi();
    // Not meta.updated: marking DORMANT writes it, and must not restart
    // the silence clock after a restart.
    sa.last_seen = std::max(baseline, FromTimestamp(record.established()));
    // Nothing known: give the client a whole window from now.
    if (sa.last_seen == absl::InfinitePast()) sa.last_seen = clock_->Now();
  } else if (mod_revision < sa.mod_revision) {
    return;  // older than what this tracker already applied
  }
  sa.last_seen = std::max(sa.last_seen, FromTimestamp(record.last_seen()));
  sa.version = version;
  sa.mod_revision = mod_revision;
  SetStateLocked(sa, record.state());
}

void MobilityManager::EraseLocked(const std::string& key) {
  auto it = sas_.find(key);
  if (it == sas_.end()) return;
  if (it->second.state == v1::IKE_SA_STATE_DORMANT) --dormant_count_;
  sas_.erase(it);
}

void MobilityManager::SetStateLocked(Tracked& sa, v1::IkeSaState state) {
  if (sa.state == v1::IKE_SA_STATE_DORMANT) --dormant_count_;
  if (state == v1::IKE_SA_STATE_DORMANT) ++dormant_count_;
  sa.state = state;
}

void MobilityManager::PublishGaugesLocked() {
  tracked_gauge_.Set(static_cast<double>(sas_.size()));
  dormant_gauge_.Set(static_cast<double>(dormant_count_));
}

absl::Time MobilityManager::NoteSeen(const std::string& key, absl::Time seen) {
  absl::MutexLock lock(&mu_);
  auto it = sas_.find(key);
  if (it == sas_.end()) return seen;
  it->second.last_seen = std::max(it->second.last_seen, seen);
  return it->second.last_seen;
}

bool MobilityManager::WaitForRevision(int64_t revision, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (applied_revision_ >= revision) return true;
    }
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

size_t MobilityManager::tracked() const {
  absl::MutexLock lock(&mu_);
  return sas_.size();
}

size_t MobilityManager::dormant() const {
  absl::MutexLock lock(&mu_);
  return dormant_count_;
}

absl::StatusOr<store::Versioned<PathRecord>> MobilityManager::ReadPath(
    const std::string& path_key) {
  store::Versioned<PathRecord> out;
  absl::StatusOr<store::KeyValue> kv = store_->Get(path_key);
  if (absl::IsNotFound(kv.status())) return out;  // version 0: absent
  if (!kv.ok()) return kv.status();
  out.version = kv->version;
  out.mod_revision = kv->mod_revision;
  if (!out.record.ParseFromString(kv->value)) {
    // Rewritten (under its version) by the next commit.
    log_.Warning("path record does not parse; starting it afresh", {{"key", path_key}});
    out.record.Clear();
  }
  return out;
}

void MobilityManager::NoteConflict(absl::string_view what, const absl::Status& status) {
  conflicts_.Increment();
  log_.Debug("compare-on-version conflict; retrying",
             {{"what", what}, {"error", status.message()}});
}

// ---- Endpoint updates ------------------------------------------------------

absl::StatusOr<int64_t> MobilityManager::UpdateEndpoint(const v1::EndpointUpdate& update) {
  const v1::EndpointUpdate::Cause cause = update.cause();
  if (cause != v1::EndpointUpdate::MOBIKE && cause != v1::EndpointUpdate::NAT_REBINDING) {
    return absl::InvalidArgumentError("cause: must be MOBIKE or NAT_REBINDING");
  }
  if (!update.has_remote()) return absl::InvalidArgumentError("remote: required");
  if (absl::Status s = net::IpEndpoint::FromProto(update.remote()).status(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("remote: ", s.message()));
  }
  const bool has_local = update.has_local() && !update.local().ip().empty();
  if (has_local) {
    if (absl::Status s = net::IpEndpoint::FromProto(update.local()).status(); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("local: ", s.message()));
    }
  }
  const std::string ike_key = IkeKey(update.initiator_spi(), update.responder_spi());
  const std::string path_key = PathKeyOf(ike_key);

  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    absl::StatusOr<store::Versioned<v1::IkeSa>> ike =
        store::GetProto<v1::IkeSa>(*store_, ike_key);
    if (absl::IsNotFound(ike.status())) {
      return absl::NotFoundError(absl::StrCat("no IKE SA ", ike_key));
    }
    if (!ike.ok()) return ike.status();
    const v1::IkeSa& current = ike->record;
    if (!Tracks(current.state())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "IKE SA ", ike_key, " is not established (", v1::IkeSaState_Name(current.state()),
          ")"));
    }
    if (cause == v1::EndpointUpdate::MOBIKE && !current.mobike()) {
      return absl::FailedPreconditionError(
          absl::StrCat("IKE SA ", ike_key, " did not negotiate MOBIKE"));
    }
    if (cause == v1::EndpointUpdate::NAT_REBINDING && !current.remote_behind_nat()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "IKE SA ", ike_key,
          ": NAT rebinding applies only to a client behind a NAT (RFC 7296 §2.23)"));
    }
    absl::StatusOr<store::Versioned<PathRecord>> path = ReadPath(path_key);
    if (!path.ok()) return path.status();

    const absl::Time now = clock_->Now();
    const bool moved = !SameEndpoint(current.remote(), update.remote());
    v1::IkeSa next = current;
    *next.mutable_remote() = update.remote();
    if (has_local) *next.mutable_local() = update.local();
    next.set_remote_behind_nat(update.remote_behind_nat());
    // The mover's tag, verbatim: this service holds no key, and the readers
    // accept the path only if the tag fits it (store/sa_seal.h).
    *next.mutable_path_auth() = update.path_auth();
    if (next.state() == v1::IKE_SA_STATE_DORMANT) next.set_state(v1::IKE_SA_STATE_ESTABLISHED);
    bool changed = Serialize(next) != Serialize(current);
    // RFC 3948: ESP goes in UDP when either side is behind a NAT. Without a
    // NAT the encapsulation is left as it is (a receiver accepts both).
    const bool nat = next.remote_behind_nat() || next.local_behind_nat();

    std::vector<store::Op> ops;
    ops.reserve(current.child_spis_size() + 2);
    ops.push_back(store::Op::Check(ike_key, store::Condition::VersionIs(ike->version)));
    for (uint32_t spi : current.child_spis()) {
      const std::string child_key = ChildKey(spi);
      absl::StatusOr<store::Versioned<v1::ChildSa>> child =
          store::GetProto<v1::ChildSa>(*store_, child_key);
      if (absl::IsNotFound(child.status())) {
        // Listed but not (yet, or no longer) written: must stay that way.
        ops.push_back(store::Op::Check(child_key, store::Condition::CreateOnly()));
        continue;
      }
      if (!child.ok()) return child.status();
      if (!OwnedBy(child->record, current)) {
        // Rewritten for another IKE SA (an IKE rekey): not ours to move.
        ops.push_back(store::Op::Check(child_key, store::Condition::VersionIs(child->version)));
        continue;
      }
      v1::ChildSa moved_child = child->record;
      *moved_child.mutable_local() = next.local();
      *moved_child.mutable_remote() = next.remote();
      moved_child.set_remote_behind_nat(next.remote_behind_nat());
      *moved_child.mutable_path_auth() = update.path_auth();
      if (nat) moved_child.set_encapsulation(v1::ENCAPSULATION_UDP);
      if (Serialize(moved_child) == Serialize(child->record)) {
        ops.push_back(store::Op::Check(child_key, store::Condition::VersionIs(child->version)));
        continue;
      }
      changed = true;
      *moved_child.mutable_meta()->mutable_updated() = ToTimestamp(now);
      ops.push_back(store::Op::Put(child_key, Serialize(moved_child),
                                   store::Condition::VersionIs(child->version)));
    }
    if (!changed) {
      // Already there (a retransmitted update): nothing to write.
      NoteSeen(ike_key, now);
      return ike->version;
    }

    *next.mutable_meta()->mutable_updated() = ToTimestamp(now);
    *next.mutable_last_seen() = ToTimestamp(now);
    ops[0] = store::Op::Put(ike_key, Serialize(next), store::Condition::VersionIs(ike->version));

    PathRecord history = path->record;
    if (history.history_size() == 0) {
      v1::PathEntry* first = history.add_history();
      *first->mutable_remote() = current.remote();
      *first->mutable_since() =
          current.has_established() ? current.established() : ToTimestamp(now);
      first->set_cause(v1::EndpointUpdate::CAUSE_UNSPECIFIED);
    }
    if (moved) {
      v1::PathEntry* entry = history.add_history();
      *entry->mutable_remote() = update.remote();
      *entry->mutable_since() = ToTimestamp(now);
      entry->set_cause(cause);
    }
    const int excess = history.history_size() - static_cast<int>(options_.history_limit);
    if (excess > 0) history.mutable_history()->DeleteSubrange(0, excess);
    *history.mutable_last_seen() = ToTimestamp(now);
    ops.push_back(store::Op::Put(path_key, Serialize(history),
                                 store::Condition::VersionIs(path->version)));

    absl::StatusOr<store::TxnResult> committed = store_->Txn(ops);
    if (store::IsConflict(committed.status())) {
      NoteConflict("endpoint update", committed.status());
      continue;
    }
    if (!committed.ok()) return committed.status();

    updates_family_.Add({{"cause", CauseLabel(cause)}}).Increment();
    {
      absl::MutexLock lock(&mu_);
      UpsertLocked(ike_key, next, committed->versions[0], committed->revision, now);
      auto it = sas_.find(ike_key);
      if (it != sas_.end()) {
        it->second.last_seen = std::max(it->second.last_seen, now);
        it->second.persisted = std::max(it->second.persisted, now);
      }
      PublishGaugesLocked();
    }
    log_.Info("endpoint updated", {{"spi_i", Hex(update.initiator_spi())},
                                   {"spi_r", Hex(update.responder_spi())},
                                   {"cause", CauseLabel(cause)},
                                   {"from", EndpointString(current.remote())},
                                   {"to", EndpointString(next.remote())},
                                   {"local", EndpointString(next.local())},
                                   {"behind_nat", next.remote_behind_nat()},
                                   {"child_sas", current.child_spis_size()},
                                   {"attempts", attempt}});
    return committed->versions[0];
  }
  return absl::AbortedError(absl::StrCat("endpoint update of ", ike_key, " still conflicted after ",
                                         options_.max_attempts, " attempts"));
}

// ---- Liveness --------------------------------------------------------------

absl::Status MobilityManager::ReportLiveness(uint64_t spi_i, uint64_t spi_r,
                                             absl::Time last_seen) {
  const absl::Time now = clock_->Now();
  const absl::Time seen =
      (last_seen == absl::InfinitePast() || last_seen > now) ? now : last_seen;
  const std::string key = IkeKey(spi_i, spi_r);
  bool known = false;
  bool revive = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = sas_.find(key);
    if (it != sas_.end()) {
      known = true;
      it->second.last_seen = std::max(it->second.last_seen, seen);
      revive = it->second.state == v1::IKE_SA_STATE_DORMANT &&
               window_.Judge(it->second.last_seen, now) == Liveness::kAlive;
    }
  }
  if (!known) {
    // Not in the view yet (the watch lags a fresh SA by milliseconds).
    absl::StatusOr<store::Versioned<v1::IkeSa>> ike = store::GetProto<v1::IkeSa>(*store_, key);
    if (absl::IsNotFound(ike.status())) {
      return absl::NotFoundError(absl::StrCat("no IKE SA ", key));
    }
    if (!ike.ok()) return ike.status();
    absl::MutexLock lock(&mu_);
    UpsertLocked(key, ike->record, ike->version, ike->mod_revision, seen);
    auto it = sas_.find(key);
    if (it != sas_.end()) {
      it->second.last_seen = std::max(it->second.last_seen, seen);
      revive = it->second.state == v1::IKE_SA_STATE_DORMANT &&
               window_.Judge(it->second.last_seen, now) == Liveness::kAlive;
    }
    PublishGaugesLocked();
  }
  return revive ? Transit(key, Transition::kRevive) : absl::OkStatus();
}

absl::StatusOr<v1::PathReply> MobilityManager::GetPath(uint64_t spi_i, uint64_t spi_r) {
  const std::string key = IkeKey(spi_i, spi_r);
  absl::StatusOr<store::Versioned<v1::IkeSa>> ike = store::GetProto<v1::IkeSa>(*store_, key);
  if (absl::IsNotFound(ike.status())) return absl::NotFoundError(absl::StrCat("no IKE SA ", key));
  if (!ike.ok()) return ike.status();
  absl::StatusOr<store::Versioned<PathRecord>> path = ReadPath(PathKeyOf(key));
  if (!path.ok()) return path.status();

  v1::PathReply reply;
  *reply.mutable_current() = ike->record.remote();
  absl::Time last_seen = std::max(FromTimestamp(ike->record.last_seen()),
                                  FromTimestamp(path->record.last_seen()));
  {
    absl::MutexLock lock(&mu_);
    auto it = sas_.find(key);
    if (it != sas_.end()) last_seen = std::max(last_seen, it->second.last_seen);
  }
  if (last_seen != absl::InfinitePast()) *reply.mutable_last_seen() = ToTimestamp(last_seen);
  if (path->record.history_size() > 0) {
    *reply.mutable_history() = path->record.history();
  } else {
    v1::PathEntry* entry = reply.add_history();
    *entry->mutable_remote() = ike->record.remote();
    *entry->mutable_since() = ike->record.established();
  }
  reply.set_dormant(ike->record.state() == v1::IKE_SA_STATE_DORMANT);
  return reply;
}

// ---- The outage window -----------------------------------------------------

void MobilityManager::Sweep() {
  const absl::Time now = clock_->Now();
  const bool settled = window_.Settled(now);
  std::vector<std::string> revive, dormant, expire;
  bool persist = false;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, sa] : sas_) {
      const Liveness liveness = window_.Judge(sa.last_seen, now);
      if (sa.state == v1::IKE_SA_STATE_DORMANT && liveness == Liveness::kAlive) {
        revive.push_back(key);
      } else if (!settled || sa.state == v1::IKE_SA_STATE_REKEYING) {
        continue;
      } else if (liveness == Liveness::kExpired) {
        expire.push_back(key);
      } else if (liveness == Liveness::kSilent && sa.state == v1::IKE_SA_STATE_ESTABLISHED) {
        dormant.push_back(key);
      }
    }
    persist = now - last_persist_ >= options_.persist_interval;
  }
  for (const std::string& key : revive) {
    if (absl::Status s = Transit(key, Transition::kRevive); !s.ok()) {
      log_.Warning("cannot clear DORMANT", {{"key", key}, {"error", s.message()}});
    }
  }
  for (const std::string& key : dormant) {
    if (absl::Status s = Transit(key, Transition::kMarkDormant); !s.ok()) {
      log_.Warning("cannot mark SA DORMANT", {{"key", key}, {"error", s.message()}});
    }
  }
  for (const std::string& key : expire) {
    if (absl::Status s = Expire(key); !s.ok()) {
      log_.Warning("cannot clean up expired SA", {{"key", key}, {"error", s.message()}});
    }
  }
  if (persist) PersistLiveness();
}

absl::StatusOr<absl::optional<MobilityManager::Snapshot>> MobilityManager::ReadSnapshot(
    const std::string& key, const std::string& path_key) {
  absl::StatusOr<store::Versioned<v1::IkeSa>> ike = store::GetProto<v1::IkeSa>(*store_, key);
  if (absl::IsNotFound(ike.status())) {
    absl::MutexLock lock(&mu_);
    EraseLocked(key);
    PublishGaugesLocked();
    return absl::nullopt;
  }
  if (!ike.ok()) return ike.status();
  absl::StatusOr<store::Versioned<PathRecord>> path = ReadPath(path_key);
  if (!path.ok()) return path.status();
  // Another replica (or this one before a restart) may have seen it later.
  const absl::Time last_seen =
      NoteSeen(key, std::max(FromTimestamp(ike->record.last_seen()),
                             FromTimestamp(path->record.last_seen())));
  if (last_seen == absl::InfinitePast()) return absl::nullopt;  // untracked meanwhile
  return Snapshot{std::move(*ike), std::move(*path), last_seen};
}

absl::Status MobilityManager::Transit(const std::string& key, Transition transition) {
  const std::string path_key = PathKeyOf(key);
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    absl::StatusOr<absl::optional<Snapshot>> read = ReadSnapshot(key, path_key);
    if (!read.ok()) return read.status();
    if (!read->has_value()) return absl::OkStatus();
    const store::Versioned<v1::IkeSa>* ike = &(*read)->ike;
    const store::Versioned<PathRecord>* path = &(*read)->path;
    const absl::Time last_seen = (*read)->last_seen;
    const absl::Time now = clock_->Now();
    const Liveness liveness = window_.Judge(last_seen, now);

    v1::IkeSa next = ike->record;
    std::vector<store::Op> ops;
    if (transition == Transition::kMarkDormant) {
      if (next.state() != v1::IKE_SA_STATE_ESTABLISHED || liveness == Liveness::kAlive) {
        return absl::OkStatus();
      }
      next.set_state(v1::IKE_SA_STATE_DORMANT);
      *next.mutable_meta()->mutable_updated() = ToTimestamp(now);
      ops.push_back(store::Op::Put(key, Serialize(next),
                                   store::Condition::VersionIs(ike->version)));
      // A liveness persisted meanwhile (another replica) must win.
      ops.push_back(store::Op::Check(path_key, store::Condition::VersionIs(path->version)));
    } else {
      if (next.state() != v1::IKE_SA_STATE_DORMANT || liveness != Liveness::kAlive) {
        return absl::OkStatus();
      }
      next.set_state(v1::IKE_SA_STATE_ESTABLISHED);
      *next.mutable_meta()->mutable_updated() = ToTimestamp(now);
      PathRecord record = path->record;
      *record.mutable_last_seen() = ToTimestamp(last_seen);
      ops.push_back(store::Op::Put(key, Serialize(next),
                                   store::Condition::VersionIs(ike->version)));
      ops.push_back(store::Op::Put(path_key, Serialize(record),
                                   store::Condition::VersionIs(path->version)));
    }
    absl::StatusOr<store::TxnResult> committed = store_->Txn(ops);
    if (store::IsConflict(committed.status())) {
      NoteConflict(transition == Transition::kRevive ? "revive" : "mark dormant",
                   committed.status());
      continue;
    }
    if (!committed.ok()) return committed.status();
    {
      absl::MutexLock lock(&mu_);
      UpsertLocked(key, next, committed->versions[0], committed->revision, now);
      auto it = sas_.find(key);
      if (it != sas_.end() && transition == Transition::kRevive) {
        it->second.persisted = std::max(it->second.persisted, last_seen);
      }
      PublishGaugesLocked();
    }
    if (transition == Transition::kMarkDormant) {
      log_.Info("client silent; SA kept DORMANT for the outage window",
                {{"spi_i", Hex(next.initiator_spi())},
                 {"spi_r", Hex(next.responder_spi())},
                 {"silent_s", absl::ToInt64Seconds(now - last_seen)},
                 {"expires_in_s", absl::ToInt64Seconds(window_.ExpiresAt(last_seen) - now)}});
    } else {
      log_.Info("client is back; SA no longer DORMANT",
                {{"spi_i", Hex(next.initiator_spi())},
                 {"spi_r", Hex(next.responder_spi())},
                 {"remote", EndpointString(next.remote())}});
    }
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat("state change of ", key, " still conflicted after ",
                                         options_.max_attempts, " attempts"));
}

absl::Status MobilityManager::Expire(const std::string& key) {
  const std::string path_key = PathKeyOf(key);
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    absl::StatusOr<absl::optional<Snapshot>> read = ReadSnapshot(key, path_key);
    if (!read.ok()) return read.status();
    if (!read->has_value()) return absl::OkStatus();
    const store::Versioned<v1::IkeSa>* ike = &(*read)->ike;
    const store::Versioned<PathRecord>* path = &(*read)->path;
    const absl::Time last_seen = (*read)->last_seen;
    const absl::Time now = clock_->Now();
    const v1::IkeSaState state = ike->record.state();
    if (window_.Judge(last_seen, now) != Liveness::kExpired ||
        (state != v1::IKE_SA_STATE_ESTABLISHED && state != v1::IKE_SA_STATE_DORMANT)) {
      return absl::OkStatus();
    }

    std::vector<store::Op> ops;
    ops.push_back(store::Op::Delete(key, store::Condition::VersionIs(ike->version)));
    for (uint32_t spi : ike->record.child_spis()) {
      const std::string child_key = ChildKey(spi);
      absl::StatusOr<store::KeyValue> kv = store_->Get(child_key);
      if (absl::IsNotFound(kv.status())) continue;
      if (!kv.ok()) return kv.status();
      // After an IKE rekey the CHILD SAs belong to the new IKE SA: keep them.
      // (One that does not parse is listed by this SA alone: deleted.)
      v1::ChildSa child;
      if (child.ParseFromString(kv->value) && !OwnedBy(child, ike->record)) continue;
      ops.push_back(store::Op::Delete(child_key, store::Condition::VersionIs(kv->version)));
    }
    ops.push_back(path->version > 0
                      ? store::Op::Delete(path_key, store::Condition::VersionIs(path->version))
                      : store::Op::Check(path_key, store::Condition::CreateOnly()));
    // The virtual IPs go back to the pool: the lease keys this SA holds.
    int released = 0;
    for (const std::string& address : ike->record.virtual_ips()) {
      const std::string lease_key = LeaseKey(address);
      absl::StatusOr<store::KeyValue> lease = store_->Get(lease_key);
      if (absl::IsNotFound(lease.status())) continue;
      if (!lease.ok()) return lease.status();
      if (lease->value != key) {
        log_.Warning("virtual IP lease belongs to another SA; left alone",
                     {{"lease", lease_key}, {"sa", key}});
        continue;
      }
      ops.push_back(store::Op::Delete(lease_key, store::Condition::VersionIs(lease->version)));
      ++released;
    }
    absl::StatusOr<store::TxnResult> committed = store_->Txn(ops);
    if (store::IsConflict(committed.status())) {
      NoteConflict("outage cleanup", committed.status());
      continue;
    }
    if (!committed.ok()) return committed.status();
    expired_.Increment();
    {
      absl::MutexLock lock(&mu_);
      EraseLocked(key);
      PublishGaugesLocked();
    }
    log_.Info("client silent past the outage window; SA deleted",
              {{"spi_i", Hex(ike->record.initiator_spi())},
               {"spi_r", Hex(ike->record.responder_spi())},
               {"silent_s", absl::ToInt64Seconds(now - last_seen)},
               {"child_sas", ike->record.child_spis_size()},
               {"virtual_ips_released", released}});
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat("cleanup of ", key, " still conflicted after ",
                                         options_.max_attempts, " attempts"));
}

// ---- Persisting last_seen --------------------------------------------------

void MobilityManager::PersistLiveness() {
  struct Dirty {
    std::string key;
    absl::Time last_seen;
    int64_t version;
  };
  std::vector<Dirty> dirty;
  {
    absl::MutexLock lock(&mu_);
    last_persist_ = clock_->Now();
    for (const auto& [key, sa] : sas_) {
      if (sa.last_seen > sa.persisted) dirty.push_back({key, sa.last_seen, sa.version});
    }
  }
  if (dirty.empty()) return;
  absl::StatusOr<store::ListResult> listed = store_->List(kPathPrefix);
  if (!listed.ok()) {
    log_.Warning("cannot persist liveness", {{"error", listed.status().message()}});
    return;
  }
  absl::flat_hash_map<std::string, const store::KeyValue*> stored;
  for (const store::KeyValue& kv : listed->kvs) stored[kv.key] = &kv;

  auto mark = [this](const std::string& key, absl::Time persisted) {
    absl::MutexLock lock(&mu_);
    auto it = sas_.find(key);
    if (it != sas_.end()) it->second.persisted = std::max(it->second.persisted, persisted);
  };
  for (size_t begin = 0; begin < dirty.size(); begin += kPersistBatch) {
    const size_t end = std::min(dirty.size(), begin + kPersistBatch);
    std::vector<store::Op> ops;
    std::vector<const Dirty*> batch;
    for (size_t i = begin; i < end; ++i) {
      const Dirty& entry = dirty[i];
      const std::string path_key = PathKeyOf(entry.key);
      PathRecord record;
      int64_t version = 0;
      auto it = stored.find(path_key);
      if (it != stored.end()) {
        version = it->second->version;
        if (!record.ParseFromString(it->second->value)) record.Clear();
      }
      const absl::Time before = FromTimestamp(record.last_seen());
      if (before >= entry.last_seen) {
        mark(entry.key, before);
        continue;
      }
      *record.mutable_last_seen() = ToTimestamp(entry.last_seen);
      ops.push_back(store::Op::Put(path_key, Serialize(record),
                                   store::Condition::VersionIs(version)));
      // Never recreate the path record of an SA deleted meanwhile.
      ops.push_back(store::Op::Check(entry.key, store::Condition::VersionIs(entry.version)));
      batch.push_back(&entry);
    }
    if (ops.empty()) continue;
    absl::StatusOr<store::TxnResult> committed = store_->Txn(ops);
    if (committed.ok()) {
      for (const Dirty* entry : batch) mark(entry->key, entry->last_seen);
      continue;
    }
    if (!store::IsConflict(committed.status())) {
      log_.Warning("cannot persist liveness", {{"error", committed.status().message()}});
      continue;
    }
    NoteConflict("persist liveness (batch)", committed.status());
    for (const Dirty* entry : batch) {
      if (absl::Status s = PersistOne(entry->key, entry->last_seen); !s.ok()) {
        log_.Warning("cannot persist liveness", {{"key", entry->key}, {"error", s.message()}});
      }
    }
  }
}

absl::Status MobilityManager::PersistOne(const std::string& key, absl::Time last_seen) {
  const std::string path_key = PathKeyOf(key);
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    absl::StatusOr<store::KeyValue> ike = store_->Get(key);
    if (absl::IsNotFound(ike.status())) return absl::OkStatus();
    if (!ike.ok()) return ike.status();
    absl::StatusOr<store::Versioned<PathRecord>> path = ReadPath(path_key);
    if (!path.ok()) return path.status();
    const absl::Time before = FromTimestamp(path->record.last_seen());
    if (before < last_seen) {
      PathRecord record = path->record;
      *record.mutable_last_seen() = ToTimestamp(last_seen);
      absl::StatusOr<store::TxnResult> committed = store_->Txn(
          {store::Op::Put(path_key, Serialize(record),
                          store::Condition::VersionIs(path->version)),
           store::Op::Check(key, store::Condition::VersionIs(ike->version))});
      if (store::IsConflict(committed.status())) {
        NoteConflict("persist liveness", committed.status());
        continue;
      }
      if (!committed.ok()) return committed.status();
    }
    absl::MutexLock lock(&mu_);
    auto it = sas_.find(key);
    if (it != sas_.end()) {
      it->second.persisted = std::max({it->second.persisted, before, last_seen});
    }
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat("persisting liveness of ", key,
                                         " still conflicted after ", options_.max_attempts,
                                         " attempts"));
}

}  // namespace vpn::mobility
