// The data plane's view of one CHILD SA: both directions' ciphers, the
// inbound replay window, the outbound sequence number, counters and
// lifetimes. Shared by the workers; endpoints live in the SA table's entries,
// so an endpoint change keeps this object (and its state) as it is.
#pragma once

#include <array>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "esp-forwarder/esp/esp_cipher.h"
#include "esp-forwarder/esp/replay_window.h"

namespace vpn::forwarder::esp {

// An inclusive address range of a traffic selector.
struct AddressRange {
  bool v6 = false;
  std::array<uint8_t, 16> start{};
  std::array<uint8_t, 16> end{};

  // `address` is 4 or 16 bytes as `v6` says.
  bool Contains(const uint8_t* address, bool address_v6) const;
  static AddressRange Prefix(const uint8_t* address, bool v6, int prefix_length);
};

bool AnyContains(const std::vector<AddressRange>& ranges, const uint8_t* address, bool v6);

struct Lifetime {
  uint64_t soft_bytes = 0;  // 0: none
  uint64_t hard_bytes = 0;
  absl::Duration soft_time = absl::ZeroDuration();
  absl::Duration hard_time = absl::ZeroDuration();
};

struct SaParams {
  uint32_t inbound_spi = 0;
  uint32_t outbound_spi = 0;
  EspAlgorithms algorithms;
  uint32_t replay_window = ReplayWindow::kDefaultWindow;
  std::vector<AddressRange> local_ts;   // behind the gateway
  std::vector<AddressRange> remote_ts;  // the client's (virtual) addresses
  Lifetime lifetime;
  absl::Time created = absl::Now();
};

// Keys as seen from the gateway; AEAD keys end with their salt.
struct SaKeys {
  crypto::ByteSpan inbound_encryption;
  crypto::ByteSpan inbound_integrity;
  crypto::ByteSpan outbound_encryption;
  crypto::ByteSpan outbound_integrity;
};

// What the forwarder last told mobility-service about one SA (see
// esp-forwarder/path_reports/). Atomics, so a data-plane worker checks and
// claims them without a lock or an allocation; they live here because this
// object survives endpoint changes (a new SaEntry keeps its EspSa).
struct MobilityMarks {
  // Monotonic time (ns) of the last liveness report queued for this SA.
  std::atomic<int64_t> liveness_queued_ns{std::numeric_limits<int64_t>::min() / 2};
  // An endpoint change (NAT rebinding) of this SA is being applied/reported.
  std::atomic<bool> move_pending{false};
  // Monotonic time (ns) before which a new source address is not followed
  // (mobility-service refused the last one, or ike-service just moved the SA).
  std::atomic<int64_t> rebind_holdoff_until_ns{0};
  // Which source the hold-off is for: the hash of the path an SA was just
  // moved off (its late packets must not pull it back); 0: every source.
  std::atomic<uint64_t> rebind_holdoff_source{0};
};

// The clock of MobilityMarks' *_ns fields: CLOCK_MONOTONIC in nanoseconds.
inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// The replay window's lock: held for a few instructions by the one worker
// an SA's inbound packets are steered to (tests and restarts aside), so a
// spin lock, cheaper per packet than an absl::Mutex.
class ABSL_LOCKABLE ReplayLock {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
    }
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

class ABSL_SCOPED_LOCKABLE ReplayLockHolder {
 public:
  explicit ReplayLockHolder(ReplayLock* lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock) : lock_(lock) {
    lock_->Lock();
  }
  ~ReplayLockHolder() ABSL_UNLOCK_FUNCTION() { lock_->Unlock(); }
  ReplayLockHolder(const ReplayLockHolder&) = delete;
  ReplayLockHolder& operator=(const ReplayLockHolder&) = delete;

 private:
  ReplayLock* const lock_;
};

// Woken (from a data-plane worker: must not block or allocate) when an SA
// wants its sequence-number checkpoint written: its outbound lease is running
// low, or enough inbound packets arrived since the last checkpoint. See
// esp-forwarder/sa_table/seq_checkpoint.h.
class CheckpointWaker {
 public:
  virtual ~CheckpointWaker() = default;
  virtual void Wake() = 0;
};

struct SaCounters {
  uint64_t bytes_in = 0, packets_in = 0, bytes_out = 0, packets_out = 0;
  uint64_t replay_drops = 0, auth_failures = 0;
};

class EspSa {
 public:
  static absl::StatusOr<std::shared_ptr<EspSa>> Create(const SaParams& params,
                                                       const SaKeys& keys);

  const SaParams& params() const { return params_; }
  uint32_t inbound_spi() const { return params_.inbound_spi; }
  uint32_t outbound_spi() const { return params_.outbound_spi; }
  const EspCipher& inbound_cipher() const { return *inbound_; }
  const EspCipher& outbound_cipher() const { return *outbound_; }

  // ---- inbound replay (RFC 4303 §3.4.3); see ReplayWindow.
  ReplayWindow::Verdict CheckReplay(uint32_t seq_low, uint64_t* seq) const;
  bool UpdateReplay(uint64_t seq);
  // The same; `*highest` tells whether `seq` is above every sequence number
  // accepted before (RFC 4555 §3.5 / RFC 3948: only such a packet may move
  // the SA).
  bool UpdateReplay(uint64_t seq, bool* highest);
  uint64_t replay_top() const;
  // The same without the lock (may lag a concurrent update).
  uint64_t inbound_highest() const { return in_highest_.load(std::memory_order_relaxed); }
  // Whether an authenticated packet has arrived on this SA (or, after a
  // restart, had arrived before it): proof the peer installed it. Outbound
  // prefers such an SA (make-before-break, RFC 7296 §2.8).
  bool inbound_seen() const { return inbound_seen_.load(std::memory_order_acquire); }
  // After a restart, before the SA is published: every inbound sequence
  // number at or below `highest` counts as already seen.
  void RestoreReplay(uint64_t highest);

  // ---- outbound sequence numbers. 0 when none may be used: the 32-bit
  // space is exhausted (no ESN), or, with a lease (below), the numbers past
  // the persisted reservation are not ours yet (`*unreserved` = true).
  uint64_t NextSequence(bool* unreserved = nullptr);
  // For tests: continue from `next`.
  void SetNextSequence(uint64_t next) { next_seq_.store(next); }
  // The number NextSequence() would hand out next.
  uint64_t next_sequence() const { return next_seq_.load(std::memory_order_relaxed); }

  // ---- sequence-number lease (seq_checkpoint.h). Without one (the default)
  // every number may be used. With one, only numbers below the granted
  // limit: the limit is persisted before it is granted, so a restarted
  // forwarder resumes above every number this one may have sent.
  // Before the SA is published: continue from `next`, nothing granted yet;
  // `waker` is told when a grant or an inbound checkpoint is wanted.
  void AttachLease(std::shared_ptr<CheckpointWaker> waker, uint64_t next);
  // Grants numbers below `limit` (after they are persisted). `floor`: skip
  // the counter to at least this (numbers between the previous limit and it
  // were reserved by someone else). A new grant is asked for once the
  // counter reaches `request_at`.
  void GrantSequences(uint64_t floor, uint64_t limit, uint64_t request_at);
  uint64_t sequence_limit() const { return out_limit_.load(std::memory_order_acquire); }
  // Checkpoint requests from the data plane, taken (cleared) by the writer.
  bool TakeSequenceRequest() { return out_wanted_.exchange(false, std::memory_order_acq_rel); }
  void RequestSequences();
  // Ask for an inbound checkpoint once the highest inbound number reaches
  // `at`.
  void SetInboundCheckpointAt(uint64_t at) { in_request_at_.store(at, std::memory_order_relaxed); }
  bool TakeInboundRequest() { return in_wanted_.exchange(false, std::memory_order_acq_rel); }

  // ---- counters and lifetimes. Account*() return false once the SA is
  // past its hard lifetime (the packet must be dropped).
  bool AccountInbound(size_t bytes);
  bool AccountOutbound(size_t bytes);
  void CountReplayDrop() { replay_drops_.fetch_add(1, std::memory_order_relaxed); }
  void CountAuthFailure() { auth_failures_.fetch_add(1, std::memory_order_relaxed); }
  SaCounters counters() const;
  MobilityMarks& mobility() const { return mobility_; }

  bool hard_expired() const { return hard_expired_.load(std::memory_order_relaxed); }
  // Checks the time lifetimes at `now`. Returns true exactly once, when the
  // SA first reaches its soft limit (bytes or time): time to rekey.
  bool TakeSoftExpiry(absl::Time now);
  // Returns true exactly once, when the hard limit is first reached.
  bool TakeHardExpiry(absl::Time now);

 private:
  explicit EspSa(const SaParams& params);
  void CheckBytes(uint64_t total);
  // After a successful replay-window update of `seq` (replay_mu_ held).
  void NoteInbound(uint64_t seq, bool highest);

  const SaParams params_;
  std::unique_ptr<EspCipher> inbound_;
  std::unique_ptr<EspCipher> outbound_;

  mutable ReplayLock replay_mu_;
  ReplayWindow replay_ ABSL_GUARDED_BY(replay_mu_);
  std::atomic<uint64_t> next_seq_{1};
  // Lease: numbers >= out_limit_ are not ours yet; at out_request_at_ a new
  // grant is asked for (out_wanted_ + waker_).
  std::atomic<uint64_t> out_limit_{std::numeric_limits<uint64_t>::max()};
  std::atomic<uint64_t> out_request_at_{std::numeric_limits<uint64_t>::max()};
  std::atomic<bool> out_wanted_{false};
  std::atomic<uint64_t> in_request_at_{std::numeric_limits<uint64_t>::max()};
  std::atomic<bool> in_wanted_{false};
  std::shared_ptr<CheckpointWaker> waker_;  // set before publication
  std::atomic<uint64_t> in_highest_{0};
  std::atomic<bool> inbound_seen_{false};

  std::atomic<uint64_t> bytes_in_{0}, packets_in_{0}, bytes_out_{0}, packets_out_{0};
  std::atomic<uint64_t> replay_drops_{0}, auth_failures_{0};
  std::atomic<bool> soft_reached_{false}, soft_taken_{false};
  std::atomic<bool> hard_expired_{false}, hard_taken_{false};
  mutable MobilityMarks mobility_;
};

}  // namespace vpn::forwarder::esp
