#include "esp-forwarder/esp/esp_sa.h"

#include <algorithm>
#include <cstring>

namespace vpn::forwarder::esp {

bool AddressRange::Contains(const uint8_t* address, bool address_v6) const {
  if (address_v6 != v6) return false;
  const size_t n = v6 ? 16 : 4;
  return std::memcmp(address, start.data(), n) >= 0 &&
         std::memcmp(address, end.data(), n) <= 0;
}

AddressRange AddressRange::Prefix(const uint8_t* address, bool v6, int prefix_length) {
  AddressRange range;
  range.v6 = v6;
  const int bits = v6 ? 128 : 32;
  for (int i = 0; i < bits / 8; ++i) {
    const int keep = std::clamp(prefix_length - i * 8, 0, 8);
    const uint8_t mask = keep == 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
    range.start[i] = address[i] & mask;
    range.end[i] = address[i] | static_cast<uint8_t>(~mask);
  }
  return range;
}

bool AnyContains(const std::vector<AddressRange>& ranges, const uint8_t* address, bool v6) {
  for (const AddressRange& range : ranges) {
    if (range.Contains(address, v6)) return true;
  }
  return false;
}

EspSa::EspSa(const SaParams& params)
    : params_(params), replay_(params.replay_window, params.algorithms.esn) {}

absl::StatusOr<std::shared_ptr<EspSa>> EspSa::Create(const SaParams& params,
                                                     const SaKeys& keys) {
  std::shared_ptr<EspSa> sa(new EspSa(params));
  auto inbound = EspCipher::Create(params.algorithms, keys.inbound_encryption,
                                   keys.inbound_integrity);
  if (!inbound.ok()) return inbound.status();
  auto outbound = EspCipher::Create(params.algorithms, keys.outbound_encryption,
                                    keys.outbound_integrity);
  if (!outbound.ok()) return outbound.status();
  sa->inbound_ = std::move(*inbound);
  sa->outbound_ = std::move(*outbound);
  return sa;
}

ReplayWindow::Verdict EspSa::CheckReplay(uint32_t seq_low, uint64_t* seq) const {
  ReplayLockHolder lock(&replay_mu_);
  *seq = replay_.Infer(seq_low);
  return replay_.Check(*seq);
}

bool EspSa::UpdateReplay(uint64_t seq) {
  bool highest = false;
  return UpdateReplay(seq, &highest);
}

bool EspSa::UpdateReplay(uint64_t seq, bool* highest) {
  ReplayLockHolder lock(&replay_mu_);
  const uint64_t top = replay_.top();
  if (!replay_.Update(seq)) {
    *highest = false;
    return false;
  }
  *highest = seq > top;
  NoteInbound(seq, *highest);
  return true;
}

void EspSa::NoteInbound(uint64_t seq, bool highest) {
  // Plain loads first: after the first packet these are read-only, so the
  // cache line stays shared between workers.
  if (!inbound_seen_.load(std::memory_order_relaxed)) {
    inbound_seen_.store(true, std::memory_order_release);
  }
  if (!highest) return;
  in_highest_.store(seq, std::memory_order_relaxed);
  if (seq >= in_request_at_.load(std::memory_order_relaxed) &&
      !in_wanted_.load(std::memory_order_relaxed) &&
      !in_wanted_.exchange(true, std::memory_order_acq_rel) && waker_ != nullptr) {
    waker_->Wake();
  }
}

void EspSa::RestoreReplay(uint64_t highest) {
  if (highest == 0) return;
  ReplayLockHolder lock(&replay_mu_);
  replay_.MarkSeenThrough(highest);
  if (replay_.top() > in_highest_.load(std::memory_order_relaxed)) {
    in_highest_.store(replay_.top(), std::memory_order_relaxed);
  }
  inbound_seen_.store(true, std::memory_order_release);
}

uint64_t EspSa::replay_top() const {
  ReplayLockHolder lock(&replay_mu_);
  return replay_.top();
}

uint64_t EspSa::NextSequence(bool* unreserved) {
  // The limit is read before the counter is taken: a grant that skipped the
  // counter forward (GrantSequences' floor) is stored after the skip, so a
  // number taken under the new limit is never one below the floor.
  const uint64_t limit = out_limit_.load(std::memory_order_acquire);
  const uint64_t seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
  if (!params_.algorithms.esn && seq > 0xffffffffull) return 0;
  if (seq == 0) return 0;  // 64-bit wrap
  if (seq >= out_request_at_.load(std::memory_order_relaxed)) RequestSequences();
  if (seq >= limit) {
    if (unreserved != nullptr) *unreserved = true;
    return 0;
  }
  return seq;
}

void EspSa::RequestSequences() {
  if (!out_wanted_.load(std::memory_order_relaxed) &&
      !out_wanted_.exchange(true, std::memory_order_acq_rel) && waker_ != nullptr) {
    waker_->Wake();
  }
}

void EspSa::AttachLease(std::shared_ptr<CheckpointWaker> waker, uint64_t next) {
  waker_ = std::move(waker);
  next_seq_.store(std::max<uint64_t>(next, 1), std::memory_order_relaxed);
  out_limit_.store(0, std::memory_order_release);
  out_request_at_.store(0, std::memory_order_relaxed);
}

void EspSa::GrantSequences(uint64_t floor, uint64_t limit, uint64_t request_at) {
  uint64_t current = next_seq_.load(std::memory_order_relaxed);
  while (current < floor &&
         !next_seq_.compare_exchange_weak(current, floor, std::memory_order_relaxed)) {
  }
  out_request_at_.store(request_at, std::memory_order_relaxed);
  out_limit_.store(limit, std::memory_order_release);
}

void EspSa::CheckBytes(uint64_t total) {
  const Lifetime& life = params_.lifetime;
  if (life.soft_bytes != 0 && total >= life.soft_bytes) {
    soft_reached_.store(true, std::memory_order_relaxed);
  }
  if (life.hard_bytes != 0 && total >= life.hard_bytes) {
    hard_expired_.store(true, std::memory_order_relaxed);
  }
}

bool EspSa::AccountInbound(size_t bytes) {
  if (hard_expired()) return false;
  packets_in_.fetch_add(1, std::memory_order_relaxed);
  CheckBytes(bytes_in_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  return true;
}

bool EspSa::AccountOutbound(size_t bytes) {
  if (hard_expired()) return false;
  packets_out_.fetch_add(1, std::memory_order_relaxed);
  CheckBytes(bytes_out_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  return true;
}

SaCounters EspSa::counters() const {
  SaCounters c;
  c.bytes_in = bytes_in_.load();
  c.packets_in = packets_in_.load();
  c.bytes_out = bytes_out_.load();
  c.packets_out = packets_out_.load();
  c.replay_drops = replay_drops_.load();
  c.auth_failures = auth_failures_.load();
  return c;
}

bool EspSa::TakeSoftExpiry(absl::Time now) {
  const Lifetime& life = params_.lifetime;
  if (life.soft_time > absl::ZeroDuration() && now >= params_.created + life.soft_time) {
    soft_reached_.store(true);
  }
  return soft_reached_.load() && !soft_taken_.exchange(true);
}

bool EspSa::TakeHardExpiry(absl::Time now) {
  const Lifetime& life = params_.lifetime;
  if (life.hard_time > absl::ZeroDuration() && now >= params_.created + life.hard_time) {
    hard_expired_.store(true);
  }
  return hard_expired_.load() && !hard_taken_.exchange(true);
}

}  // namespace vpn::forwarder::esp
