// Calls a gRPC service implementation in the same process (`gateway` hosts
// all four services): no serialization, sockets or thread hand-offs. The
// error keeps the service's status code and names the call.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"

namespace vpn::rpc {

template <typename Service, typename Request, typename Reply>
absl::StatusOr<Reply> CallInProcess(Service* service,
                                    grpc::Status (Service::*method)(grpc::ServerContext*,
                                                                    const Request*, Reply*),
                                    const Request& request, absl::string_view name) {
  grpc::ServerContext context;
  Reply reply;
  grpc::Status status = (service->*method)(&context, &request, &reply);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat(name, ": ", status.error_message()));
  }
  return reply;
}

}  // namespace vpn::rpc
