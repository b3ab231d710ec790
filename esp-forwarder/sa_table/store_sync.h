// Keeps an SaTable equal to the store's "child/" records: List, then Watch
// from the next revision; kResync (or a broken watch) re-lists. Each record's
// seal is checked (it covers the whole record but the path); its keys are
// handed to a new EspSa and the plaintext is zeroed at once. A record whose
// seal fails is ignored (the SA keeps its state); a record whose path tag
// fails is applied but keeps the SA's previous path (Record integrity in
// docs/architecture.md). A record rewritten under the same SPI (an endpoint change:
// MOBIKE, NAT rebinding) keeps its EspSa: SPIs, sequence numbers, replay
// window and counters survive. Also runs the lifetime sweep.
//
// A new SA's sequence-number state is restored from, and checkpointed to,
// its "seq/" key (seq_checkpoint.h) before it is published; its key is
// deleted with its record.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/store/sa_seal.h"
#include "common/store/sealer.h"
#include "common/store/store.h"
#include "common/store/watch_loop.h"
#include "esp-forwarder/sa_table/sa_table.h"
#include "esp-forwarder/sa_table/seq_checkpoint.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn::forwarder {

struct StoreSyncOptions {
  uint32_t default_replay_window = 1024;  // when a record says 0
  absl::Duration sweep_interval = absl::Milliseconds(250);
  // Called (from the sync thread) when an SA reaches its soft lifetime:
  // ike-service should rekey it. The default only logs and counts.
  std::function<void(const SaEntry&)> on_soft_expire;
  std::function<void(const SaEntry&)> on_hard_expire;
  // Checkpoint sequence numbers in "seq/" keys (restart safety). Off: a
  // restarted forwarder starts every SA at 1 with an empty replay window.
  bool checkpoint_sequences = true;
  SeqCheckpointOptions checkpoint;
};

// Builds the data-plane entry for a record. The seal (store/sa_seal.h) is
// checked on every record, also one that keeps `previous`'s EspSa: kDataLoss
// or kFailedPrecondition when it does not open. The path (local, remote,
// encapsulation) is taken only when its tag verifies for the record's IKE
// SPIs at a generation not below previous->path_generation; otherwise
// `previous`'s path is kept and *path says why, or without `previous` the
// record is refused (kPermissionDenied). kInvalidArgument for a record the
// forwarder cannot use.
absl::StatusOr<std::shared_ptr<const SaEntry>> EntryFromRecord(
    const store::Sealer& sealer, const std::string& key, const v1::ChildSa& record,
    int64_t create_revision, uint32_t default_replay_window, const SaEntry* previous,
    store::PathVerdict* path);

class StoreSync {
 public:
  StoreSync(std::shared_ptr<store::Store> store, std::shared_ptr<store::Sealer> sealer,
            SaTable* table, prometheus::Registry& registry, StoreSyncOptions options = {});
  ~StoreSync();

  // Lists once (so the table is populated when this returns, if the store
  // answers) and starts the watch thread.
  void Start();
  void Stop();

  // A CHILD SA ike-service announces as it creates it, before its record is
  // written: installed at once (its sequence-number lease included), so
  // the client's first packets find it. The record, when the watch brings
  // it, keeps this EspSa. Thread-safe; returns at once (a thread of this
  // class installs it).
  void Offer(v1::ChildSa record);

  // Revision the table reflects (for tests).
  int64_t revision() const { return revision_.load(); }
  // Null when checkpoint_sequences is off.
  SeqCheckpointer* checkpointer() { return checkpointer_.get(); }

 private:
  void RunOffers();
  // Lists the CHILD records and applies them as a snapshot (under apply_mu_).
  absl::Status Relist();
  void ApplySnapshot(const std::vector<store::KeyValue>& kvs, int64_t revision);
  void Apply(const store::WatchEvent& event);
  void ApplyPut(const store::KeyValue& kv);
  // Entry for `spi` staged or waiting in pending_.
  std::shared_ptr<const SaEntry> Current(uint32_t spi) const;
  void Drop(uint32_t spi);
  // forwarder_sa_records_rejected_total{reason}.
  void CountRejected(absl::string_view reason);
  // Restores/reserves the sequence numbers of new SAs, then stages them;
  // `announced`: all of them were announced by ike-service (Offer).
  void InstallPending(bool announced = false);
  void Sweep();

  const std::shared_ptr<store::Store> store_;
  const std::shared_ptr<store::Sealer> sealer_;
  SaTable* const table_;
  const StoreSyncOptions options_;
  absl::Notification stop_;
  std::unique_ptr<store::WatchLoop> loop_;  // on thread_
  std::thread thread_;
  std::thread offer_thread_;
  absl::Mutex offer_mu_;
  absl::CondVar offer_cv_;
  std::vector<v1::ChildSa> offered_ ABSL_GUARDED_BY(offer_mu_);
  // Held while the table, pending_ and the checkpointer's installs change
  // (the watch thread and the offer thread).
  absl::Mutex apply_mu_;
  std::atomic<int64_t> revision_{0};
  absl::Time last_sweep_ = absl::InfinitePast();  // on thread_
  std::unique_ptr<SeqCheckpointer> checkpointer_;
  // New EspSas (not yet staged) of the events being applied, by SPI: staged
  // by InstallPending() once their sequence-number state is in place.
  absl::flat_hash_map<uint32_t, std::shared_ptr<const SaEntry>> pending_;

  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Counter& installs_;
  prometheus::Counter& offered_installs_;  // of installs_: announced first
  prometheus::Counter& updates_;
  prometheus::Counter& removes_;
  prometheus::Counter& resyncs_;
  prometheus::Counter& rejected_;
  // Records (or their paths) not applied, by reason: seal, invalid, and the
  // path verdicts of store::PathVerdictName.
  prometheus::Family<prometheus::Counter>& rejected_records_;
  prometheus::Counter& soft_expired_;
  prometheus::Counter& hard_expired_;
  prometheus::Gauge& installed_;
};

}  // namespace vpn::forwarder
