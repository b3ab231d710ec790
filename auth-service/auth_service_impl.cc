#include "auth-service/auth_service_impl.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "auth-service/signer/auth_octets.h"

namespace vpn::auth {
namespace {

void FillReply(const eap::Result& result, vpn::v1::EapReply* reply) {
  switch (result.outcome) {
    case eap::Result::Outcome::kContinue:
      reply->set_outcome(vpn::v1::EapReply::CONTINUE);
      break;
    case eap::Result::Outcome::kSuccess:
      reply->set_outcome(vpn::v1::EapReply::SUCCESS);
      reply->set_msk(result.msk.data(), result.msk.size());
      reply->set_eap_identity(result.identity);
      break;
    case eap::Result::Outcome::kFailure:
      reply->set_outcome(vpn::v1::EapReply::FAILURE);
      break;
  }
  reply->set_session(result.session);
  reply->set_eap_message(result.message.data(), result.message.size());
}

constexpr const char* kEapResults[] = {"success", "failure", "protocol_error",
                                       "error",   "expired", "unknown_session"};
constexpr const char* kScopes[] = {"user", "address"};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

AuthMetrics::AuthMetrics(prometheus::Registry& registry)
    : sessions_active_(prometheus::BuildGauge()
                           .Name("auth_eap_sessions_active")
                           .Help("EAP conversations in progress")
                           .Register(registry)
                           .Add({})),
      results_(prometheus::BuildCounter()
                   .Name("auth_eap_results_total")
                   .Help("Finished EAP conversations by result")
                   .Register(registry)),
      signatures_(prometheus::BuildCounter()
                      .Name("auth_signatures_total")
                      .Help("IKE AUTH payloads signed with the gateway key")
                      .Register(registry)
                      .Add({})),
      sign_refusals_(prometheus::BuildCounter()
                         .Name("auth_sign_refusals_total")
                         .Help("Sign requests refused: not RFC 7296 2.15 "
                               "ResponderSignedOctets, by reason")
                         .Register(registry)),
      validations_(prometheus::BuildCounter()
                       .Name("auth_certificate_validations_total")
                       .Help("Client certificate validations by result")
                       .Register(registry)),
      cert_valid_(validations_.Add({{"result", "valid"}})),
      cert_invalid_(validations_.Add({{"result", "invalid"}})),
      refusals_(prometheus::BuildCounter()
                    .Name("auth_bruteforce_refusals_total")
                    .Help("EAP attempts refused (answered as failures) because "
                          "the user or address is locked out")
                    .Register(registry)),
      lockouts_(prometheus::BuildCounter()
                    .Name("auth_bruteforce_lockouts_total")
                    .Help("Lockouts started after too many failed attempts")
                    .Register(registry)),
      locked_(prometheus::BuildGauge()
                  .Name("auth_bruteforce_locked")
                  .Help("User names or addresses locked out now")
                  .Register(registry)),
      users_file_reloads_(prometheus::BuildCounter()
                              .Name("auth_users_file_reloads_total")
                              .Help("users_file reloads that changed users "
                                    "(ok) or were refused (error)")
                              .Register(registry)),
      gateway_certificate_expiry_(
          prometheus::BuildGauge()
              .Name("auth_gateway_certificate_expiry_timestamp_seconds")
              .Help("Unix time of the earliest notAfter in the gateway "
                    "certificate chain auth-service loaded")
              .Register(registry)),
      users_file_ok_(users_file_reloads_.Add({{"result", "ok"}})),
      users_file_error_(users_file_reloads_.Add({{"result", "error"}})),
      users_file_users_(prometheus::BuildGauge()
                            .Name("auth_users_file_users")
                            .Help("Users loaded from users_file")
                            .Register(registry)
                            .Add({})) {
  for (const char* result : kEapResults) results_.Add({{"result", result}});
  for (const char* scope : kScopes) {
    refusals_.Add({{"scope", scope}});
    lockouts_.Add({{"scope", scope}});
    locked_.Add({{"scope", scope}});
  }
}

void AuthMetrics::BruteForceRefusal(absl::string_view scope) {
  refusals_.Add({{"scope", std::string(scope)}}).Increment();
}

void AuthMetrics::BruteForceLockout(absl::string_view scope) {
  lockouts_.Add({{"scope", std::string(scope)}}).Increment();
}

void AuthMetrics::BruteForceLocked(absl::string_view scope, size_t locked) {
  locked_.Add({{"scope", std::string(scope)}}).Set(static_cast<double>(locked));
}

void AuthMetrics::EapResult(absl::string_view result) {
  results_.Add({{"result", std::string(result)}}).Increment();
}

AuthServiceImpl::AuthServiceImpl(eap::SessionManager& sessions,
                                 UserStore& users, const GatewaySigner* signer,
                                 const CertValidator* validator,
                                 AuthMetrics& metrics)
    : sessions_(sessions),
      users_(users),
      signer_(signer),
      validator_(validator),
      metrics_(metrics) {}

grpc::Status AuthServiceImpl::EapStart(grpc::ServerContext*,
                                       const vpn::v1::EapStartRequest* request,
                                       vpn::v1::EapReply* reply) {
  const size_t address_size = request->peer_address().size();
  if (address_size != 0 && address_size != 4 && address_size != 16) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "peer_address must be 4 or 16 bytes");
  }
  absl::StatusOr<eap::Result> result = sessions_.Start(
      crypto::AsBytes(request->peer_identity()), crypto::AsBytes(request->peer_address()));
  if (!result.ok()) return ToGrpcStatus(result.status());
  FillReply(*result, reply);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::EapRound(grpc::ServerContext*,
                                       const vpn::v1::EapRoundRequest* request,
                                       vpn::v1::EapReply* reply) {
  const eap::Result result =
      sessions_.Round(request->session(), crypto::AsBytes(request->eap_message()));
  FillReply(result, reply);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::ValidateCertificate(
    grpc::ServerContext*, const vpn::v1::ValidateCertificateRequest* request,
    vpn::v1::ValidateCertificateReply* reply) {
  if (validator_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no ca_file configured");
  }
  CertificateAuth auth;
  for (const std::string& der : request->chain_der()) {
    auth.chain_der.push_back(crypto::AsBytes(der));
  }
  auth.identity = crypto::AsBytes(request->identity());
  auth.identity_type = request->identity_type();
  auth.auth_method = request->auth_method();
  auth.signed_octets = crypto::AsBytes(request->signed_octets());
  auth.auth_data = crypto::AsBytes(request->auth_data());
  const ValidationResult result = validator_->Validate(auth);
  metrics_.CertificateValidation(result.valid);
  if (!result.valid) {
    log_.Info("client certificate rejected",
              {{"subject", result.subject}, {"reason", result.reason}});
  }
  reply->set_valid(result.valid);
  reply->set_reason(result.reason);
  reply->set_subject(result.subject);
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::Sign(grpc::ServerContext*,
                                   const vpn::v1::SignRequest* request,
                                   vpn::v1::SignReply* reply) {
  if (signer_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no gateway key configured");
  }
  const AuthOctetsCheck check = CheckResponderSignedOctets(
      request->ike_sa_init_response(), request->initiator_nonce(), request->maced_id());
  if (!check.ok) {
    metrics_.SignRefused(AuthOctetsErrorName(check.error));
    log_.Warning("refused to sign", {{"reason", AuthOctetsErrorName(check.error)},
                                     {"detail", check.detail}});
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "not RFC 7296 2.15 ResponderSignedOctets: " + check.detail);
  }
  std::string octets = request->ike_sa_init_response();
  octets += request->initiator_nonce();
  octets += request->maced_id();
  const std::vector<uint32_t> hashes(request->peer_hash_algorithms().begin(),
                                     request->peer_hash_algorithms().end());
  absl::StatusOr<GatewaySigner::Signature> signature = signer_->Sign(crypto::AsBytes(octets), hashes);
  if (!signature.ok()) return ToGrpcStatus(signature.status());
  metrics_.Signature();
  reply->set_auth_method(signature->auth_method);
  reply->set_auth_data(signature->auth_data.data(),
                       signature->auth_data.size());
  for (const crypto::Bytes& der : signer_->chain_der()) {
    reply->add_certificate_chain_der(der.data(), der.size());
  }
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::GatewayCertificate(
    grpc::ServerContext*, const vpn::v1::GatewayCertificateRequest*,
    vpn::v1::GatewayCertificateReply* reply) {
  if (signer_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "no gateway certificate configured");
  }
  for (const crypto::Bytes& der : signer_->chain_der()) {
    reply->add_certificate_chain_der(der.data(), der.size());
  }
  if (validator_ != nullptr) {
    for (const crypto::Bytes& hash : validator_->authority_hashes()) {
      reply->add_certificate_authorities(hash.data(), hash.size());
    }
  }
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::PutUser(grpc::ServerContext*,
                                      const vpn::v1::PutUserRequest* request,
                                      vpn::v1::Empty*) {
  const absl::Status put = users_.Put(request->name(), request->password());
  // Wipe our copy of the password (gRPC's receive buffers are out of reach).
  std::string& password = const_cast<std::string&>(request->password());
  crypto::SecureZero(password.data(), password.size());
  if (!put.ok()) return ToGrpcStatus(put);
  log_.Info("user stored", {{"user", eap::Printable(request->name())}});
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::DeleteUser(
    grpc::ServerContext*, const vpn::v1::DeleteUserRequest* request,
    vpn::v1::Empty*) {
  const absl::Status deleted = users_.Delete(request->name());
  if (!deleted.ok()) return ToGrpcStatus(deleted);
  log_.Info("user deleted", {{"user", eap::Printable(request->name())}});
  return grpc::Status::OK;
}

grpc::Status AuthServiceImpl::ListUsers(grpc::ServerContext*,
                                        const vpn::v1::ListUsersRequest*,
                                        vpn::v1::ListUsersReply* reply) {
  absl::StatusOr<std::vector<UserInfo>> users = users_.List();
  if (!users.ok()) return ToGrpcStatus(users.status());
  for (const UserInfo& user : *users) {
    vpn::v1::User* out = reply->add_users();
    out->set_name(user.name);
    out->set_disabled(user.disabled);
  }
  return grpc::Status::OK;
}

}  // namespace vpn::auth
