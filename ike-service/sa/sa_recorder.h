// Writes IKE and CHILD SA records to the versioned store, keys sealed, so
// the forwarder can install CHILD SAs and other replicas can take over.
//
// With write-behind on, each write is built (and its keys sealed) on the
// calling thread and then committed, in call order, by one writer thread:
// an IKE worker does not wait for the store's fsync while the next message
// of the same SA (e.g. a return-routability answer) waits behind it. The
// response to the client has left before the write either way. A full queue
// falls back to writing at once; Flush() waits for what is queued; Stop()
// drains the queue before the process ends.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/log/log.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "common/store/sealer.h"
#include "common/store/store.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/sa/ike_sa.h"
#include "common/store/sa_seal.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn::ike {

class SaRecorder {
 public:
  SaRecorder(store::Store* store, const store::Sealer* sealer, std::string replica,
             const ResponderPolicy* policy)
      : store_(store), sealer_(sealer), replica_(std::move(replica)), policy_(policy) {}
  ~SaRecorder();

  // Turns write-behind on (see above); writes return once queued. Failures
  // are logged and counted in ike_record_write_failures_total. The writer
  // lets writes gather for up to `batch_window` after the first before it
  // commits (one fsync for many SAs' writes), unless Flush() waits or a
  // transaction's worth is queued.
  void StartWriteBehind(prometheus::Registry& registry, size_t queue_limit = 4096,
                        absl::Duration batch_window = absl::Milliseconds(2));
  // Returns once every write queued before the call is committed.
  void Flush();
  // Runs `task` (more store work of an SA, e.g. releasing its address
  // lease) after the writes queued before it; at once without write-behind.
  void Defer(std::function<void()> task);
  // Drains the queue and ends the writer thread (writes are then direct).
  void Stop();

  // How RecordEstablished writes the CHILD SA records.
  enum class Children {
    kNew,       // created (an SPI is unique gateway-wide: create-only)
    kRekeyed,   // rewritten for the new IKE SA, keeping the stored path
    kMoved,     // rewritten with this SA's path (a move written directly)
  };
  // The IKE SA and every CHILD SA, in one transaction. A rekeyed SA's CHILD
  // records keep the path mobility-service may have moved them to, compare-
  // on-version; one deleted meanwhile stays deleted.
  absl::Status RecordEstablished(const IkeSa& sa, Children children = Children::kNew);
  // The IKE SA's record alone (message IDs of the gateway's own requests,
  // which a restarted replica must continue from).
  absl::Status RecordIke(const IkeSa& sa);
  // One new CHILD SA of an established IKE SA (CREATE_CHILD_SA), with the
  // IKE SA's record that lists it, in one transaction.
  absl::Status RecordChild(const IkeSa& sa, const ChildSaState& child);
  // Deletes the IKE SA's record and its CHILD SAs'.
  absl::Status RemoveSa(const IkeSa& sa);
  absl::Status RemoveChild(const ChildSaState& child);
  // Conditional deletes of the address leases (AddressPool::ReleaseOp) of
  // the IKE SA recorded under `sa_key`, after what is queued; a lease no
  // longer as written is left alone, and none of an SA another replica took
  // over is released.
  absl::Status ReleaseLeases(std::vector<store::Op> releases, std::string sa_key);

  static std::string ChildKey(uint32_t inbound_spi);

  // Rebuilds the established IKE SAs this replica owns from their records
  // and sealed keys, after a restart. Records that do not open are skipped
  // and counted in `skipped`.
  absl::StatusOr<std::vector<std::unique_ptr<IkeSa>>> LoadOwned(size_t* skipped) const;

  // Takes over an established IKE SA that another replica owned (the
  // forwarders route its datagrams here once that replica is gone): rebuilds
  // it from its records and, if `accept` takes it, writes this replica as
  // its owner, compare-on-version. kNotFound: no such established SA;
  // kPermissionDenied: `accept` refused (nothing written); a conflict: it
  // changed meanwhile (e.g. another replica took it). `previous_owner` is
  // set.
  absl::StatusOr<std::unique_ptr<IkeSa>> TakeOver(
      uint64_t spi_i, uint64_t spi_r, const std::function<bool(const IkeSa&)>& accept,
      std::string* previous_owner);

  const std::string& replica() const { return replica_; }

  // Counts records that do not verify (ike_store_records_rejected_total
  // {reason}: seal, or a path verdict) in `registry`.
  void CountRejectedIn(prometheus::Registry& registry);
  // The path tag of `sa`'s current path at `generation`, for a move this
  // replica authorizes (EndpointUpdate.path_auth).
  absl::StatusOr<v1::PathAuth> TagPath(const IkeSa& sa, uint64_t generation) const;
  // Whether `record`'s path may be followed by an SA that has applied
  // `min_generation`; counts a rejection.
  store::PathVerdict CheckPath(const v1::IkeSa& record, uint64_t min_generation) const;
  // The store version of an IKE record as this replica last wrote, loaded or
  // took it over; 0 if none.
  int64_t KnownVersion(const std::string& key) const;
  // The store revision of this replica's last write of an IKE record (or
  // of the record it loaded or took over); 0 if none.
  int64_t KnownRevision(const std::string& key) const;
  // Another replica owns the SA now: this replica's later writes about it
  // are dropped (until it takes the SA over again).
  void NoteLost(const std::string& key) const;
  bool IsLost(const std::string& key) const;
  // The record is gone: nothing more to drop for it.
  void ForgetLost(const std::string& key) const;

  // The records as they are written (exposed for tests).
  absl::StatusOr<v1::IkeSa> IkeRecord(const IkeSa& sa) const;
  absl::StatusOr<v1::ChildSa> ChildRecord(const IkeSa& sa, const ChildSaState& child) const;

 private:
  struct Write {
    std::vector<store::Op> ops;
    const char* what;
    uint64_t sequence;
    std::function<void()> task;  // instead of ops
    std::string about;           // the IKE record key the ops serve, if not in them
  };
  // Commits `ops` as one transaction, or queues them (write-behind). A
  // delete of a missing key counts as done.
  absl::Status Commit(std::vector<store::Op> ops, const char* what, std::string about = "");
  // One SA's write, now. IKE records are written compare-on-version (the
  // version this recorder last wrote or loaded); on a conflict the stored
  // record's endpoint, NAT flags, DORMANT state and last-seen time are
  // kept (mobility-service owns them) and the write is retried; a record
  // deleted meanwhile is not written again, nor are its CHILD SAs. A
  // conditional delete that no longer matches is dropped.
  absl::Status CommitNow(std::vector<store::Op> ops, const std::string& about = "");
  // Sets each IKE record put's condition to the last known version.
  void ApplyVersions(std::vector<store::Op>& ops) const;
  // Rebases a CHILD record put on the stored record: its path (local,
  // remote, encapsulation) and version. False if the record is gone.
  absl::StatusOr<bool> RebaseChildPut(store::Op& op) const;
  // An established IKE SA and its CHILD SAs from their records and sealed
  // keys. `children_ok` is false when a CHILD record is missing or does not
  // open (that CHILD SA is left out).
  // `accept` (may be null) is asked before the CHILD records are read;
  // kPermissionDenied if it refuses.
  absl::StatusOr<std::unique_ptr<IkeSa>> Rebuild(
      const std::string& key, const v1::IkeSa& record, bool* children_ok,
      const std::function<bool(const IkeSa&)>* accept = nullptr) const;
  void NoteVersions(const std::vector<store::Op>& ops, const store::TxnResult& result) const;
  // True when `ops` write an IKE record in lost_.
  bool AboutLostSa(const std::vector<store::Op>& ops, const std::string& about) const;
  void RunWriter();
  // Waits until the writes up to `target` are committed; no batch window
  // meanwhile.
  void WaitCommitted(uint64_t target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeWriter() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ops per transaction (etcd's limit).
  static constexpr size_t kMaxBatchOps = 128;

  store::Store* const store_;
  const store::Sealer* const sealer_;
  const std::string replica_;
  const ResponderPolicy* const policy_;

  absl::Mutex mu_;
  absl::CondVar queue_cv_;      // something queued, or stopping
  absl::CondVar committed_cv_;  // committed_ moved
  std::deque<Write> queue_ ABSL_GUARDED_BY(mu_);
  bool write_behind_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t queue_limit_ = 0;
  absl::Duration batch_window_;
  size_t queued_ops_ ABSL_GUARDED_BY(mu_) = 0;  // ops in queue_
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;        // threads waiting for committed_
  uint64_t queued_ ABSL_GUARDED_BY(mu_) = 0;     // writes queued so far
  uint64_t committed_ ABSL_GUARDED_BY(mu_) = 0;  // of those, done
  std::thread writer_;
  // Each IKE record as this recorder last wrote, loaded or took it over:
  // its version (for compare-on-version) and the store revision of it.
  struct Written {
    int64_t version = 0;
    int64_t revision = 0;
  };
  mutable absl::Mutex versions_mu_;
  mutable absl::flat_hash_map<std::string, Written> written_ ABSL_GUARDED_BY(versions_mu_);
  // IKE records another replica took over: every later write of this
  // replica's about them (puts and deletes, CHILD ops with them) is dropped.
  mutable absl::flat_hash_set<std::string> lost_ ABSL_GUARDED_BY(versions_mu_);
  prometheus::Counter* failures_ = nullptr;
  prometheus::Family<prometheus::Counter>* rejected_ = nullptr;
  void CountRejected(const char* reason) const;
  const log::Logger log_{"ike-service"};
};

}  // namespace vpn::ike
