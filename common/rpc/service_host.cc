#include "common/rpc/service_host.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace vpn::rpc {

absl::StatusOr<std::unique_ptr<ServiceHost>> ServiceHost::Start(
    const std::string& component, const ServerOptions& options,
    const std::vector<grpc::Service*>& services, MetricsEndpoint& metrics) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.grpc_listen, *credentials, &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(metrics.NewServerInterceptorFactory(component));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat(component, ": cannot listen on ", options.grpc_listen));
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  metrics.AddBuildInfo(component);
  std::unique_ptr<ServiceHost> host(
      new ServiceHost(std::move(server), port, component));
  host->log_.Info("serving", {{"grpc_port", port},
                              {"metrics_port", metrics.port()},
                              {"mtls", options.tls.enabled()},
                              {"version", BuildVersion()}});
  return host;
}

ServiceHost::~ServiceHost() { Shutdown(absl::ZeroDuration()); }

void ServiceHost::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(grace));
  server_->Wait();
  log_.Info("stopped");
}

}  // namespace vpn::rpc
