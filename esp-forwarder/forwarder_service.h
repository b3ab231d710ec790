// vpn.v1.Forwarder: per-SA counters straight from the data plane's table,
// and direct SA writes for operators and tests. The store stays the one
// source of SAs: InstallSa/UpdateSa/RemoveSa write the "child/" record (keys
// already sealed, as ike-service writes them) and the table follows its
// watch within milliseconds, on every forwarder.
#pragma once

#include <memory>

#include "common/store/store.h"
#include "esp-forwarder/sa_table/sa_table.h"
#include "proto/vpn/v1/forwarder.grpc.pb.h"

namespace vpn::forwarder {

class ForwarderService final : public v1::Forwarder::Service {
 public:
  // `table` must outlive the service; `store` may be null (then the writes
  // fail with FAILED_PRECONDITION).
  ForwarderService(const SaTable* table, std::shared_ptr<store::Store> store)
      : table_(table), store_(std::move(store)) {}

  grpc::Status InstallSa(grpc::ServerContext*, const v1::InstallSaRequest* request,
                         v1::InstallSaReply*) override;
  grpc::Status UpdateSa(grpc::ServerContext*, const v1::InstallSaRequest* request,
                        v1::InstallSaReply*) override;
  grpc::Status RemoveSa(grpc::ServerContext*, const v1::RemoveSaRequest* request,
                        v1::RemoveSaReply*) override;
  grpc::Status Counters(grpc::ServerContext*, const v1::CountersRequest* request,
                        v1::CountersReply* reply) override;

 private:
  grpc::Status Write(const v1::InstallSaRequest& request, bool create);

  const SaTable* const table_;
  const std::shared_ptr<store::Store> store_;
};

}  // namespace vpn::forwarder
