// Fuzz target for the YAML config: any bytes as `gateway`'s combined file,
// read by every component's reader. A reader may refuse anything, but must
// not crash, and a refusal must name a field or the YAML error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "common/config/config_reader.h"
#include "gateway/gateway.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vpn::config::ConfigReader> reader = vpn::config::ConfigReader::FromString(yaml);
  if (!reader.ok()) {
    if (reader.status().message().empty()) std::abort();
    return 0;
  }
  vpn::gateway::GatewayConfig config = vpn::gateway::DefaultGatewayConfig();
  vpn::gateway::ReadGatewayConfig(*reader, &config);
  const absl::Status status = reader->Finish();
  if (!status.ok() && status.message().empty()) std::abort();
  return 0;
}
