// A Store that passes every call on to another one: tests derive from it
// and override only the calls they interfere with (a failing write, a
// writer slipping in before a commit).
#pragma once

#include <memory>
#include <vector>

#include "common/store/store.h"

namespace vpn::store {

class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store* inner) : inner_(inner) {}

  absl::StatusOr<KeyValue> Get(absl::string_view key) override { return inner_->Get(key); }
  absl::StatusOr<ListResult> List(absl::string_view prefix) override {
    return inner_->List(prefix);
  }
  absl::StatusOr<WriteResult> Put(absl::string_view key, absl::string_view value,
                                  const PutOptions& options) override {
    return inner_->Put(key, value, options);
  }
  absl::StatusOr<WriteResult> Delete(absl::string_view key,
                                     const Condition& condition) override {
    return inner_->Delete(key, condition);
  }
  absl::StatusOr<TxnResult> Txn(const std::vector<Op>& ops) override { return inner_->Txn(ops); }
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(absl::string_view prefix,
                                                 int64_t from) override {
    return inner_->Watch(prefix, from);
  }
  absl::StatusOr<LeaseId> GrantLease(absl::Duration ttl) override {
    return inner_->GrantLease(ttl);
  }
  absl::Status KeepAlive(LeaseId lease) override { return inner_->KeepAlive(lease); }
  absl::Status RevokeLease(LeaseId lease) override { return inner_->RevokeLease(lease); }
  absl::Status Compact(int64_t revision) override { return inner_->Compact(revision); }

 private:
  Store* const inner_;
};

}  // namespace vpn::store
