// The operator's API (vpn.v1.Management), served by every ike-service
// replica. SA lists and events come from the store, so any replica answers
// for all of them; a replica asked to terminate another one's SA takes it
// over first.
#pragma once

#include <functional>
#include <string>

#include "common/store/store.h"
#include "proto/vpn/v1/management.grpc.pb.h"

namespace vpn::ike {

class ManagementService final : public v1::Management::Service {
 public:
  // Deletes an IKE SA (INFORMATIONAL DELETE to the client); kNotFound when
  // there is no such established SA.
  using Terminator = std::function<absl::Status(uint64_t spi_i, uint64_t spi_r)>;

  ManagementService(store::Store* store, Terminator terminate)
      : store_(store), terminate_(std::move(terminate)) {}

  grpc::Status ListSas(grpc::ServerContext* context, const v1::ListSasRequest* request,
                       v1::ListSasReply* reply) override;
  grpc::Status GetSa(grpc::ServerContext* context, const v1::GetSaRequest* request,
                     v1::GetSaReply* reply) override;
  grpc::Status TerminateSa(grpc::ServerContext* context,
                           const v1::TerminateSaRequest* request,
                           v1::TerminateSaReply* reply) override;
  grpc::Status GetCounters(grpc::ServerContext* context,
                           const v1::GetCountersRequest* request,
                           v1::GetCountersReply* reply) override;
  grpc::Status WatchEvents(grpc::ServerContext* context,
                           const v1::WatchEventsRequest* request,
                           grpc::ServerWriter<v1::SaEvent>* writer) override;

 private:
  store::Store* const store_;
  const Terminator terminate_;
};

// Removes what an operator must never see: sealed keys, cached responses.
void Redact(v1::IkeSa* sa);
void Redact(v1::ChildSa* sa);

}  // namespace vpn::ike
