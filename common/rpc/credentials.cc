#include "common/rpc/credentials.h"

#include "absl/strings/str_cat.h"
#include "common/fs/read_file.h"

namespace vpn::rpc {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = fs::ReadFile(tls.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = fs::ReadFile(tls.key_file);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> ca = fs::ReadFile(tls.ca_file);
  if (!ca.ok()) return ca.status();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *ca;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  absl::StatusOr<std::string> cert = fs::ReadFile(tls.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = fs::ReadFile(tls.key_file);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> ca = fs::ReadFile(tls.ca_file);
  if (!ca.ok()) return ca.status();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *ca;
  options.pem_private_key = *key;
  options.pem_cert_chain = *cert;
  return grpc::SslCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& target, const TlsFiles& tls, const std::string& server_role) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      MakeChannelCredentials(tls);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments arguments;
  if (tls.enabled() && !server_role.empty()) arguments.SetSslTargetNameOverride(server_role);
  return grpc::CreateCustomChannel(target, *creds, arguments);
}

}  // namespace vpn::rpc
