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
  std::string grpc_listen;     // host:port; port 0 picks a free port
  std::string metrics_listen;  // host:port for /metrics; empty disables it
  TlsFiles tls;                // server side
  TlsFiles client_tls;         // for calls to other services
};

// Reads `<prefix>.cert_file`, `.key_file` and `.ca_file`, and checks that the
// files are all given and readable.
void ReadTlsFiles(config::ConfigReader& reader, absl::string_view prefix,
                  TlsFiles* out);

// Reads the `server` section: grpc_listen, metrics_listen, tls, client_tls.
void ReadServerOptions(config::ConfigReader& reader, ServerOptions* out);

}  // namespace vpn::rpc
