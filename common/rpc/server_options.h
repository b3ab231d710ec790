// Listen addresses and TLS files shared by every service's config.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/config/config_reader.h"

namespace vpn::rpc {

// PEM files for mutual TLS. All three set, or none (plaintext).
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;

  bool enabled() const { return !cert_file.empty(); }
};

struct ServerOptions {
  // host:port (port 0 picks a free port), or unix:/path for a socket only
  // its owner may open (mode 0600).
  std::string grpc_listen;
  std::string metrics_listen;  // host:port for /metrics; empty disables it
  // host:port of a plaintext listener serving grpc.health.v1 and nothing
  // else, for probes that carry no certificate (the kubelet's); empty: none.
  std::string health_listen;
  TlsFiles tls;                // server side
  TlsFiles client_tls;         // for calls to other services
  // Serve plaintext off loopback, trusting every caller with every role.
  // Without it such a listener refuses to start; warned every minute.
  bool insecure_plaintext = false;
};

// Whether only this host can reach `listen`: a Unix socket or a loopback
// address (127.0.0.0/8, ::1, localhost).
bool IsLocalListen(absl::string_view listen);

// A Unix socket listener: "unix:/path" (absolute). Sets `path`.
bool IsUnixListen(absl::string_view listen, std::string* path = nullptr);

// Checks a grpc_listen value: host:port or unix:/absolute/path.
absl::Status ValidateListen(absl::string_view listen);

// The rule that no service talks plaintext off its host: a non-local
// listener needs server.tls unless insecure_plaintext is set. The error
// names `field` (server.tls).
absl::Status CheckTransportSecurity(const ServerOptions& options, absl::string_view field);

// Reads `<prefix>.cert_file`, `.key_file` and `.ca_file`, and checks that the
// files are all given and readable.
void ReadTlsFiles(config::ConfigReader& reader, absl::string_view prefix,
                  TlsFiles* out);

// Reads the `server` section: grpc_listen, metrics_listen, health_listen,
// tls, client_tls, insecure_plaintext.
void ReadServerOptions(config::ConfigReader& reader, ServerOptions* out);

}  // namespace vpn::rpc
