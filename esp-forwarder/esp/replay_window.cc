#include "esp-forwarder/esp/replay_window.h"

#include <algorithm>

namespace vpn::forwarder::esp {

ReplayWindow::ReplayWindow(uint32_t window, bool esn)
    : window_(std::clamp<uint32_t>(window, 32, kMaxWindow)),
      bits_((window_ + 63) / 64 * 64),
      esn_(esn) {}

uint64_t ReplayWindow::Infer(uint32_t seq_low) const {
  if (!esn_) return seq_low;
  const uint32_t tl = static_cast<uint32_t>(top_);
  const uint32_t th = static_cast<uint32_t>(top_ >> 32);
  const uint32_t w = window_;
  uint32_t seq_high;
  if (tl >= w - 1) {
    // Case A: the window lies within one 2^32 subspace.
    seq_high = seq_low >= tl - w + 1 ? th : th + 1;
  } else {
    // Case B: the window spans two subspaces.
    // With no subspace below (th == 0) a number there is a jump forward.
    const uint32_t bottom = tl - w + 1;  // wraps below zero
    seq_high = (seq_low >= bottom && th > 0) ? th - 1 : th;
  }
  return (static_cast<uint64_t>(seq_high) << 32) | seq_low;
}

bool ReplayWindow::TestBit(uint64_t seq) const {
  const uint64_t i = seq % bits_;
  return (bitmap_[i / 64] >> (i % 64)) & 1;
}
void ReplayWindow::SetBit(uint64_t seq) {
  const uint64_t i = seq % bits_;
  bitmap_[i / 64] |= uint64_t{1} << (i % 64);
}
void ReplayWindow::ClearBit(uint64_t seq) {
  const uint64_t i = seq % bits_;
  bitmap_[i / 64] &= ~(uint64_t{1} << (i % 64));
}

ReplayWindow::Verdict ReplayWindow::Check(uint64_t seq) const {
  if (seq == 0) return Verdict::kTooOld;  // sequence numbers start at 1
  if (seq > top_) return Verdict::kOk;
  if (top_ - seq >= window_) return Verdict::kTooOld;
  return TestBit(seq) ? Verdict::kReplayed : Verdict::kOk;
}

bool ReplayWindow::Update(uint64_t seq) {
  if (Check(seq) != Verdict::kOk) return false;
  if (seq > top_) {
    const uint64_t advance = seq - top_;
    if (advance >= bits_) {
      bitmap_.fill(0);
    } else {
      for (uint64_t s = top_ + 1; s < seq; ++s) ClearBit(s);
    }
    ClearBit(seq);
    top_ = seq;
  }
  SetBit(seq);
  return true;
}

void ReplayWindow::MarkSeenThrough(uint64_t highest) {
  if (highest <= top_) return;
  top_ = highest;
  bitmap_.fill(~uint64_t{0});
}

}  // namespace vpn::forwarder::esp
