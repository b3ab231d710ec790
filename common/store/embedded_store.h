// The default Store backend: in-process MVCC over an ordered map, made
// durable by a write-ahead log and snapshots in a data directory.
//
// Durability: a write is acknowledged only after its WAL record was written
// and fdatasync()ed; concurrent writers share one fdatasync (group commit).
// Reads and watch events only expose durable writes. When the active WAL
// segment exceeds `segment_bytes`, a new segment is started and a snapshot of
// the state is written in the background; older segments and snapshots are
// then deleted, so the directory stays bounded.
//
// Recovery (Open): loads the newest snapshot, replays the WAL after it, and
// truncates a torn or corrupt tail of the last segment, keeping the valid
// prefix (see recovery_notes()). Corruption anywhere else is kDataLoss.
//
// Layout of the data directory:
//   LOCK                        flock()ed while open (one process at a time)
//   wal-<seq, 16 digits>.log    WAL segments
//   snap-<lsn, 16 digits>.snap  snapshots (written as .tmp, then renamed)
//
// Leases are not persisted with their deadlines: after a restart every lease
// gets its full TTL again (as etcd does after a leader change).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/store/store.h"
#include "common/store/wal_format.h"

namespace vpn::store {

struct EmbeddedOptions {
  std::string dir;
  // Rotate the WAL and snapshot once the active segment is this large.
  uint64_t segment_bytes = 64ull << 20;
  // Watch history kept in memory (events); older history is compacted.
  size_t history_limit = 100000;
  // A watcher more than this many undelivered events behind gets a kResync.
  size_t watch_queue_limit = 10000;
  // How often expired leases are looked for.
  absl::Duration lease_check_interval = absl::Milliseconds(100);
};

namespace embedded_internal {
struct WatchState;
}

class EmbeddedStore : public Store {
 public:
  static absl::StatusOr<std::unique_ptr<EmbeddedStore>> Open(
      const EmbeddedOptions& options);
  ~EmbeddedStore() override;

  absl::StatusOr<KeyValue> Get(absl::string_view key) override;
  absl::StatusOr<ListResult> List(absl::string_view prefix) override;
  absl::StatusOr<WriteResult> Put(absl::string_view key,
                                  absl::string_view value,
                                  const PutOptions& options = {}) override;
  absl::StatusOr<WriteResult> Delete(absl::string_view key,
                                     const Condition& condition =
                                         Condition::Any()) override;
  absl::StatusOr<TxnResult> Txn(const std::vector<Op>& ops) override;
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(absl::string_view prefix,
                                                 int64_t from_revision) override;
  absl::StatusOr<LeaseId> GrantLease(absl::Duration ttl) override;
  absl::Status KeepAlive(LeaseId lease) override;
  absl::Status RevokeLease(LeaseId lease) override;
  absl::Status Compact(int64_t revision) override;

  // What recovery found and repaired, one clear message each (also logged).
  const std::vector<std::string>& recovery_notes() const {
    return recovery_notes_;
  }
  // Rotates the WAL and writes a snapshot now; returns when it is on disk.
  absl::Status Snapshot();
  int64_t revision();

 private:
  struct LeaseState {
    int64_t ttl_ms = 0;
    absl::Time deadline;
    std::set<std::string> keys;
  };
  struct HistoryEvent {
    uint64_t lsn;
    WatchEvent event;
  };
  struct SnapshotJob {
    uint64_t lsn = 0;
    uint64_t first_kept_segment = 0;
    std::string frames;  // encoded snapshot records
  };

  explicit EmbeddedStore(const EmbeddedOptions& options);
  absl::Status Recover();
  absl::Status LoadSnapshot(const std::string& path, uint64_t* lsn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replays WAL records after *last_lsn; drops segments after a damaged
  // tail from *segments.
  absl::Status ReplaySegments(std::vector<uint64_t>* segments,
                              uint64_t* last_lsn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Applies a (validated) record to the in-memory state; returns the events
  // it produced. Used both live and on replay.
  std::vector<WatchEvent> ApplyLocked(const wal::Record& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Assigns the next LSN, applies the record, queues it for the WAL and
  // hands its events to watchers. Returns the LSN to wait for.
  uint64_t CommitLocked(wal::Record record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops history below compact_revision_ and beyond history_limit.
  void TrimHistoryLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Blocks until `lsn` is durable (this thread may do the write + fdatasync).
  absl::Status WaitDurableLocked(uint64_t lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WaitAllDurableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return WaitDurableLocked(appended_lsn_);
  }
  // Starts a new segment and a background snapshot if due (or if forced).
  void MaybeRotateLocked(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteSnapshot(SnapshotJob job);
  void NotifyWatchersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchLocked(const std::vector<WatchEvent>& events, uint64_t lsn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<KeyValue> ScanLocked(absl::string_view prefix)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<TxnResult> TxnLocked(const std::vector<Op>& ops, bool wait_durable = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RevokeLocked(const std::vector<LeaseId>& leases,
                            uint64_t* lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LeaseLoop();
  std::string SegmentPath(uint64_t seq) const;
  std::string SnapshotPath(uint64_t lsn) const;

  const EmbeddedOptions options_;
  int lock_fd_ = -1;
  std::vector<std::string> recovery_notes_;

  absl::Mutex mu_;
  absl::CondVar flushed_cv_;
  std::map<std::string, KeyValue, std::less<>> kvs_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Events with a lower revision are no longer in history_.
  int64_t compact_revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<HistoryEvent> history_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<LeaseId, LeaseState> leases_ ABSL_GUARDED_BY(mu_);
  LeaseId next_lease_id_ ABSL_GUARDED_BY(mu_) = 1;

  // WAL state.
  std::string pending_ ABSL_GUARDED_BY(mu_);  // encoded, not yet written
  uint64_t appended_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  bool flushing_ ABSL_GUARDED_BY(mu_) = false;
  int wal_fd_ ABSL_GUARDED_BY(mu_) = -1;
  uint64_t wal_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t wal_size_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  bool snapshot_running_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t snapshots_done_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread snapshot_thread_ ABSL_GUARDED_BY(mu_);

  std::vector<std::shared_ptr<embedded_internal::WatchState>> watchers_
      ABSL_GUARDED_BY(mu_);

  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::thread lease_thread_;
};

}  // namespace vpn::store
