#include "common/rpc/authorization.h"

#include <algorithm>
#include <iterator>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpc/grpc_security_constants.h"

namespace vpn::rpc {
namespace {

constexpr char kCallerUnauthenticated[] = "unauthenticated";
constexpr char kCallerNoRole[] = "no-role";
constexpr char kCallerPlaintext[] = "plaintext";

const std::vector<const char*> kIke = {kRoleIkeService};
const std::vector<const char*> kOperator = {kRoleOperator};

}  // namespace

const std::vector<MethodGrant>& AuthorizationTable() {
  static const auto* const table = new std::vector<MethodGrant>{
      // auth-service: only ike-service runs EAP and asks for signatures; users
      // are the operator's.
      {"/vpn.v1.Auth/EapStart", kIke},
      {"/vpn.v1.Auth/EapRound", kIke},
      {"/vpn.v1.Auth/ValidateCertificate", kIke},
      {"/vpn.v1.Auth/Sign", kIke},
      {"/vpn.v1.Auth/GatewayCertificate", kIke},
      {"/vpn.v1.Auth/PutUser", kOperator},
      {"/vpn.v1.Auth/DeleteUser", kOperator},
      {"/vpn.v1.Auth/ListUsers", kOperator},
      // mobility-service: moves come from ike-service (MOBIKE) and the
      // forwarders (NAT rebinding, liveness).
      {"/vpn.v1.Mobility/UpdateEndpoint", {kRoleIkeService, kRoleEspForwarder}},
      {"/vpn.v1.Mobility/ReportLiveness", {kRoleIkeService, kRoleEspForwarder}},
      {"/vpn.v1.Mobility/GetPath", {kRoleIkeService, kRoleEspForwarder}},
      // esp-forwarder: the relay carries IKE and new CHILD SAs.
      {"/vpn.v1.IkeTransport/Relay", kIke},
      {"/vpn.v1.Forwarder/InstallSa", kIke},
      {"/vpn.v1.Forwarder/UpdateSa", kIke},
      {"/vpn.v1.Forwarder/RemoveSa", kIke},
      {"/vpn.v1.Forwarder/Counters", {kRoleOperator, kRoleIkeService}},
      // ike-service's management API.
      {"/vpn.v1.Management/ListSas", kOperator},
      {"/vpn.v1.Management/GetSa", kOperator},
      {"/vpn.v1.Management/TerminateSa", kOperator},
      {"/vpn.v1.Management/GetCounters", kOperator},
      {"/vpn.v1.Management/WatchEvents", kOperator},
      // Probes need no certificate (the kubelet has none); reflection shows
      // only the API shapes, which are public.
      {"/grpc.health.v1.Health/Check", {}},
      {"/grpc.health.v1.Health/Watch", {}},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", {}},
  };
  return *table;
}

namespace {

// The table's row for `method`, or null.
const MethodGrant* FindGrant(absl::string_view method) {
  static const auto* const by_method = [] {
    auto* map = new absl::flat_hash_map<std::string, const MethodGrant*>();
    for (const MethodGrant& grant : AuthorizationTable()) (*map)[grant.method] = &grant;
    return map;
  }();
  auto it = by_method->find(method);
  return it == by_method->end() ? nullptr : it->second;
}

bool Grants(const MethodGrant& grant, const std::vector<std::string>& roles) {
  if (grant.roles.empty()) return true;
  return std::any_of(roles.begin(), roles.end(), [&](const std::string& role) {
    return std::any_of(grant.roles.begin(), grant.roles.end(),
                       [&](const char* allowed) { return role == allowed; });
  });
}

}  // namespace

bool IsAllowed(absl::string_view method, const std::vector<std::string>& roles) {
  const MethodGrant* grant = FindGrant(method);
  return grant != nullptr && Grants(*grant, roles);
}

std::string PeerRole(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) return "";
  // gRPC sets peer_spiffe_id only for a certificate with exactly one URI SAN
  // that is a SPIFFE ID; a second URI makes the identity ambiguous.
  std::vector<grpc::string_ref> ids = context.FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
  if (ids.size() != 1) return "";
  absl::string_view id(ids[0].data(), ids[0].size());
  if (!absl::ConsumePrefix(&id, kRoleUriPrefix)) return "";
  for (const char* role : kRoles) {
    if (id == role) return role;
  }
  return "";
}

CallerAuthorizer::CallerAuthorizer(std::string component, PlaintextTrust plaintext,
                                   prometheus::Family<prometheus::Counter>& denied)
    : plaintext_(plaintext), denied_(denied), log_(std::move(component)) {}

grpc::Status CallerAuthorizer::Process(const InputMetadata& auth_metadata,
                                       grpc::AuthContext* context, OutputMetadata*,
                                       OutputMetadata*) {
  std::string method;
  if (auto it = auth_metadata.find(":path"); it != auth_metadata.end()) {
    method.assign(it->second.data(), it->second.size());
  }
  std::vector<std::string> roles;
  std::string caller;
  // Local credentials (plaintext listeners) also call their peer
  // "authenticated"; only a TLS peer has a certificate.
  bool tls = false;
  if (context != nullptr) {
    for (const grpc::string_ref& type :
         context->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)) {
      tls |= absl::string_view(type.data(), type.size()) == GRPC_SSL_TRANSPORT_SECURITY_TYPE;
    }
  }
  if (tls && context->IsPeerAuthenticated()) {
    std::string role = PeerRole(*context);
    caller = role.empty() ? kCallerNoRole : role;
    if (!role.empty()) roles.push_back(std::move(role));
  } else {
    switch (plaintext_) {
      case PlaintextTrust::kNone:
        caller = kCallerUnauthenticated;
        break;
      case PlaintextTrust::kOperator:
        caller = kCallerPlaintext;
        roles.push_back(kRoleOperator);
        break;
      case PlaintextTrust::kEveryRole:
        caller = kCallerPlaintext;
        roles.assign(std::begin(kRoles), std::end(kRoles));
        break;
    }
  }
  const MethodGrant* grant = FindGrant(method);
  if (grant != nullptr && Grants(*grant, roles)) return grpc::Status::OK;

  // Unknown paths are folded into one label: the caller chooses them.
  const std::string method_label = grant != nullptr ? method : "unknown";
  denied_.Add({{"method", method_label}, {"caller", caller}}).Increment();
  std::string subject;
  if (context != nullptr) {
    for (const grpc::string_ref& value :
         context->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME)) {
      subject.assign(value.data(), value.size());
    }
  }
  log_.Warning("call denied", {{"method", method_label},
                               {"caller", caller},
                               {"subject", subject.empty() ? "-" : subject}});
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      absl::StrCat(method_label, " is not allowed for caller '", caller, "'"));
}

}  // namespace vpn::rpc
