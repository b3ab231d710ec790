#include "esp-forwarder/sa_table/sa_table.h"

#include <algorithm>
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

size_t SaSnapshot::ShardOfHost(const uint8_t* address, bool v6) {
  uint32_t folded = 0;
  for (int i = 0; i < (v6 ? 16 : 4); ++i) folded = folded * 31 + address[i];
  return folded % kSaTableShards;
}

const SaEntry* SaSnapshot::Outbound(const uint8_t* dst, bool v6) const {
  const HostShard& hosts = host_shards_[ShardOfHost(dst, v6)];
  if (v6) {
    V6 key;
    std::memcpy(key.data(), dst, 16);
    if (auto it = hosts.v6.find(key); it != hosts.v6.end()) return Pick(it->second);
  } else {
    uint32_t key;
    std::memcpy(&key, dst, 4);
    if (auto it = hosts.v4.find(key); it != hosts.v4.end()) return Pick(it->second);
  }
  const SaEntry* seen = nullptr;    // newest with inbound traffic
  const SaEntry* oldest = nullptr;  // fallback
  for (const auto& ranged : ranges_->entries) {
    const SaEntry* entry = ranged.get();
    if (!esp::AnyContains(entry->sa->params().remote_ts, dst, v6)) continue;
    if (oldest == nullptr || Newer(oldest, entry)) oldest = entry;
    if (entry->sa->inbound_seen() && (seen == nullptr || Newer(entry, seen))) seen = entry;
  }
  return seen != nullptr ? seen : oldest;
}

std::vector<std::shared_ptr<const SaEntry>> SaSnapshot::All() const {
  std::vector<std::shared_ptr<const SaEntry>> all;
  all.reserve(size_);
  for (size_t k = 0; k < kSaTableShards; ++k) {
    for (const auto& [spi, entry] : spi_shards_[k].by_spi) all.push_back(entry);
  }
  return all;
}

SaTable::SaTable() {
  auto empty = std::make_shared<SaSnapshot>();
  empty->ranges_ = std::make_shared<const SaSnapshot::Ranges>();
  current_ = std::move(empty);
}

void SaTable::ReplaceLocked(uint32_t spi, std::shared_ptr<const SaEntry> entry) {
  EntryMap& by_spi = staged_[SaSnapshot::ShardOfSpi(spi)];
  auto unindex = [&](const SaEntry& old) {
    auto children = staged_by_ike_.find({old.ike_spi_i, old.ike_spi_r});
    if (children != staged_by_ike_.end()) {
      auto& spis = children->second;
      spis.erase(std::remove(spis.begin(), spis.end(), spi), spis.end());
      if (spis.empty()) staged_by_ike_.erase(children);
    }
    for (const esp::AddressRange& range : old.sa->params().remote_ts) {
      if (IsHost(range)) {
        const size_t shard = SaSnapshot::ShardOfHost(range.start.data(), range.v6);
        staged_hosts_[shard].erase(spi);
        dirty_hosts_[shard] = true;
      } else if (staged_ranged_.erase(spi) > 0) {
        dirty_ranges_ = true;
      }
    }
  };
  auto it = by_spi.find(spi);
  if (it != by_spi.end()) {
    unindex(*it->second);
    if (entry == nullptr) {
      by_spi.erase(it);
      --staged_count_;
    }
  } else if (entry != nullptr) {
    ++staged_count_;
  }
  dirty_spi_[SaSnapshot::ShardOfSpi(spi)] = true;
  if (entry == nullptr) return;
  staged_by_ike_[{entry->ike_spi_i, entry->ike_spi_r}].push_back(spi);
  for (const esp::AddressRange& range : entry->sa->params().remote_ts) {
    if (IsHost(range)) {
      const size_t shard = SaSnapshot::ShardOfHost(range.start.data(), range.v6);
      staged_hosts_[shard][spi] = entry;
      dirty_hosts_[shard] = true;
    } else {
      staged_ranged_[spi] = entry;
      dirty_ranges_ = true;
    }
  }
  by_spi[spi] = std::move(entry);
}

void SaTable::Put(std::shared_ptr<const SaEntry> entry) {
  absl::MutexLock lock(&mu_);
  const uint32_t spi = entry->sa->inbound_spi();
  ReplaceLocked(spi, std::move(entry));
}

void SaTable::Remove(uint32_t inbound_spi) {
  absl::MutexLock lock(&mu_);
  ReplaceLocked(inbound_spi, nullptr);
}

void SaTable::Clear() { RetainOnly({}); }

void SaTable::RetainOnly(const absl::flat_hash_set<uint32_t>& spis) {
  absl::MutexLock lock(&mu_);
  std::vector<uint32_t> gone;
  for (const EntryMap& shard : staged_) {
    for (const auto& [spi, entry] : shard) {
      if (!spis.contains(spi)) gone.push_back(spi);
    }
  }
  for (uint32_t spi : gone) ReplaceLocked(spi, nullptr);
}

std::shared_ptr<const SaEntry> SaTable::StagedLocked(uint32_t spi) const {
  const EntryMap& by_spi = staged_[SaSnapshot::ShardOfSpi(spi)];
  auto it = by_spi.find(spi);
  return it == by_spi.end() ? nullptr : it->second;
}

std::shared_ptr<const SaEntry> SaTable::Staged(uint32_t spi) const {
  absl::MutexLock lock(&mu_);
  return StagedLocked(spi);
}

std::vector<std::shared_ptr<const SaEntry>> SaTable::ChildrenOfLocked(uint64_t spi_i,
                                                                      uint64_t spi_r) const {
  std::vector<std::shared_ptr<const SaEntry>> children;
  if (auto it = staged_by_ike_.find({spi_i, spi_r}); it != staged_by_ike_.end()) {
    for (uint32_t spi : it->second) {
      children.push_back(staged_[SaSnapshot::ShardOfSpi(spi)].at(spi));
    }
  }
  return children;
}

void SaTable::Publish() {
  // Two writers (the store sync, the mobility reporter) must not store
  // their snapshots out of order: build and store under publish_mu_.
  absl::MutexLock publishing(&publish_mu_);
  auto snapshot = std::make_shared<SaSnapshot>(*Current());  // shares every shard
  {
    absl::MutexLock lock(&mu_);
    for (size_t k = 0; k < kSaTableShards; ++k) {
      if (dirty_spi_[k]) {
        auto shard = std::make_shared<SaSnapshot::SpiShard>();
        shard->by_spi = staged_[k];
        snapshot->spi_shards_.Set(k, std::move(shard));
        dirty_spi_[k] = false;
      }
      if (dirty_hosts_[k]) {
        auto shard = std::make_shared<SaSnapshot::HostShard>();
        for (const auto& [spi, entry] : staged_hosts_[k]) {
          shard->keep.push_back(entry);
          for (const esp::AddressRange& range : entry->sa->params().remote_ts) {
            if (!IsHost(range) || SaSnapshot::ShardOfHost(range.start.data(), range.v6) != k) {
              continue;
            }
            if (range.v6) {
              SaSnapshot::V6 key;
              std::memcpy(key.data(), range.start.data(), 16);
              SaSnapshot::AddCandidate(shard->v6[key], entry.get());
            } else {
              uint32_t key;
              std::memcpy(&key, range.start.data(), 4);
              SaSnapshot::AddCandidate(shard->v4[key], entry.get());
            }
          }
        }
        snapshot->host_shards_.Set(k, std::move(shard));
        dirty_hosts_[k] = false;
      }
    }
    if (dirty_ranges_) {
      auto ranges = std::make_shared<SaSnapshot::Ranges>();
      for (const auto& [spi, entry] : staged_ranged_) ranges->entries.push_back(entry);
      snapshot->ranges_ = std::move(ranges);
      dirty_ranges_ = false;
    }
    snapshot->size_ = staged_count_;
  }
  std::atomic_store_explicit(&current_, std::shared_ptr<const SaSnapshot>(std::move(snapshot)),
                             std::memory_order_release);
}

absl::StatusOr<net::IpEndpoint> SaTable::MoveRemote(uint32_t spi, const esp::EspSa* sa,
                                                    const net::IpEndpoint& remote) {
  net::IpEndpoint previous;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<const SaEntry> staged = StagedLocked(spi);
    if (staged == nullptr || staged->sa.get() != sa) {
      return absl::NotFoundError("the SA is gone or was replaced");
    }
    previous = staged->remote;
    if (previous == remote) return previous;
    auto moved = std::make_shared<SaEntry>(*staged);
    moved->remote = remote;
    ReplaceLocked(spi, std::move(moved));
  }
  Publish();
  return previous;
}

std::vector<std::shared_ptr<const SaEntry>> SaTable::MovePath(uint64_t spi_i, uint64_t spi_r,
                                                              const net::IpEndpoint& local,
                                                              const net::IpEndpoint& remote,
                                                              const Encap* encap) {
  std::vector<std::shared_ptr<const SaEntry>> moved;
  {
    absl::MutexLock lock(&mu_);
    for (std::shared_ptr<const SaEntry>& entry : ChildrenOfLocked(spi_i, spi_r)) {
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
      ReplaceLocked(entry->sa->inbound_spi(), std::move(changed));
      moved.push_back(std::move(entry));
    }
  }
  if (!moved.empty()) Publish();
  return moved;
}

}  // namespace vpn::forwarder
