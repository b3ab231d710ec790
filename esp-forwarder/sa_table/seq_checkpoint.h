// Durable sequence-number state of the CHILD SAs, so a restarted forwarder
// neither reuses an outbound sequence number (the client would refuse it as
// a replay; with AES-GCM it would also repeat a nonce under the same key) nor
// accepts a pre-restart inbound packet sent again.
//
// One store key per SA, "seq/<inbound spi, 8 hex digits>" (beside its
// "child/" record; deleted with it), holding two marks (SeqMarks):
//
//  - outbound_reserved: a lease. Every outbound number this (or any)
//    forwarder may use is below it, because it is persisted BEFORE the data
//    plane is allowed to use the numbers below it (EspSa::GrantSequences).
//    One exception keeps the store out of every handshake: a CHILD SA that
//    ike-service announced to this forwarder (new, its SPI just allocated)
//    may use the first two blocks at once, unwritten. So a missing key
//    means "the first two blocks may be in use": a forwarder that installs
//    an SA from a list or watch and finds no key starts above them.
//    Blocks of `outbound_step` numbers are reserved ahead: when the counter
//    comes within one step of the limit the data plane asks (an atomic flag
//    and a wake-up, nothing else on the hot path) and this thread reserves
//    the next block. A restarted forwarder continues at outbound_reserved:
//    at most 2 steps of numbers are skipped per restart, none reused. If
//    the store cannot be written the data plane drops outbound packets past
//    the limit (drops{reason="seq_unreserved"}) rather than risk a reuse.
//  - inbound_highest: the highest authenticated inbound number, written
//    every `inbound_interval` or `inbound_step` packets, whichever comes
//    first, while it moves (and on a clean stop). A restarted forwarder
//    seeds the replay window with it: everything at or below it is refused.
//    Numbers accepted between the last checkpoint and a crash can be
//    replayed once after the restart: that gap is at most about
//    inbound_interval (+ one store write) of traffic, or inbound_step
//    packets, whichever is less.
//
// Writes are compare-on-version and merge by maximum, so several forwarders
// (one per node) sharing the store never lower a mark and never reserve the
// same numbers twice. All store I/O happens on this object's thread, except
// Install() (the store sync thread, before an SA is published).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/store/store.h"
#include "esp-forwarder/esp/esp_sa.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace vpn::forwarder {

inline constexpr char kSeqPrefix[] = "seq/";
std::string SeqKey(uint32_t inbound_spi);
// The SPI of a key SeqKey wrote; false for any other string.
bool SpiFromSeqKey(absl::string_view key, uint32_t* spi);

struct SeqMarks {
  uint64_t outbound_reserved = 0;  // every outbound number used is below this
  uint64_t inbound_highest = 0;    // highest authenticated inbound number
};
// "out=<decimal> in=<decimal>" (readable with etcdctl). Decoding takes
// exactly what encoding writes: a damaged value must not read back as a
// lower outbound mark, which would let a sequence number (the GCM IV) repeat.
std::string EncodeSeqMarks(const SeqMarks& marks);
absl::optional<SeqMarks> DecodeSeqMarks(absl::string_view value);

struct SeqCheckpointOptions {
  // ~1.2 s of one SA at 10 Gbit/s of 1400-byte packets: a write (fsync, a
  // busy core) never has to finish within a few ms to keep an SA sending.
  uint64_t outbound_step = uint64_t{1} << 20;
  uint64_t inbound_step = uint64_t{1} << 12;
  absl::Duration inbound_interval = absl::Milliseconds(500);
  // How often the writer looks at every SA without being woken (inbound
  // interval; retries after a failed write).
  absl::Duration tick = absl::Milliseconds(100);
  // Stop() writes the inbound marks that moved (tests turn it off to act
  // out a crash).
  bool flush_on_stop = true;
};

class SeqCheckpointer {
 public:
  SeqCheckpointer(std::shared_ptr<store::Store> store, prometheus::Registry& registry,
                  SeqCheckpointOptions options = {});
  ~SeqCheckpointer();

  void Start();
  // Writes the inbound marks that moved since their last checkpoint, then
  // stops the thread.
  void Stop();

  // New EspSas, before they are published: reads their marks, seeds the
  // replay window, attaches the lease and reserves the first block of
  // outbound numbers (batched: one Txn per 128 SAs). An SA whose block
  // could not be written has no outbound numbers until this thread's retry
  // succeeds; inbound works at once. `announced` SAs (see above) are not
  // read or written: they get the first two blocks at once.
  void Install(const std::vector<std::shared_ptr<esp::EspSa>>& sas, bool announced = false);
  // The SA's record was deleted: stop tracking it and delete its key.
  void Remove(uint32_t inbound_spi);
  // The SA left the table but its record stays (it became unusable): stop
  // tracking it, keep its key.
  void Untrack(uint32_t inbound_spi);
  // After a re-list at `revision`: SAs not in `present` were deleted while
  // we were not watching (or down): stop tracking them, and delete every
  // "seq/" key created at or before `revision` without a record (by the
  // writer thread, compare-on-version).
  void Retain(const absl::flat_hash_set<uint32_t>& present, int64_t revision);

  // Tests: one writer pass now (as if every inbound interval had passed).
  void FlushForTest();
  // Tests: the persisted marks of one SA.
  absl::optional<SeqMarks> Persisted(uint32_t inbound_spi);

 private:
  class Signal;
  struct Tracked {
    std::shared_ptr<esp::EspSa> sa;
    SeqMarks persisted;     // as last written or read
    int64_t version = -1;   // of the key; -1 unknown (read before writing)
    absl::Time last_inbound_write = absl::InfinitePast();
  };
  struct Plan {
    uint32_t spi = 0;
    std::shared_ptr<esp::EspSa> sa;
    bool outbound = false;  // reserve a new block
    SeqMarks known;
    int64_t version = -1;
    // Computed against the persisted marks:
    SeqMarks write;
    uint64_t floor = 0;
  };

  // What a missing key stands for (see above): the first two blocks.
  uint64_t ImplicitReservation() const { return 2 * options_.outbound_step; }
  void Run();
  // One writer pass; false if a store operation failed.
  bool Pass(bool force_inbound);
  void Compute(Plan& plan, const SeqMarks& persisted) const;
  // Writes the plans (under write_mu_); applies the successful ones.
  void Write(std::vector<Plan>& plans, bool install);
  bool WriteOne(Plan& plan, bool install);
  void Apply(const Plan& plan, int64_t version, bool install);
  void Failed(const Plan& plan, bool install);
  struct Garbage {
    absl::flat_hash_set<uint32_t> present;
    int64_t revision = 0;
  };
  void CollectGarbage(const Garbage& garbage);

  const std::shared_ptr<store::Store> store_;
  const SeqCheckpointOptions options_;
  const std::shared_ptr<Signal> signal_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  // Serialises store writes of "seq/" keys (the writer thread, Install()).
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  absl::flat_hash_map<uint32_t, Tracked> tracked_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> deletes_ ABSL_GUARDED_BY(mu_);  // keys to delete
  // Removed with no key written; a write of the current pass may create it.
  absl::flat_hash_set<uint32_t> removed_unwritten_ ABSL_GUARDED_BY(mu_);
  absl::optional<Garbage> gc_ ABSL_GUARDED_BY(mu_);

  prometheus::Family<prometheus::Counter>& writes_;
  prometheus::Counter& writes_ok_;
  prometheus::Counter& writes_failed_;
  prometheus::Counter& restored_;
};

}  // namespace vpn::forwarder
