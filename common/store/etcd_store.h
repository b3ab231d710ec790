// Store backend for gateways spanning machines: etcd v3 over gRPC, using the
// API subset in proto/etcd (checked against etcd 3.4.23).
//
// - Fail fast: every call has a deadline (op_timeout) and does not wait for
//   a connection; a lost etcd gives kUnavailable naming the endpoint. The
//   channel reconnects by itself (100 ms..1 s backoff), so calls recover
//   when etcd returns, without recreating the store.
// - Limits: requests over etcd's 1.5 MiB and Txns over 128 ops are refused
//   up front with kInvalidArgument (see kMaxRequestBytes / kMaxTxnOps).
// - Auth: a client certificate (`tls`), whose CN etcd takes as the user name
//   under --client-cert-auth; or a username, for which Authenticate() gets a
//   token that is sent as the `token` metadata and refreshed when etcd
//   rejects it. A request the user's roles do not allow gives
//   kPermissionDenied naming the key or prefix.
// - Watch: one stream per Watcher; it reconnects from the last seen
//   revision + 1, and when etcd reports the revision compacted it re-lists
//   the prefix and emits a kResync before continuing.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc/server_options.h"
#include "common/store/store.h"

namespace vpn::store {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "host:port"; tried in turn
  // TLS with a client certificate when enabled (all three files).
  rpc::TlsFiles tls;
  // User authentication (etcd `auth enable`); empty username: none.
  std::string username;
  std::string password;
  // Deadline of each call.
  absl::Duration op_timeout = absl::Seconds(2);
};

namespace etcd_internal {
class Client;
}

class EtcdStore : public Store {
 public:
  // Validates the options and reads the TLS files; contacts etcd only to
  // authenticate (when a username is set).
  static absl::StatusOr<std::unique_ptr<EtcdStore>> Connect(
      const EtcdOptions& options);
  ~EtcdStore() override;

  absl::StatusOr<KeyValue> Get(absl::string_view key) override;
  absl::StatusOr<ListResult> List(absl::string_view prefix) override;
  absl::StatusOr<WriteResult> Put(absl::string_view key,
                                  absl::string_view value,
                                  const PutOptions& options = {}) override;
  absl::StatusOr<WriteResult> Delete(
      absl::string_view key,
      const Condition& condition = Condition::Any()) override;
  absl::StatusOr<TxnResult> Txn(const std::vector<Op>& ops) override;
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(absl::string_view prefix,
                                                 int64_t from_revision) override;
  absl::StatusOr<LeaseId> GrantLease(absl::Duration ttl) override;
  absl::Status KeepAlive(LeaseId lease) override;
  absl::Status RevokeLease(LeaseId lease) override;
  absl::Status Compact(int64_t revision) override;

 private:
  explicit EtcdStore(std::shared_ptr<etcd_internal::Client> client)
      : client_(std::move(client)) {}
  // Shared with watchers, which may outlive a call but not the process.
  std::shared_ptr<etcd_internal::Client> client_;
};

}  // namespace vpn::store
