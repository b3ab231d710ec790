// Prometheus metrics for one process: the registry, the /metrics endpoint,
// each component's *_build_info gauge, and gRPC request counters/latencies.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace vpn::rpc {

class MetricsEndpoint {
 public:
  // Serves /metrics on `listen` (host:port, port 0 picks one); an empty
  // `listen` keeps metrics in the registry without serving them.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen);

  prometheus::Registry& registry() { return *registry_; }
  // Bound port, or 0 when not serving.
  int port() const;

  ~MetricsEndpoint();

  // Sets `<component>_build_info{version=...} 1` ("ike-service" -> ike_service).
  void AddBuildInfo(const std::string& component);

  // Counts and times every RPC of a server, labelled with `component`.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewServerInterceptorFactory(const std::string& component);

  // grpc_server_denied_total{method,caller}: calls the authorization table
  // refused (common/rpc/authorization.h).
  prometheus::Family<prometheus::Counter>& denied() { return *denied_; }

 private:
  MetricsEndpoint();

  std::string host_;  // where /metrics listens, to wake it on shutdown
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>* handled_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Counter>* denied_;
};

// The version compiled into every binary.
const char* BuildVersion();

}  // namespace vpn::rpc
