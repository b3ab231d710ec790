// esp-forwarder: the data plane and the only component on the public
// network. It relays IKE datagrams to ike-service replicas.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"

namespace vpn::forwarder {

struct ForwarderConfig {
  rpc::ServerOptions server;
  std::string ike_listen = "0.0.0.0:500";    // IKE
  std::string natt_listen = "0.0.0.0:4500";  // IKE and ESP in UDP (RFC 3948)
};

void ReadForwarderConfig(config::ConfigReader& reader, ForwarderConfig* out);

class ForwarderComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<ForwarderComponent>> Create(
      const ForwarderConfig& config);

  std::vector<grpc::Service*> services() override { return {}; }

 private:
  explicit ForwarderComponent(ForwarderConfig config) : config_(std::move(config)) {}

  ForwarderConfig config_;
};

}  // namespace vpn::forwarder
