// Virtual IP addresses for clients (RFC 7296 §3.15). Leases live in the
// store as create-only keys, so two ike-service replicas never hand out the
// same address, and an address comes back when its SA ends.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/store/store.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace vpn::ike {

class AddressPool {
 public:
  // `cidr` is "10.10.0.0/24" or "fd00:10::/112" (at most 2^20 addresses).
  // The network's first host address is kept for the gateway's tunnel side.
  static absl::StatusOr<std::unique_ptr<AddressPool>> Create(absl::string_view cidr,
                                                             store::Store* store);

  bool is_v6() const { return v6_; }
  int prefix_length() const { return prefix_length_; }
  const std::string& cidr() const { return cidr_; }
  // Assignable addresses (the network, the gateway's and IPv4's broadcast
  // address excluded).
  uint64_t size() const { return size_; }

  // Exports, labelled pool="<cidr>": ike_address_pool_addresses (size())
  // and ike_address_pool_exhausted_total (Acquire calls that found every
  // address leased, by any replica: those clients got no address).
  void ExportMetricsIn(prometheus::Registry& registry);

  struct Lease {
    std::string address;    // 4 or 16 bytes
    int64_t revision = 0;   // the store revision its key was written at
  };
  // Leases a free address to `owner` (an SA's store key).
  // kResourceExhausted when none is left. The lease is not waited on to be
  // durable: it becomes so with the next store write that is, at the
  // latest the SA's record or the lease's release (a crash before either
  // loses nothing that refers to it).
  absl::StatusOr<Lease> Acquire(absl::string_view owner);
  // The store op that gives a lease back if it is still as Acquire wrote it
  // (to join a transaction of the SA's other writes).
  store::Op ReleaseOp(const Lease& lease) const;
  // Gives `address` back if `owner` holds it (the version is not known,
  // e.g. after a restart).
  absl::Status Release(absl::string_view address, absl::string_view owner);

 private:
  AddressPool(std::string cidr, bool v6, int prefix_length, absl::uint128 first,
              uint64_t size, store::Store* store)
      : cidr_(std::move(cidr)), v6_(v6), prefix_length_(prefix_length),
        first_(first), size_(size), store_(store) {}

  std::string LeaseKey(absl::string_view address) const;
  std::string AddressAt(uint64_t index) const;

  const std::string cidr_;
  const bool v6_;
  const int prefix_length_;
  const absl::uint128 first_;  // first assignable address
  const uint64_t size_;        // assignable addresses
  store::Store* const store_;
  prometheus::Counter* exhausted_ = nullptr;  // set once, before Acquire runs
  absl::Mutex mu_;
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vpn::ike
