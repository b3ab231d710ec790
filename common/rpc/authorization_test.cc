#include "common/rpc/authorization.h"

#include <set>

#include <gtest/gtest.h>

#include "google/protobuf/descriptor.h"
#include "proto/vpn/v1/auth.grpc.pb.h"
#include "proto/vpn/v1/forwarder.grpc.pb.h"
#include "proto/vpn/v1/ike_transport.grpc.pb.h"
#include "proto/vpn/v1/management.grpc.pb.h"
#include "proto/vpn/v1/mobility.grpc.pb.h"

namespace vpn::rpc {
namespace {

// Every method the services serve has a grant, and every grant names a real
// method: a new RPC cannot ship without a decision on who may call it.
TEST(AuthorizationTableTest, CoversEveryMethodOfEveryService) {
  std::set<std::string> served;
  for (const char* service : {v1::Auth::service_full_name(), v1::Mobility::service_full_name(),
                              v1::IkeTransport::service_full_name(),
                              v1::Forwarder::service_full_name(),
                              v1::Management::service_full_name()}) {
    const google::protobuf::ServiceDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    ASSERT_NE(descriptor, nullptr) << service;
    for (int i = 0; i < descriptor->method_count(); ++i) {
      served.insert("/" + descriptor->full_name() + "/" + descriptor->method(i)->name());
    }
  }
  std::set<std::string> granted;
  for (const MethodGrant& grant : AuthorizationTable()) {
    EXPECT_TRUE(granted.insert(grant.method).second) << "twice: " << grant.method;
  }
  for (const std::string& method : served) {
    EXPECT_EQ(granted.count(method), 1u) << "no grant for " << method;
  }
  for (const std::string& method : granted) {
    if (method.rfind("/grpc.", 0) == 0) continue;
    EXPECT_EQ(served.count(method), 1u) << "grant for a method no service has: " << method;
  }
}

TEST(AuthorizationTableTest, LeastPrivilege) {
  const std::vector<std::string> ike = {kRoleIkeService};
  const std::vector<std::string> forwarder = {kRoleEspForwarder};
  const std::vector<std::string> op = {kRoleOperator};
  const std::vector<std::string> mobility = {kRoleMobilityService};
  const std::vector<std::string> none;

  EXPECT_TRUE(IsAllowed("/vpn.v1.Auth/Sign", ike));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Auth/Sign", forwarder));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Auth/Sign", op));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Auth/EapStart", forwarder));
  EXPECT_TRUE(IsAllowed("/vpn.v1.Auth/PutUser", op));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Auth/PutUser", ike));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Auth/PutUser", forwarder));

  EXPECT_TRUE(IsAllowed("/vpn.v1.Mobility/UpdateEndpoint", ike));
  EXPECT_TRUE(IsAllowed("/vpn.v1.Mobility/UpdateEndpoint", forwarder));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Mobility/UpdateEndpoint", op));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Mobility/UpdateEndpoint", mobility));

  EXPECT_TRUE(IsAllowed("/vpn.v1.IkeTransport/Relay", ike));
  EXPECT_FALSE(IsAllowed("/vpn.v1.IkeTransport/Relay", forwarder));
  EXPECT_FALSE(IsAllowed("/vpn.v1.IkeTransport/Relay", op));

  EXPECT_TRUE(IsAllowed("/vpn.v1.Management/TerminateSa", op));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Management/TerminateSa", ike));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Management/ListSas", forwarder));

  EXPECT_TRUE(IsAllowed("/grpc.health.v1.Health/Check", none));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Auth/ListUsers", none));
  EXPECT_FALSE(IsAllowed("/vpn.v1.Auth/NoSuchMethod", op));
  EXPECT_FALSE(IsAllowed("", op));
}

}  // namespace
}  // namespace vpn::rpc
