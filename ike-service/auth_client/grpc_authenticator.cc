#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/credentials.h"
#include "common/rpc/roles.h"
#include "ike-service/auth_client/authenticator.h"

namespace vpn::ike {
namespace {

constexpr absl::Duration kDeadline = absl::Seconds(5);

class GrpcAuthenticator : public Authenticator {
 public:
  explicit GrpcAuthenticator(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::Auth::NewStub(std::move(channel))) {}

  absl::StatusOr<v1::EapReply> EapStart(const v1::EapStartRequest& request) override {
    return Call(&v1::Auth::Stub::EapStart, request, "EapStart");
  }
  absl::StatusOr<v1::EapReply> EapRound(const v1::EapRoundRequest& request) override {
    return Call(&v1::Auth::Stub::EapRound, request, "EapRound");
  }
  absl::StatusOr<v1::SignReply> Sign(const v1::SignRequest& request) override {
    return Call(&v1::Auth::Stub::Sign, request, "Sign");
  }
  absl::StatusOr<v1::ValidateCertificateReply> ValidateCertificate(
      const v1::ValidateCertificateRequest& request) override {
    return Call(&v1::Auth::Stub::ValidateCertificate, request, "ValidateCertificate");
  }
  absl::StatusOr<v1::GatewayCertificateReply> GatewayCertificate() override {
    return Call(&v1::Auth::Stub::GatewayCertificate, v1::GatewayCertificateRequest(),
                "GatewayCertificate");
  }

 private:
  template <typename Request, typename Reply>
  absl::StatusOr<Reply> Call(grpc::Status (v1::Auth::Stub::*method)(
                                 grpc::ClientContext*, const Request&, Reply*),
                             const Request& request, const char* name) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kDeadline));
    Reply reply;
    grpc::Status status = (stub_.get()->*method)(&context, request, &reply);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrCat("auth-service ", name, ": ",
                                       status.error_message()));
    }
    return reply;
  }

  std::unique_ptr<v1::Auth::Stub> stub_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> NewGrpcAuthenticator(
    const std::string& target, const rpc::TlsFiles& tls) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = rpc::MakeChannel(target, tls, rpc::kRoleAuthService);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<Authenticator>(new GrpcAuthenticator(std::move(*channel)));
}

}  // namespace vpn::ike
