// The forwarder's SAs: an immutable snapshot the workers read without locks
// (one atomic load per batch), replaced copy-on-write by the one writer (the
// store sync). Per-SA mutable state (replay window, sequence numbers,
// counters) lives in the shared EspSa objects, so a new snapshot with new
// endpoints keeps it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
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
};

class SaSnapshot {
 public:
  // Inbound: by the SPI the gateway receives on.
  const SaEntry* Inbound(uint32_t spi) const {
    auto it = by_spi_.find(spi);
    return it == by_spi_.end() ? nullptr : it->second.get();
  }
  // Outbound, make-before-break (RFC 7296 §2.8): of the SAs whose remote
  // selector covers `dst`, the newest that has received an authenticated
  // packet (the peer has installed it), else the oldest. So after a CHILD
  // rekey the old SA keeps carrying traffic until the client sends on the
  // new one or the old one is deleted. No allocation; candidates are
  // usually one or two.
  const SaEntry* Outbound(const uint8_t* dst, bool v6) const;
  size_t size() const { return by_spi_.size(); }
  std::vector<std::shared_ptr<const SaEntry>> All() const;

 private:
  friend class SaTable;
  using V6 = std::array<uint8_t, 16>;
  // SAs for one destination, newest (highest create_revision) first.
  using Candidates = absl::InlinedVector<const SaEntry*, 2>;
  void Index(const std::shared_ptr<const SaEntry>& entry);
  static void AddCandidate(Candidates& candidates, const SaEntry* entry);
  static const SaEntry* Pick(const Candidates& candidates);

  absl::flat_hash_map<uint32_t, std::shared_ptr<const SaEntry>> by_spi_;
  // Host selectors (/32, /128) by address; wider ones searched in order.
  absl::flat_hash_map<uint32_t, Candidates> out_v4_;
  absl::flat_hash_map<V6, Candidates> out_v6_;
  std::vector<const SaEntry*> out_ranges_;
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
  // are kept. Returns how many SAs it moved.
  size_t MovePath(uint64_t spi_i, uint64_t spi_r, const net::IpEndpoint& local,
                  const net::IpEndpoint& remote, const Encap* encap);

 private:
  // Serialises Publish() (build and store) between writers.
  absl::Mutex publish_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint32_t, std::shared_ptr<const SaEntry>> staged_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const SaSnapshot> current_;
};

}  // namespace vpn::forwarder
