// Channel and server credentials: mutual TLS from PEM files, or plaintext.
// gRPC's TLS runs on OpenSSL; BoringSSL stays inside common/crypto.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/rpc/server_options.h"
#include "grpcpp/grpcpp.h"

namespace vpn::rpc {

// Server credentials: mTLS that requires and verifies a client certificate
// when `tls` is enabled, plaintext otherwise.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& tls);

// A channel to another service at `target` (host:port), with a client
// certificate when `tls` is enabled. With `server_role` ("auth-service") the
// server's certificate must carry that role's DNS name, whatever address
// `target` names (tools/service-pki.sh puts the role in a DNS SAN), so one
// service cannot stand in for another.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& target, const TlsFiles& tls, const std::string& server_role = "");

// The credentials MakeChannel uses, for a caller that needs its own channel
// arguments (the etcd store's backoff and keepalive).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls);

}  // namespace vpn::rpc
