// vpn.v1.Mobility over the Mobility Manager. Callers: ike-service (MOBIKE
// moves after the return-routability check, NAT rebinding seen on IKE,
// liveness) and esp-forwarder (NAT rebinding seen on ESP, liveness).
#pragma once

#include "mobility-service/tracker/mobility_manager.h"
#include "proto/vpn/v1/mobility.grpc.pb.h"

namespace vpn::mobility {

class MobilityServiceImpl final : public v1::Mobility::Service {
 public:
  explicit MobilityServiceImpl(MobilityManager* manager) : manager_(manager) {}

  grpc::Status UpdateEndpoint(grpc::ServerContext* context,
                              const v1::EndpointUpdate* request,
                              v1::EndpointUpdateReply* reply) override;
  grpc::Status ReportLiveness(grpc::ServerContext* context,
                              const v1::LivenessReport* request,
                              v1::LivenessReply* reply) override;
  grpc::Status GetPath(grpc::ServerContext* context, const v1::PathRequest* request,
                       v1::PathReply* reply) override;

 private:
  MobilityManager* const manager_;
};

}  // namespace vpn::mobility
