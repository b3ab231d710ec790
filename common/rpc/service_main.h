// The shared main() of every service binary: flags, config file, logging,
// metrics, the gRPC host, and a clean stop on SIGTERM.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "prometheus/registry.h"

namespace vpn::rpc {

struct ServiceDefinition {
  std::string name;                 // "auth-service"
  std::string default_grpc_listen;  // "0.0.0.0:50052"
  std::string default_metrics_listen;
  // Reads the service's own fields (the `server` section is read for it).
  std::function<void(config::ConfigReader&)> read_config;
  // Builds the component once the config is valid.
  std::function<absl::StatusOr<std::unique_ptr<Component>>(
      const ServerOptions&, prometheus::Registry&)>
      create;
};

// Parses flags (--config, --grpc_listen, --metrics_listen, --log_level),
// runs the service until SIGTERM/SIGINT and returns the exit code:
// 0 after a clean stop, 2 for a bad config, 1 when start-up fails.
int RunServiceMain(int argc, char** argv, const ServiceDefinition& service);

// The flags' values, for binaries (gateway) that host components themselves.
struct CommonFlags {
  std::string config_path;
  std::string grpc_listen;
  std::string metrics_listen;
  std::string log_level;
  bool check_config = false;
};
CommonFlags ParseCommonFlags(int argc, char** argv, const std::string& usage);

// First thing in a service's main(): SIGTERM/SIGINT blocked for
// WaitForTerminationSignal, SIGPIPE ignored, Mutex deadlock detection off.
void PrepareProcess();

// Applies --log_level; the error names the flag.
absl::Status ApplyLogLevel(const std::string& level);

}  // namespace vpn::rpc
