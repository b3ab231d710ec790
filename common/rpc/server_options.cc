#include "common/rpc/server_options.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

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

void ReadServerOptions(config::ConfigReader& reader, ServerOptions* out) {
  reader.HostPort("server.grpc_listen", &out->grpc_listen);
  std::string metrics = out->metrics_listen;
  reader.String("server.metrics_listen", &metrics);
  if (!metrics.empty() && metrics != out->metrics_listen) {
    absl::Status valid = config::ValidateHostPort(metrics);
    if (!valid.ok()) reader.Fail("server.metrics_listen", valid.message());
  }
  out->metrics_listen = metrics;
  ReadTlsFiles(reader, "server.tls", &out->tls);
  ReadTlsFiles(reader, "server.client_tls", &out->client_tls);
}

}  // namespace vpn::rpc
