// The forwarder's SAs: an immutable snapshot the workers read without locks
// (one atomic load per batch), replaced copy-on-write by the writers (the
// store sync, the mobility reporter). Per-SA mutable state (replay window,
// sequence numbers, counters) lives in the shared EspSa objects, so a new
// snapshot with new endpoints keeps it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/net/ip_endpoint.h"
#include "esp-forwarder/esp/esp_sa.h"

namespace vpn::forwarder {

enum class Encap : uint8_t { kUdp, kRaw };

// One installed CHILD SA with where to send it.
struct SaEntry {
  std::shared_ptr<esp::EspSa> sa;
  net::IpEndpoint local;   // the gateway address the client uses
  net::IpEndpoint remote;  // the client (port: its NAT-T port; 0 for raw)
  Encap encap = Encap::kUdp;
  int64_t create_revision = 0;  // store revision that created the record
  // The IKE SA this CHILD SA belongs to (its record's ike_*_spi), for
  // reports to mobility-service.
  uint64_t ike_spi_i = 0;
  uint64_t ike_spi_r = 0;
  // The path generation (PathAuth) of the record that set local/remote/
  // encap: a record with a lower one does not move the SA back.
  uint64_t path_generation = 0;
};

// Copy-on-write in shards: a change rebuilds only the shards it touches
// (by SPI, and by the client address of host selectors), so installing or
// removing one SA costs about the same with 60,000 SAs as with 100.
inline constexpr size_t kSaTableShards = 1024;

// kSaTableShards shared shards, held in groups: copying the array shares
// every group (one pointer copy per group, not per shard), and replacing a
// shard copies only its group, once per copy of the array.
template <typename Shard>
class ShardArray {
 public:
  explicit ShardArray(std::shared_ptr<const Shard> fill) {
    auto group = std::make_shared<Group>();
    group->fill(std::move(fill));
    groups_.fill(group);
  }
  const Shard& operator[](size_t k) const { return *(*groups_[k / kGroupSize])[k % kGroupSize]; }
  // Only on a copy that no reader can see yet.
  void Set(size_t k, std::shared_ptr<const Shard> shard) {
    std::shared_ptr<Group>& group = groups_[k / kGroupSize];
    if (group.use_count() != 1) group = std::make_shared<Group>(*group);
    (*group)[k % kGroupSize] = std::move(shard);
  }

 private:
  static constexpr size_t kGroupSize = 32;
  static_assert(kSaTableShards % kGroupSize == 0);
  using Group = std::array<std::shared_ptr<const Shard>, kGroupSize>;
  std::array<std::shared_ptr<Group>, kSaTableShards / kGroupSize> groups_;
};

class SaSnapshot {
 public:
  // Inbound: by the SPI the gateway receives on.
  const SaEntry* Inbound(uint32_t spi) const {
    const auto& by_spi = spi_shards_[ShardOfSpi(spi)].by_spi;
    auto it = by_spi.find(spi);
    return it == by_spi.end() ? nullptr : it->second.get();
  }
  // Outbound, make-before-break (RFC 7296 §2.8): of the SAs whose remote
  // selector covers `dst`, the newest that has received an authenticated
  // packet (the peer has installed it), else the oldest. So after a CHILD
  // rekey the old SA keeps carrying traffic until the client sends on the
  // new one or the old one is deleted. No allocation; candidates are
  // usually one or two.
  const SaEntry* Outbound(const uint8_t* dst, bool v6) const;
  size_t size() const { return size_; }
  std::vector<std::shared_ptr<const SaEntry>> All() const;

 private:
  friend class SaTable;
  using V6 = std::array<uint8_t, 16>;
  // SAs for one destination, newest (highest create_revision) first.
  using Candidates = absl::InlinedVector<const SaEntry*, 2>;
  using EntryMap = absl::flat_hash_map<uint32_t, std::shared_ptr<const SaEntry>>;
  struct SpiShard {
    EntryMap by_spi;
  };
  // Host selectors (/32, /128) by address; `keep` owns what they point to.
  struct HostShard {
    absl::flat_hash_map<uint32_t, Candidates> v4;
    absl::flat_hash_map<V6, Candidates> v6;
    std::vector<std::shared_ptr<const SaEntry>> keep;
  };
  // SAs with wider remote selectors, searched in order.
  struct Ranges {
    std::vector<std::shared_ptr<const SaEntry>> entries;
  };

  static size_t ShardOfSpi(uint32_t spi) {
    return (spi ^ (spi >> 8) ^ (spi >> 16)) % kSaTableShards;
  }
  static size_t ShardOfHost(const uint8_t* address, bool v6);
  static void AddCandidate(Candidates& candidates, const SaEntry* entry);
  static const SaEntry* Pick(const Candidates& candidates);

  ShardArray<SpiShard> spi_shards_{std::make_shared<const SpiShard>()};
  ShardArray<HostShard> host_shards_{std::make_shared<const HostShard>()};
  std::shared_ptr<const Ranges> ranges_;
  size_t size_ = 0;
};

class SaTable {
 public:
  SaTable();

  std::shared_ptr<const SaSnapshot> Current() const {
    return std::atomic_load_explicit(&current_, std::memory_order_acquire);
  }

  // Writer side (one thread at a time). Changes become visible on Publish().
  void Put(std::shared_ptr<const SaEntry> entry);
  void Remove(uint32_t inbound_spi);
  void Clear();
  // Removes every staged SA whose SPI is not in `spis`.
  void RetainOnly(const absl::flat_hash_set<uint32_t>& spis);
  // The staged entry for `spi`, if any.
  std::shared_ptr<const SaEntry> Staged(uint32_t spi) const;
  void Publish();

  // Points the staged entry of `spi` at `remote` (same EspSa: SPIs,
  // sequence numbers and replay window kept) when it still holds `sa`, and
  // publishes. Returns the remote it had; kNotFound when the SA is gone or
  // was replaced. Safe beside the store sync (the other writer): whichever
  // Put comes last wins, and the store's record wins in the end.
  absl::StatusOr<net::IpEndpoint> MoveRemote(uint32_t spi, const esp::EspSa* sa,
                                             const net::IpEndpoint& remote);

  // Points every staged CHILD SA of IKE SA (spi_i, spi_r) at a new path
  // (an authenticated MOBIKE move, announced by ike-service before its
  // durable commit) and publishes once. `encap` null keeps each SA's
  // encapsulation. Same EspSas: SPIs, sequence numbers and replay windows
  // are kept. Returns the entries it moved, as they were before the move.
  std::vector<std::shared_ptr<const SaEntry>> MovePath(uint64_t spi_i, uint64_t spi_r,
                                                       const net::IpEndpoint& local,
                                                       const net::IpEndpoint& remote,
                                                       const Encap* encap);

 private:
  using EntryMap = SaSnapshot::EntryMap;
  // Stages `entry` (null: none) in place of what `spi` had, marking the
  // shards either touches.
  void ReplaceLocked(uint32_t spi, std::shared_ptr<const SaEntry> entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<const SaEntry> StagedLocked(uint32_t spi) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::shared_ptr<const SaEntry>> ChildrenOfLocked(uint64_t spi_i,
                                                               uint64_t spi_r) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Serialises Publish() (build and store) between writers.
  absl::Mutex publish_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  // The staged SAs by SPI shard; those with host selectors also by host
  // shard (by SPI), the others in staged_ranged_.
  std::array<EntryMap, kSaTableShards> staged_ ABSL_GUARDED_BY(mu_);
  std::array<EntryMap, kSaTableShards> staged_hosts_ ABSL_GUARDED_BY(mu_);
  EntryMap staged_ranged_ ABSL_GUARDED_BY(mu_);
  // The staged CHILD SAs of each IKE SA (spi_i, spi_r), for MovePath.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, absl::InlinedVector<uint32_t, 2>>
      staged_by_ike_ ABSL_GUARDED_BY(mu_);
  size_t staged_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<bool, kSaTableShards> dirty_spi_ ABSL_GUARDED_BY(mu_) = {};
  std::array<bool, kSaTableShards> dirty_hosts_ ABSL_GUARDED_BY(mu_) = {};
  bool dirty_ranges_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<const SaSnapshot> current_;
};

}  // namespace vpn::forwarder
