// Anti-replay window of RFC 4303 §3.4.3 with Extended Sequence Numbers
// (RFC 4303 Appendix A): a bitmap of up to kMaxWindow packets below the
// highest authenticated sequence number. Check() runs before the ICV check
// (and infers the high-order 32 bits of an ESN); Update() runs after it.
// Not thread-safe; the owning SA serialises access.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vpn::forwarder::esp {

class ReplayWindow {
 public:
  static constexpr uint32_t kMaxWindow = 4096;
  static constexpr uint32_t kDefaultWindow = 1024;

  enum class Verdict {
    kOk,        // not seen, inside or above the window
    kReplayed,  // inside the window and already seen
    kTooOld,    // below the window
  };

  // `window` is clamped to [32, kMaxWindow]; `esn` selects 64-bit numbers.
  ReplayWindow(uint32_t window, bool esn);

  uint32_t window() const { return window_; }
  bool esn() const { return esn_; }
  uint64_t top() const { return top_; }

  // The full sequence number a packet's low 32 bits stand for (RFC 4303
  // A2.2). Without ESN it is the low bits themselves.
  uint64_t Infer(uint32_t seq_low) const;
  // Whether `seq` (full) may be accepted; changes nothing.
  Verdict Check(uint64_t seq) const;
  // Marks `seq` seen after its ICV verified; returns false (and changes
  // nothing) if it is a replay after all (a concurrent duplicate).
  bool Update(uint64_t seq);
  // After a restart: treats every sequence number at or below `highest` as
  // already seen (those in the window as replays, older ones as too old);
  // numbers above it are accepted as usual. No-op if `highest` <= top().
  void MarkSeenThrough(uint64_t highest);

 private:
  static constexpr size_t kWords = kMaxWindow / 64;
  bool TestBit(uint64_t seq) const;
  void SetBit(uint64_t seq);
  void ClearBit(uint64_t seq);

  uint32_t window_;
  uint32_t bits_;  // bitmap size in use: window rounded up to 64
  bool esn_;
  uint64_t top_ = 0;  // highest authenticated sequence number (0: none yet)
  std::array<uint64_t, kWords> bitmap_{};
};

}  // namespace vpn::forwarder::esp
