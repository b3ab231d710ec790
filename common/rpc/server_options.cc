#include "common/rpc/server_options.h"

#include <arpa/inet.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vpn::rpc {

void ReadTlsFiles(config::ConfigReader& reader, absl::string_view prefix,
                  TlsFiles* out) {
  const std::string cert = absl::StrCat(prefix, ".cert_file");
  const std::string key = absl::StrCat(prefix, ".key_file");
  const std::string ca = absl::StrCat(prefix, ".ca_file");
  reader.String(cert, &out->cert_file);
  reader.String(key, &out->key_file);
  reader.String(ca, &out->ca_file);
  const bool any = !out->cert_file.empty() || !out->key_file.empty() ||
                   !out->ca_file.empty();
  if (!any) return;
  for (const auto& [field, path] :
       {std::pair<const std::string&, const std::string&>{cert, out->cert_file},
        {key, out->key_file},
        {ca, out->ca_file}}) {
    if (path.empty()) {
      return reader.Fail(field, "required when any TLS file is set");
    }
    if (::access(path.c_str(), R_OK) != 0) {
      return reader.Fail(field, absl::StrCat("cannot read '", path, "'"));
    }
  }
}

bool IsUnixListen(absl::string_view listen, std::string* path) {
  if (!absl::ConsumePrefix(&listen, "unix:")) return false;
  if (path != nullptr) *path = std::string(listen);
  return true;
}

absl::Status ValidateListen(absl::string_view listen) {
  std::string path;
  if (!IsUnixListen(listen, &path)) return config::ValidateHostPort(listen);
  if (path.empty() || path.front() != '/' || path.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("'", listen, "': a Unix socket is unix:/absolute/path"));
  }
  if (path.size() > 107) {  // sun_path, with its terminating NUL
    return absl::InvalidArgumentError(
        absl::StrCat("'", listen, "': a Unix socket path has at most 107 characters"));
  }
  return absl::OkStatus();
}

bool IsLocalListen(absl::string_view listen) {
  if (IsUnixListen(listen)) return true;
  const size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos) return false;
  absl::string_view host = listen.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]")) return false;
  }
  if (host == "localhost") return true;
  const std::string text(host);
  in_addr v4;
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  return ::inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

absl::Status CheckTransportSecurity(const ServerOptions& options, absl::string_view field) {
  if (options.tls.enabled() || options.insecure_plaintext ||
      IsLocalListen(options.grpc_listen)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "field '", field, "': required: grpc_listen '", options.grpc_listen,
      "' is reachable from other hosts, and the services talk only mutual TLS "
      "there (set insecure_plaintext: true to override)"));
}

void ReadServerOptions(config::ConfigReader& reader, ServerOptions* out) {
  std::string listen = out->grpc_listen;
  reader.String("server.grpc_listen", &listen);
  if (listen != out->grpc_listen) {
    absl::Status valid = ValidateListen(listen);
    if (!valid.ok()) {
      reader.Fail("server.grpc_listen", valid.message());
    } else {
      out->grpc_listen = listen;
    }
  }
  std::string metrics = out->metrics_listen;
  reader.String("server.metrics_listen", &metrics);
  if (!metrics.empty() && metrics != out->metrics_listen) {
    absl::Status valid = config::ValidateHostPort(metrics);
    if (!valid.ok()) reader.Fail("server.metrics_listen", valid.message());
  }
  out->metrics_listen = metrics;
  ReadTlsFiles(reader, "server.tls", &out->tls);
  ReadTlsFiles(reader, "server.client_tls", &out->client_tls);
  reader.Bool("server.insecure_plaintext", &out->insecure_plaintext);
  reader.HostPort("server.health_listen", &out->health_listen);
}

}  // namespace vpn::rpc
