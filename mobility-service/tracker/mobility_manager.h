// The Mobility Manager: the one place client endpoint changes are committed
// to the store, and the keeper of the outage window.
//
// - UpdateEndpoint rewrites an IKE SA record and all its CHILD SA records in
//   one store Txn, every record guarded by compare-on-version; a conflict
//   (a rekey, a rewrite by ike-service, another replica) re-reads and
//   retries, so neither write is lost. It appends to the SA's path history
//   ("mobility/<spi_i>-<spi_r>", a PathRecord) in the same Txn.
// - ReportLiveness keeps last_seen in memory; it reaches the store
//   periodically (persist_interval) and on state changes, never per packet.
// - Sweep() marks SAs silent past liveness_timeout DORMANT in their IKE
//   record, revives them when they are seen again, and past outage_window
//   deletes the IKE, CHILD and path records and the SA's virtual-IP leases
//   in one Txn, so the addresses go back to the pool.
// - A watch on "ike/" (List, then Watch from the next revision; kResync
//   replaces the view) tells the tracker every SA, also after a restart:
//   all state is rebuilt from the store.
//
// Several replicas may run against one store: every decision re-reads the
// records it acts on and commits with compare-on-version.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/log/log.h"
#include "common/store/store.h"
#include "common/store/watch_loop.h"
#include "mobility-service/outage/outage_policy.h"
#include "mobility-service/tracker/clock.h"
#include "mobility-service/tracker/path_record.pb.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "proto/vpn/v1/mobility.pb.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn::mobility {

struct ManagerOptions {
  OutageOptions outage;
  // How often a newer last_seen is written to the store (batched). Must be
  // shorter than outage.liveness_timeout, so another replica (or this one
  // after a restart) sees a live client as live.
  absl::Duration persist_interval = absl::Seconds(30);
  // Path history entries kept per SA.
  size_t history_limit = 16;
  // Attempts of one compare-on-version commit before giving up (kAborted).
  int max_attempts = 8;
  // Background sweep period; zero: no sweeper thread (tests call Sweep()).
  absl::Duration sweep_interval = absl::Seconds(1);
};

class MobilityManager {
 public:
  // `store` and `clock` must outlive the manager.
  MobilityManager(store::Store* store, Clock* clock, ManagerOptions options,
                  prometheus::Registry& registry);
  ~MobilityManager();

  MobilityManager(const MobilityManager&) = delete;
  MobilityManager& operator=(const MobilityManager&) = delete;

  // Starts the "ike/" watch (which first lists the store) and the sweeper.
  void Start();
  void Stop();

  // Moves the SA to update.local (kept when unset) / update.remote, with
  // update.path_auth copied verbatim into the IKE and CHILD records (the
  // mover's tag; this service cannot make or check one); returns
  // the IKE record's version after the commit (its current version when
  // nothing changed). kNotFound: no such SA; kInvalidArgument: bad fields;
  // kFailedPrecondition: the cause does not apply to this SA; kAborted:
  // still conflicting after max_attempts.
  absl::StatusOr<int64_t> UpdateEndpoint(const v1::EndpointUpdate& update);

  // The client was seen at `last_seen` (clamped to now; InfinitePast: now).
  // Clears DORMANT at once if the SA was dormant. kNotFound: no such SA.
  absl::Status ReportLiveness(uint64_t spi_i, uint64_t spi_r, absl::Time last_seen);

  // Current endpoint, last_seen, history and dormant flag, from the store.
  absl::StatusOr<v1::PathReply> GetPath(uint64_t spi_i, uint64_t spi_r);

  // One pass of the outage window, then a batched persist of last_seen
  // when persist_interval has passed. Run by the sweeper; public for tests.
  void Sweep();

  // Writes every last_seen newer than the stored one now.
  void PersistLiveness();

  // Waits until the view reflects `revision`: that of a write under "ike/"
  // (the watch reports no other), or any revision before the last List.
  bool WaitForRevision(int64_t revision, absl::Duration timeout);
  size_t tracked() const;
  size_t dormant() const;

  static std::string IkeKey(uint64_t spi_i, uint64_t spi_r);
  static std::string PathKey(uint64_t spi_i, uint64_t spi_r);
  static std::string ChildKey(uint32_t inbound_spi);

 private:
  // What the tracker knows of one SA.
  struct Tracked {
    uint64_t spi_i = 0;
    uint64_t spi_r = 0;
    v1::IkeSaState state = v1::IKE_SA_STATE_UNSPECIFIED;
    int64_t version = 0;       // of the IKE record, as last seen
    int64_t mod_revision = 0;  // of the IKE record, as last seen
    absl::Time last_seen = absl::InfinitePast();
    absl::Time persisted = absl::InfinitePast();  // last_seen in the store
  };
  enum class Transition { kMarkDormant, kRevive };

  // The watch loop's listing: "mobility/" (into listed_paths_, deleting
  // orphans), then "ike/", which it returns.
  absl::StatusOr<store::ListResult> ListForView();
  void ReplaceView(const std::vector<store::KeyValue>& ike,
                   const absl::flat_hash_map<std::string, absl::Time>& persisted,
                   int64_t revision);
  void ApplyPut(const store::KeyValue& kv, int64_t revision);
  void ApplyDelete(const store::KeyValue& kv, int64_t revision);
  // Inserts or refreshes an SA from its IKE record (under mu_).
  void UpsertLocked(const std::string& key, const v1::IkeSa& record, int64_t version,
                    int64_t mod_revision, absl::Time baseline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetStateLocked(Tracked& sa, v1::IkeSaState state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishGaugesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Raises the in-memory last_seen; returns the result (InfinitePast when
  // the SA is not tracked).
  absl::Time NoteSeen(const std::string& key, absl::Time seen);

  absl::Status Transit(const std::string& key, Transition transition);
  absl::Status Expire(const std::string& key);
  absl::Status PersistOne(const std::string& key, absl::Time last_seen);
  absl::StatusOr<store::Versioned<PathRecord>> ReadPath(const std::string& path_key);
  // One SA as a state change reads it: its IKE and path records and when its
  // client was last seen (the later of both, raised in memory too).
  struct Snapshot {
    store::Versioned<v1::IkeSa> ike;
    store::Versioned<PathRecord> path;
    absl::Time last_seen;
  };
  // nullopt when there is nothing to change: the record is gone (then the
  // SA is forgotten here too) or the SA is no longer tracked.
  absl::StatusOr<absl::optional<Snapshot>> ReadSnapshot(const std::string& key,
                                                        const std::string& path_key);
  // The record committed; counts and logs a conflict.
  void NoteConflict(absl::string_view what, const absl::Status& status);

  store::Store* const store_;
  Clock* const clock_;
  const ManagerOptions options_;
  const OutageWindow window_;
  const log::Logger log_{"mobility-service"};

  prometheus::Gauge& tracked_gauge_;
  prometheus::Gauge& dormant_gauge_;
  prometheus::Family<prometheus::Counter>& updates_family_;
  prometheus::Counter& conflicts_;
  prometheus::Counter& expired_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Tracked> sas_ ABSL_GUARDED_BY(mu_);
  size_t dormant_count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t applied_revision_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_persist_ ABSL_GUARDED_BY(mu_);

  absl::Notification stopping_;
  std::unique_ptr<store::WatchLoop> loop_;
  std::thread watcher_;
  // Path records of the last listing, for the snapshot that follows it
  // (both on the loop's thread).
  absl::flat_hash_map<std::string, absl::Time> listed_paths_;
  std::thread sweeper_;
};

}  // namespace vpn::mobility
