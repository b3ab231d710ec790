#include "common/rpc/service_host.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/rpc/authorization.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"

namespace vpn::rpc {

absl::StatusOr<std::unique_ptr<ServiceHost>> ServiceHost::Start(
    const std::string& component, const ServerOptions& options,
    const std::vector<grpc::Service*>& services, MetricsEndpoint& metrics) {
  std::string socket_path;
  const bool unix_socket = IsUnixListen(options.grpc_listen, &socket_path);
  // Plaintext listeners use gRPC's local credentials (no bytes on the wire
  // beyond plaintext's), which unlike the insecure ones run the
  // authorization hook; insecure_plaintext needs no hook: every caller may
  // do everything.
  PlaintextTrust plaintext = PlaintextTrust::kNone;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials;
  if (options.tls.enabled()) {
    credentials = MakeServerCredentials(options.tls);
    if (!credentials.ok()) return credentials.status();
  } else if (options.insecure_plaintext) {
    plaintext = PlaintextTrust::kEveryRole;
    credentials = grpc::InsecureServerCredentials();
  } else if (unix_socket) {
    plaintext = PlaintextTrust::kOperator;
    credentials = grpc::experimental::LocalServerCredentials(UDS);
  } else {
    credentials = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  }
  if (plaintext != PlaintextTrust::kEveryRole) {
    (*credentials)
        ->SetAuthMetadataProcessor(
            std::make_shared<CallerAuthorizer>(component, plaintext, metrics.denied()));
  }
  if (unix_socket) {
    // The socket's directory, made owner-only when it does not exist yet
    // (/run/vpn-gateway on a fresh boot).
    const std::string dir = socket_path.substr(0, socket_path.rfind('/'));
    if (!dir.empty() && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::UnavailableError(absl::StrCat(component, ": cannot create '", dir,
                                                 "': ", std::strerror(errno)));
    }
    // A socket left by a killed process would make the bind fail.
    if (::unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
      return absl::UnavailableError(absl::StrCat(component, ": cannot remove stale socket '",
                                                 socket_path, "': ", std::strerror(errno)));
    }
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.grpc_listen, *credentials, &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  // A peer that vanished without closing its connection (a partitioned
  // node) is found within 30 s, so its streams end: the relay frees a
  // replica's name only when its stream ends.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(metrics.NewServerInterceptorFactory(component));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  // The socket is born 0600: no moment where another user could connect.
  const mode_t old_umask = unix_socket ? ::umask(0177) : 0;
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (unix_socket) ::umask(old_umask);
  if (server == nullptr || (port == 0 && !unix_socket)) {
    return absl::UnavailableError(
        absl::StrCat(component, ": cannot listen on ", options.grpc_listen));
  }
  if (unix_socket) port = 0;  // gRPC reports 1; "serving" names the path
  // Probes without a certificate get a server of their own that has no
  // other service to reach.
  std::unique_ptr<grpc::Server> health_server;
  int health_port = 0;
  if (!options.health_listen.empty()) {
    grpc::ServerBuilder health_builder;
    health_builder.AddListeningPort(options.health_listen, grpc::InsecureServerCredentials(),
                                    &health_port);
    health_server = health_builder.BuildAndStart();
    if (health_server == nullptr || health_port == 0) {
      server->Shutdown();
      return absl::UnavailableError(
          absl::StrCat(component, ": cannot listen on ", options.health_listen));
    }
    health_server->GetHealthCheckService()->SetServingStatus(true);
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  metrics.AddBuildInfo(component);
  std::unique_ptr<ServiceHost> host(
      new ServiceHost(std::move(server), port, component));
  host->health_server_ = std::move(health_server);
  host->health_port_ = health_port;
  host->log_.Info("serving", {{"grpc_port", port},
                              {"grpc_listen", options.grpc_listen},
                              {"health_port", health_port},
                              {"metrics_port", metrics.port()},
                              {"mtls", options.tls.enabled()},
                              {"version", BuildVersion()}});
  if (plaintext == PlaintextTrust::kEveryRole) {
    host->insecure_warning_ = std::thread([h = host.get()] { h->WarnInsecureEveryMinute(); });
  } else if (plaintext == PlaintextTrust::kNone && !options.tls.enabled()) {
    host->log_.Warning("no mTLS: callers have no role and may only run health checks",
                       {{"field", "server.tls"}});
  }
  return host;
}

ServiceHost::~ServiceHost() { Shutdown(absl::ZeroDuration()); }

void ServiceHost::WarnInsecureEveryMinute() {
  do {
    log_.Warning("insecure_plaintext: serving without mTLS; every caller holds every role",
                 {{"field", "server.insecure_plaintext"}});
  } while (!stopping_.WaitForNotificationWithTimeout(absl::Minutes(1)));
}

void ServiceHost::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  stopping_.Notify();
  if (insecure_warning_.joinable()) insecure_warning_.join();
  server_->GetHealthCheckService()->SetServingStatus(false);
  if (health_server_ != nullptr) {
    health_server_->GetHealthCheckService()->SetServingStatus(false);
    health_server_->Shutdown(std::chrono::system_clock::now());
    health_server_->Wait();
  }
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(grace));
  server_->Wait();
  log_.Info("stopped");
}

}  // namespace vpn::rpc
