#include "mobility-service/mobility_service_impl.h"

#include <string>

namespace vpn::mobility {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace

grpc::Status MobilityServiceImpl::UpdateEndpoint(grpc::ServerContext*,
                                                 const v1::EndpointUpdate* request,
                                                 v1::EndpointUpdateReply* reply) {
  absl::StatusOr<int64_t> version = manager_->UpdateEndpoint(*request);
  if (!version.ok()) return ToGrpc(version.status());
  reply->set_version(*version);
  return grpc::Status::OK;
}

grpc::Status MobilityServiceImpl::ReportLiveness(grpc::ServerContext*,
                                                 const v1::LivenessReport* request,
                                                 v1::LivenessReply*) {
  absl::Time last_seen = absl::InfinitePast();  // unset: now
  if (request->has_last_seen()) {
    last_seen = absl::FromUnixSeconds(request->last_seen().seconds()) +
                absl::Nanoseconds(request->last_seen().nanos());
  }
  return ToGrpc(manager_->ReportLiveness(request->initiator_spi(),
                                         request->responder_spi(), last_seen));
}

grpc::Status MobilityServiceImpl::GetPath(grpc::ServerContext*,
                                          const v1::PathRequest* request,
                                          v1::PathReply* reply) {
  absl::StatusOr<v1::PathReply> path =
      manager_->GetPath(request->initiator_spi(), request->responder_spi());
  if (!path.ok()) return ToGrpc(path.status());
  *reply = std::move(*path);
  return grpc::Status::OK;
}

}  // namespace vpn::mobility
