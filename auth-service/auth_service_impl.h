// The vpn.v1.Auth gRPC service (proto/vpn/v1/auth.proto): EAP rounds,
// certificate validation, AUTH signing with the gateway key, and the user
// management calls. Holds no state of its own; see AuthComponent.
#pragma once

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "auth-service/certs/cert_validator.h"
#include "auth-service/eap/eap_session.h"
#include "auth-service/signer/gateway_signer.h"
#include "auth-service/users/user_store.h"
#include "common/log/log.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "proto/vpn/v1/auth.grpc.pb.h"

namespace vpn::auth {

// auth-service's metrics, registered in the process registry.
class AuthMetrics {
 public:
  explicit AuthMetrics(prometheus::Registry& registry);

  void EapResult(absl::string_view result);
  void EapSessionsActive(size_t active) {
    sessions_active_.Set(static_cast<double>(active));
  }
  void Signature() { signatures_.Increment(); }
  // A Sign request that is not ResponderSignedOctets (auth_octets.h).
  void SignRefused(absl::string_view reason) {
    sign_refusals_.Add({{"reason", std::string(reason)}}).Increment();
  }
  void CertificateValidation(bool valid) {
    (valid ? cert_valid_ : cert_invalid_).Increment();
  }
  // Brute-force protection; `scope` is "user" or "address".
  void BruteForceRefusal(absl::string_view scope);
  void BruteForceLockout(absl::string_view scope);
  void BruteForceLocked(absl::string_view scope, size_t locked);
  // users_file.
  void UsersFileReload(bool ok) {
    (ok ? users_file_ok_ : users_file_error_).Increment();
  }
  void UsersFileUsers(size_t users) {
    users_file_users_.Set(static_cast<double>(users));
  }
  // The gateway certificate chain's earliest notAfter; unset (no series)
  // when no gateway certificate is configured.
  void GatewayCertificateNotAfter(absl::Time not_after) {
    gateway_certificate_expiry_.Add({}).Set(
        static_cast<double>(absl::ToUnixSeconds(not_after)));
  }

 private:
  prometheus::Gauge& sessions_active_;
  prometheus::Family<prometheus::Counter>& results_;
  prometheus::Counter& signatures_;
  prometheus::Family<prometheus::Counter>& sign_refusals_;
  prometheus::Family<prometheus::Counter>& validations_;
  prometheus::Counter& cert_valid_;
  prometheus::Counter& cert_invalid_;
  prometheus::Family<prometheus::Counter>& refusals_;
  prometheus::Family<prometheus::Counter>& lockouts_;
  prometheus::Family<prometheus::Gauge>& locked_;
  prometheus::Family<prometheus::Counter>& users_file_reloads_;
  prometheus::Family<prometheus::Gauge>& gateway_certificate_expiry_;
  prometheus::Counter& users_file_ok_;
  prometheus::Counter& users_file_error_;
  prometheus::Gauge& users_file_users_;
};

class AuthServiceImpl final : public vpn::v1::Auth::Service {
 public:
  // `signer` and `validator` may be null (not configured); all must outlive
  // the service.
  AuthServiceImpl(eap::SessionManager& sessions, UserStore& users,
                  const GatewaySigner* signer, const CertValidator* validator,
                  AuthMetrics& metrics);

  // peer_address must be empty, 4 or 16 bytes (INVALID_ARGUMENT else).
  grpc::Status EapStart(grpc::ServerContext* context,
                        const vpn::v1::EapStartRequest* request,
                        vpn::v1::EapReply* reply) override;
  grpc::Status EapRound(grpc::ServerContext* context,
                        const vpn::v1::EapRoundRequest* request,
                        vpn::v1::EapReply* reply) override;
  grpc::Status ValidateCertificate(
      grpc::ServerContext* context,
      const vpn::v1::ValidateCertificateRequest* request,
      vpn::v1::ValidateCertificateReply* reply) override;
  grpc::Status Sign(grpc::ServerContext* context,
                    const vpn::v1::SignRequest* request,
                    vpn::v1::SignReply* reply) override;
  grpc::Status GatewayCertificate(
      grpc::ServerContext* context,
      const vpn::v1::GatewayCertificateRequest* request,
      vpn::v1::GatewayCertificateReply* reply) override;
  grpc::Status PutUser(grpc::ServerContext* context,
                       const vpn::v1::PutUserRequest* request,
                       vpn::v1::Empty* reply) override;
  grpc::Status DeleteUser(grpc::ServerContext* context,
                          const vpn::v1::DeleteUserRequest* request,
                          vpn::v1::Empty* reply) override;
  grpc::Status ListUsers(grpc::ServerContext* context,
                         const vpn::v1::ListUsersRequest* request,
                         vpn::v1::ListUsersReply* reply) override;

 private:
  eap::SessionManager& sessions_;
  UserStore& users_;
  const GatewaySigner* const signer_;
  const CertValidator* const validator_;
  AuthMetrics& metrics_;
  const log::Logger log_{"auth-service"};
};

// absl::Status to grpc::Status, code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace vpn::auth
