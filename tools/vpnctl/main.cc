// vpnctl: the operator's command line for the gateway's gRPC APIs.
//
//   vpnctl [--target=host:port] [--tls_*_file=...] health [--wait=10s]
//   vpnctl [--target=host:port] services
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/config/config_reader.h"
#include "common/rpc/probes.h"
#include "common/rpc/credentials.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Service address, host:port.");
ABSL_FLAG(std::string, tls_cert_file, "", "Client certificate (PEM) for mTLS.");
ABSL_FLAG(std::string, tls_key_file, "", "Client key (PEM) for mTLS.");
ABSL_FLAG(std::string, tls_ca_file, "", "CA (PEM) that signed the server.");
ABSL_FLAG(std::string, wait, "0s",
          "health: keep retrying until SERVING for up to this long.");

namespace {

constexpr char kUsage[] =
    "vpnctl [flags] COMMAND\n"
    "  health    grpc.health.v1 status of the service at --target\n"
    "  services  gRPC services the target serves (server reflection)";

int Fail(const std::string& message) {
  std::fprintf(stderr, "vpnctl: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) return Fail(std::string("usage: ") + kUsage);
  const std::string command = args[1];
  const std::string target = absl::GetFlag(FLAGS_target);
  if (absl::Status valid = vpn::config::ValidateHostPort(target); !valid.ok()) {
    return Fail("flag --target: " + std::string(valid.message()));
  }
  vpn::rpc::TlsFiles tls{absl::GetFlag(FLAGS_tls_cert_file),
                         absl::GetFlag(FLAGS_tls_key_file),
                         absl::GetFlag(FLAGS_tls_ca_file)};
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      vpn::rpc::MakeChannel(target, tls);
  if (!channel.ok()) return Fail(std::string(channel.status().message()));

  if (command == "health") {
    absl::StatusOr<absl::Duration> wait =
        vpn::config::ParseDuration(absl::GetFlag(FLAGS_wait));
    if (!wait.ok()) return Fail("flag --wait: " + std::string(wait.status().message()));
    const absl::Time give_up = absl::Now() + *wait;
    absl::StatusOr<std::string> health;
    while (true) {
      health = vpn::rpc::CheckHealth(*channel);
      if ((health.ok() && *health == "SERVING") || absl::Now() >= give_up) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    if (!health.ok()) return Fail(std::string(health.status().message()));
    std::printf("%s %s\n", target.c_str(), health->c_str());
    return *health == "SERVING" ? 0 : 1;
  }
  if (command == "services") {
    absl::StatusOr<std::vector<std::string>> services =
        vpn::rpc::ListServices(*channel);
    if (!services.ok()) return Fail(std::string(services.status().message()));
    std::printf("%s\n", absl::StrJoin(*services, "\n").c_str());
    return 0;
  }
  return Fail("unknown command '" + command + "'\n" + kUsage);
}
