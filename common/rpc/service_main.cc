#include "common/rpc/service_main.h"

#include <csignal>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "common/rpc/metrics.h"
#include "common/rpc/service_host.h"
#include "common/rpc/signals.h"

ABSL_FLAG(std::string, config, "", "Path of the YAML config file.");
ABSL_FLAG(std::string, grpc_listen, "",
          "Overrides server.grpc_listen (host:port).");
ABSL_FLAG(std::string, metrics_listen, "",
          "Overrides server.metrics_listen (host:port).");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");
ABSL_FLAG(bool, check_config, false,
          "Read and check the config, then exit: 0 if it is valid, 2 if not.");

namespace vpn::rpc {

CommonFlags ParseCommonFlags(int argc, char** argv, const std::string& usage) {
  absl::SetProgramUsageMessage(usage);
  absl::ParseCommandLine(argc, argv);
  return CommonFlags{absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_grpc_listen),
                     absl::GetFlag(FLAGS_metrics_listen), absl::GetFlag(FLAGS_log_level),
                     absl::GetFlag(FLAGS_check_config)};
}

absl::Status ApplyLogLevel(const std::string& level) {
  if (level == "debug") {
    log::SetMinimumLevel(log::Level::kDebug);
  } else if (level == "info") {
    log::SetMinimumLevel(log::Level::kInfo);
  } else if (level == "warning") {
    log::SetMinimumLevel(log::Level::kWarning);
  } else if (level == "error") {
    log::SetMinimumLevel(log::Level::kError);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --log_level: '", level,
                     "' is not debug, info, warning or error"));
  }
  return absl::OkStatus();
}

void PrepareProcess() {
  BlockTerminationSignals();
  std::signal(SIGPIPE, SIG_IGN);
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles,
  // which cost 2-4% of a handshake in perf; the tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

int RunServiceMain(int argc, char** argv, const ServiceDefinition& service) {
  PrepareProcess();
  const CommonFlags flags = ParseCommonFlags(
      argc, argv, absl::StrCat(service.name, " [--config=FILE] [flags]"));
  const log::Logger log(service.name);
  if (absl::Status level = ApplyLogLevel(flags.log_level); !level.ok()) {
    log.Error("invalid flag", {{"error", level.message()}});
    return 2;
  }

  ServerOptions options;
  options.grpc_listen = service.default_grpc_listen;
  options.metrics_listen = service.default_metrics_listen;
  absl::StatusOr<config::ConfigReader> reader =
      config::ConfigReader::FromFile(flags.config_path);
  if (!reader.ok()) {
    log.Error("invalid config", {{"error", reader.status().message()}});
    return 2;
  }
  ReadServerOptions(*reader, &options);
  service.read_config(*reader);
  if (absl::Status valid = reader->Finish(); !valid.ok()) {
    log.Error("invalid config", {{"error", valid.message()}});
    return 2;
  }
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string&>{"--grpc_listen", flags.grpc_listen},
        {"--metrics_listen", flags.metrics_listen}}) {
    if (value.empty()) continue;
    const absl::Status valid = flag == std::string("--grpc_listen")
                                   ? ValidateListen(value)
                                   : config::ValidateHostPort(value);
    if (!valid.ok()) {
      log.Error("invalid flag",
                {{"error", absl::StrCat("flag ", flag, ": ", valid.message())}});
      return 2;
    }
  }
  if (!flags.grpc_listen.empty()) options.grpc_listen = flags.grpc_listen;
  if (!flags.metrics_listen.empty()) options.metrics_listen = flags.metrics_listen;
  if (absl::Status secure = CheckTransportSecurity(options, "server.tls"); !secure.ok()) {
    log.Error("invalid config", {{"error", secure.message()}});
    return 2;
  }
  if (flags.check_config) {
    log.Info("config is valid", {{"config", flags.config_path}});
    return 0;
  }

  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> metrics =
      MetricsEndpoint::Start(options.metrics_listen);
  if (!metrics.ok()) {
    log.Error("start-up failed", {{"error", metrics.status().message()}});
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Component>> component = service.create(options, (*metrics)->registry());
  if (!component.ok()) {
    log.Error("start-up failed", {{"error", component.status().message()}});
    return 1;
  }
  absl::StatusOr<std::unique_ptr<ServiceHost>> host = ServiceHost::Start(
      service.name, options, (*component)->services(), **metrics);
  if (!host.ok()) {
    log.Error("start-up failed", {{"error", host.status().message()}});
    return 1;
  }

  const int signal_number = WaitForTerminationSignal();
  log.Info("stopping", {{"signal", signal_number}});
  (*component)->Stop();
  (*host)->Shutdown();
  return 0;
}

}  // namespace vpn::rpc
