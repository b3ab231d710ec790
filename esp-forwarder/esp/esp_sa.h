// The data plane's view of one CHILD SA: both directions' ciphers, the
// inbound replay window, the outbound sequence number, counters and
// lifetimes. Shared by the workers; endpoints live in the SA table's entries,
// so an endpoint change keeps this object (and its state) as it is.
#pragma once

#include <array>
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
// esp-forwarder/mobility/). Atomics, so a data-plane worker checks and
// claims them without a lock or an allocation; they live here because this
// object survives endpoint changes (a new SaEntry keeps its EspSa).
struct MobilityMarks {
  // Monotonic time (ns) of the last liveness report queued for this SA.
  std::atomic<int64_t> liveness_queued_ns{std::numeric_limits<int64_t>::min() / 2};
  // An endpoint change (NAT rebinding) of this SA is being applied/reported.
  std::atomic<bool> move_pending{false};
  // Monotonic time (ns) before which a new source address is not followed
  // (mobility-service refused the last one).
  std::atomic<int64_t> rebind_holdoff_until_ns{0};
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

  // ---- outbound sequence numbers. 0 when exhausted (32-bit SA at 2^32-1).
  uint64_t NextSequence();
  // For tests: continue from `next`.
  void SetNextSequence(uint64_t next) { next_seq_.store(next); }

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

  const SaParams params_;
  std::unique_ptr<EspCipher> inbound_;
  std::unique_ptr<EspCipher> outbound_;

  mutable absl::Mutex replay_mu_;
  ReplayWindow replay_ ABSL_GUARDED_BY(replay_mu_);
  std::atomic<uint64_t> next_seq_{1};

  std::atomic<uint64_t> bytes_in_{0}, packets_in_{0}, bytes_out_{0}, packets_out_{0};
  std::atomic<uint64_t> replay_drops_{0}, auth_failures_{0};
  std::atomic<bool> soft_reached_{false}, soft_taken_{false};
  std::atomic<bool> hard_expired_{false}, hard_taken_{false};
  mutable MobilityMarks mobility_;
};

}  // namespace vpn::forwarder::esp
