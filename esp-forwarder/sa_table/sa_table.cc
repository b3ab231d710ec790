#include "esp-forwarder/sa_table/sa_table.h"

#include <cstring>

namespace vpn::forwarder {
namespace {

bool IsHost(const esp::AddressRange& range) {
  return std::memcmp(range.start.data(), range.end.data(), range.v6 ? 16 : 4) == 0;
}

// Newer first: higher create revision; equal ones (one Txn) by SPI.
bool Newer(const SaEntry* a, const SaEntry* b) {
  if (a->create_revision != b->create_revision) return a->create_revision > b->create_revision;
  return a->sa->inbound_spi() > b->sa->inbound_spi();
}

}  // namespace

void SaSnapshot::AddCandidate(Candidates& candidates, const SaEntry* entry) {
  auto at = candidates.begin();
  while (at != candidates.end() && Newer(*at, entry)) ++at;
  candidates.insert(at, entry);
}

const SaEntry* SaSnapshot::Pick(const Candidates& candidates) {
  for (const SaEntry* entry : candidates) {
    if (entry->sa->inbound_seen()) return entry;
  }
  return candidates.empty() ? nullptr : candidates.back();
}

void SaSnapshot::Index(const std::shared_ptr<const SaEntry>& entry) {
  by_spi_[entry->sa->inbound_spi()] = entry;
  for (const esp::AddressRange& range : entry->sa->params().remote_ts) {
    if (IsHost(range)) {
      if (range.v6) {
        V6 key;
        std::memcpy(key.data(), range.start.data(), 16);
        AddCandidate(out_v6_[key], entry.get());
      } else {
        uint32_t key;
        std::memcpy(&key, range.start.data(), 4);
        AddCandidate(out_v4_[key], entry.get());
      }
    } else {
      out_ranges_.push_back(entry.get());
    }
  }
}

const SaEntry* SaSnapshot::Outbound(const uint8_t* dst, bool v6) const {
  if (v6) {
    V6 key;
    std::memcpy(key.data(), dst, 16);
    if (auto it = out_v6_.find(key); it != out_v6_.end()) return Pick(it->second);
  } else {
    uint32_t key;
    std::memcpy(&key, dst, 4);
    if (auto it = out_v4_.find(key); it != out_v4_.end()) return Pick(it->second);
  }
  const SaEntry* seen = nullptr;    // newest with inbound traffic
  const SaEntry* oldest = nullptr;  // fallback
  for (const SaEntry* entry : out_ranges_) {
    if (!esp::AnyContains(entry->sa->params().remote_ts, dst, v6)) continue;
    if (oldest == nullptr || Newer(oldest, entry)) oldest = entry;
    if (entry->sa->inbound_seen() && (seen == nullptr || Newer(entry, seen))) seen = entry;
  }
  return seen != nullptr ? seen : oldest;
}

std::vector<std::shared_ptr<const SaEntry>> SaSnapshot::All() const {
  std::vector<std::shared_ptr<const SaEntry>> all;
  all.reserve(by_spi_.size());
  for (const auto& [spi, entry] : by_spi_) all.push_back(entry);
  return all;
}

SaTable::SaTable() : current_(std::make_shared<const SaSnapshot>()) {}

void SaTable::Put(std::shared_ptr<const SaEntry> entry) {
  absl::MutexLock lock(&mu_);
  staged_[entry->sa->inbound_spi()] = std::move(entry);
}

void SaTable::Remove(uint32_t inbound_spi) {
  absl::MutexLock lock(&mu_);
  staged_.erase(inbound_spi);
}

void SaTable::Clear() {
  absl::MutexLock lock(&mu_);
  staged_.clear();
}

void SaTable::RetainOnly(const absl::flat_hash_set<uint32_t>& spis) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(staged_, [&](const auto& kv) { return !spis.contains(kv.first); });
}

std::shared_ptr<const SaEntry> SaTable::Staged(uint32_t spi) const {
  absl::MutexLock lock(&mu_);
  auto it = staged_.find(spi);
  return it == staged_.end() ? nullptr : it->second;
}

void SaTable::Publish() {
  // Two writers (the store sync, the mobility reporter) must not store
  // their snapshots out of order: build and store under publish_mu_.
  absl::MutexLock publishing(&publish_mu_);
  auto snapshot = std::make_shared<SaSnapshot>();
  {
    absl::MutexLock lock(&mu_);
    snapshot->by_spi_.reserve(staged_.size());
    for (const auto& [spi, entry] : staged_) snapshot->Index(entry);
  }
  std::atomic_store_explicit(&current_, std::shared_ptr<const SaSnapshot>(std::move(snapshot)),
                             std::memory_order_release);
}

absl::StatusOr<net::IpEndpoint> SaTable::MoveRemote(uint32_t spi, const esp::EspSa* sa,
                                                    const net::IpEndpoint& remote) {
  net::IpEndpoint previous;
  {
    absl::MutexLock lock(&mu_);
    auto it = staged_.find(spi);
    if (it == staged_.end() || it->second->sa.get() != sa) {
      return absl::NotFoundError("the SA is gone or was replaced");
    }
    previous = it->second->remote;
    if (previous == remote) return previous;
    auto moved = std::make_shared<SaEntry>(*it->second);
    moved->remote = remote;
    it->second = std::move(moved);
  }
  Publish();
  return previous;
}

size_t SaTable::MovePath(uint64_t spi_i, uint64_t spi_r, const net::IpEndpoint& local,
                         const net::IpEndpoint& remote, const Encap* encap) {
  size_t moved = 0;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [spi, entry] : staged_) {
      if (entry->ike_spi_i != spi_i || entry->ike_spi_r != spi_r) continue;
      const Encap next_encap = encap != nullptr ? *encap : entry->encap;
      net::IpEndpoint next_remote = remote;
      if (next_encap == Encap::kUdp && next_remote.port() == 0) next_remote.set_port(4500);
      if (entry->remote == next_remote && entry->local == local && entry->encap == next_encap) {
        continue;
      }
      auto changed = std::make_shared<SaEntry>(*entry);
      changed->remote = next_remote;
      changed->local = local;
      changed->encap = next_encap;
      entry = std::move(changed);
      ++moved;
    }
  }
  if (moved > 0) Publish();
  return moved;
}

}  // namespace vpn::forwarder
