// A service's application logic, hosted by ServiceHost. The same component
// runs alone in its own binary or beside the others in `gateway`.
#pragma once

#include <vector>

#include "grpcpp/grpcpp.h"

namespace vpn::rpc {

class Component {
 public:
  virtual ~Component() = default;
  // The gRPC services to register; owned by the component.
  virtual std::vector<grpc::Service*> services() = 0;
  // Called before the server shuts down; stops background work.
  virtual void Stop() {}
};

}  // namespace vpn::rpc
