// The roles of the split: one per service, plus the operator (vpnctl). A
// certificate names its role in a SAN URI, spiffe://vpn-gateway/<role>, and
// in a DNS SAN (tools/service-pki.sh).
#pragma once

namespace vpn::rpc {

inline constexpr char kRoleIkeService[] = "ike-service";
inline constexpr char kRoleAuthService[] = "auth-service";
inline constexpr char kRoleMobilityService[] = "mobility-service";
inline constexpr char kRoleEspForwarder[] = "esp-forwarder";
inline constexpr char kRoleOperator[] = "operator";
// Every role, for whoever must hold them all (insecure_plaintext) or
// recognise one.
inline constexpr const char* kRoles[] = {kRoleIkeService, kRoleAuthService,
                                         kRoleMobilityService, kRoleEspForwarder,
                                         kRoleOperator};
// The trust domain of every role URI.
inline constexpr char kRoleUriPrefix[] = "spiffe://vpn-gateway/";

}  // namespace vpn::rpc
