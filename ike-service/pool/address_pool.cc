#include "ike-service/pool/address_pool.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/net/ip_endpoint.h"
#include "prometheus/gauge.h"

namespace vpn::ike {

absl::StatusOr<std::unique_ptr<AddressPool>> AddressPool::Create(absl::string_view cidr,
                                                                 store::Store* store) {
  const size_t slash = cidr.find('/');
  int prefix = -1;
  if (slash == absl::string_view::npos ||
      !absl::SimpleAtoi(cidr.substr(slash + 1), &prefix)) {
    return absl::InvalidArgumentError(absl::StrCat("'", cidr, "' is not address/prefix"));
  }
  absl::StatusOr<net::IpEndpoint> network = net::IpEndpoint::Parse(cidr.substr(0, slash));
  if (!network.ok()) return network.status();
  const bool v6 = network->is_v6();
  const int bits = v6 ? 128 : 32;
  if (prefix < bits - 20 || prefix > bits - 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", cidr, "': prefix must be /", bits - 20, " to /", bits - 2));
  }
  absl::uint128 base = 0;
  for (uint8_t byte : network->address_bytes()) base = (base << 8) | byte;
  const absl::uint128 host_mask = (absl::uint128(1) << (bits - prefix)) - 1;
  if ((base & host_mask) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", cidr, "': host bits are set in the network address"));
  }
  uint64_t count = absl::Uint128Low64(host_mask) + 1;
  // Skip the network address and the gateway's own; IPv4 also the broadcast.
  const uint64_t size = count - 2 - (v6 ? 0 : 1);
  return std::unique_ptr<AddressPool>(
      new AddressPool(std::string(cidr), v6, prefix, base + 2, size, store));
}

void AddressPool::ExportMetricsIn(prometheus::Registry& registry) {
  // Both pools (v4 and v6) register the same families; the registry merges
  // them, one series per pool.
  prometheus::BuildGauge()
      .Name("ike_address_pool_addresses")
      .Help("Addresses the pool can lease to clients.")
      .Register(registry)
      .Add({{"pool", cidr_}})
      .Set(static_cast<double>(size_));
  exhausted_ = &prometheus::BuildCounter()
                    .Name("ike_address_pool_exhausted_total")
                    .Help("Address requests refused because every address in the pool "
                          "was leased.")
                    .Register(registry)
                    .Add({{"pool", cidr_}});
}

std::string AddressPool::AddressAt(uint64_t index) const {
  const absl::uint128 value = first_ + index;
  const int length = v6_ ? 16 : 4;
  std::string address(length, '\0');
  for (int i = 0; i < length; ++i) {
    address[length - 1 - i] = static_cast<char>(
        absl::Uint128Low64(value >> (8 * i)) & 0xff);
  }
  return address;
}

std::string AddressPool::LeaseKey(absl::string_view address) const {
  return absl::StrCat("pool/", v6_ ? "v6/" : "v4/", absl::BytesToHexString(address));
}

absl::StatusOr<AddressPool::Lease> AddressPool::Acquire(absl::string_view owner) {
  uint64_t start;
  {
    absl::MutexLock lock(&mu_);
    start = cursor_;
  }
  for (uint64_t step = 0; step < size_; ++step) {
    const uint64_t index = (start + step) % size_;
    const std::string address = AddressAt(index);
    store::PutOptions create_only;
    create_only.condition = store::Condition::CreateOnly();
    // Durable with the SA's record, written after it (or its release).
    create_only.defer_durability = true;
    absl::StatusOr<store::WriteResult> leased =
        store_->Put(LeaseKey(address), owner, create_only);
    if (leased.ok()) {
      absl::MutexLock lock(&mu_);
      cursor_ = (index + 1) % size_;
      return Lease{address, leased->revision};
    }
    if (!store::IsConflict(leased.status())) return leased.status();
  }
  if (exhausted_ != nullptr) exhausted_->Increment();
  return absl::ResourceExhaustedError(absl::StrCat("address pool ", cidr_, " is full"));
}

store::Op AddressPool::ReleaseOp(const Lease& lease) const {
  return store::Op::Delete(LeaseKey(lease.address), store::Condition::ModRevisionIs(lease.revision));
}

absl::Status AddressPool::Release(absl::string_view address, absl::string_view owner) {
  const std::string key = LeaseKey(address);
  absl::StatusOr<store::KeyValue> lease = store_->Get(key);
  if (!lease.ok()) return lease.status();
  if (lease->value != owner) {
    return absl::FailedPreconditionError(
        absl::StrCat("address lease ", key, " belongs to another SA"));
  }
  return store_->Delete(key, store::Condition::VersionIs(lease->version)).status();
}

}  // namespace vpn::ike
