#include <csignal>

#include "common/log/log.h"
#include "common/rpc/server_options.h"
#include "common/rpc/service_main.h"
#include "common/rpc/signals.h"
#include "gateway/gateway.h"

int main(int argc, char** argv) {
  vpn::rpc::PrepareProcess();
  const vpn::rpc::CommonFlags flags = vpn::rpc::ParseCommonFlags(
      argc, argv, "gateway [--config=FILE]: all four services in one process");
  const vpn::log::Logger log("gateway");
  if (absl::Status level = vpn::rpc::ApplyLogLevel(flags.log_level); !level.ok()) {
    log.Error("invalid flag", {{"error", level.message()}});
    return 2;
  }
  vpn::gateway::GatewayConfig config = vpn::gateway::DefaultGatewayConfig();
  absl::StatusOr<vpn::config::ConfigReader> reader =
      vpn::config::ConfigReader::FromFile(flags.config_path);
  if (!reader.ok()) {
    log.Error("invalid config", {{"error", reader.status().message()}});
    return 2;
  }
  vpn::gateway::ReadGatewayConfig(*reader, &config);
  if (absl::Status valid = reader->Finish(); !valid.ok()) {
    log.Error("invalid config", {{"error", valid.message()}});
    return 2;
  }
  if (!flags.grpc_listen.empty()) {
    if (absl::Status valid = vpn::rpc::ValidateListen(flags.grpc_listen); !valid.ok()) {
      log.Error("invalid flag", {{"error", "flag --grpc_listen: " + std::string(valid.message())}});
      return 2;
    }
    config.server.grpc_listen = flags.grpc_listen;
  }
  if (absl::Status secure = vpn::rpc::CheckTransportSecurity(config.server, "server.tls");
      !secure.ok()) {
    log.Error("invalid config", {{"error", secure.message()}});
    return 2;
  }
  if (flags.check_config) {
    log.Info("config is valid", {{"config", flags.config_path}});
    return 0;
  }
  if (!flags.metrics_listen.empty()) {
    if (absl::Status valid = vpn::config::ValidateHostPort(flags.metrics_listen);
        !valid.ok()) {
      log.Error("invalid flag", {{"error", "flag --metrics_listen: " +
                                               std::string(valid.message())}});
      return 2;
    }
    config.metrics_listen = flags.metrics_listen;
  }

  absl::StatusOr<std::unique_ptr<vpn::gateway::Gateway>> gateway =
      vpn::gateway::Gateway::Start(config);
  if (!gateway.ok()) {
    log.Error("start-up failed", {{"error", gateway.status().message()}});
    return 1;
  }
  log.Info("gateway up", {{"metrics_port", (*gateway)->metrics_port()}});
  const int signal_number = vpn::rpc::WaitForTerminationSignal();
  log.Info("stopping", {{"signal", signal_number}});
  (*gateway)->Stop();
  return 0;
}
