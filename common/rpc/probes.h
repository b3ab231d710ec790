// Client-side checks of what every service serves: health, reflection and
// /metrics. Used by vpnctl, the README's run script and the smoke tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace vpn::rpc {

// grpc.health.v1 Check; returns "SERVING", "NOT_SERVING", ...
absl::StatusOr<std::string> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                        const std::string& service = "",
                                        absl::Duration timeout = absl::Seconds(3));

// Service names listed by server reflection.
absl::StatusOr<std::vector<std::string>> ListServices(
    const std::shared_ptr<grpc::Channel>& channel,
    absl::Duration timeout = absl::Seconds(3));

// GET http://host:port/metrics; returns the body.
absl::StatusOr<std::string> FetchMetrics(const std::string& host, int port,
                                         absl::Duration timeout = absl::Seconds(3));

}  // namespace vpn::rpc
