#include "absl/strings/str_cat.h"
#include "common/rpc/in_process.h"
#include "ike-service/auth_client/authenticator.h"

namespace vpn::ike {
namespace {

// Calls the auth-service implementation in the same process (gateway mode)
// without gRPC's serialization, sockets and thread hand-offs.
class InProcessAuthenticator : public Authenticator {
 public:
  explicit InProcessAuthenticator(v1::Auth::Service* service) : service_(service) {}

  absl::StatusOr<v1::EapReply> EapStart(const v1::EapStartRequest& request) override {
    return Call(&v1::Auth::Service::EapStart, request, "EapStart");
  }
  absl::StatusOr<v1::EapReply> EapRound(const v1::EapRoundRequest& request) override {
    return Call(&v1::Auth::Service::EapRound, request, "EapRound");
  }
  absl::StatusOr<v1::SignReply> Sign(const v1::SignRequest& request) override {
    return Call(&v1::Auth::Service::Sign, request, "Sign");
  }
  absl::StatusOr<v1::ValidateCertificateReply> ValidateCertificate(
      const v1::ValidateCertificateRequest& request) override {
    return Call(&v1::Auth::Service::ValidateCertificate, request, "ValidateCertificate");
  }
  absl::StatusOr<v1::GatewayCertificateReply> GatewayCertificate() override {
    return Call(&v1::Auth::Service::GatewayCertificate, v1::GatewayCertificateRequest(),
                "GatewayCertificate");
  }

 private:
  template <typename Request, typename Reply>
  absl::StatusOr<Reply> Call(grpc::Status (v1::Auth::Service::*method)(
                                 grpc::ServerContext*, const Request*, Reply*),
                             const Request& request, const char* name) {
    return rpc::CallInProcess(service_, method, request, absl::StrCat("auth-service ", name));
  }

  v1::Auth::Service* const service_;
};

}  // namespace

std::unique_ptr<Authenticator> NewInProcessAuthenticator(v1::Auth::Service* service) {
  return std::make_unique<InProcessAuthenticator>(service);
}

}  // namespace vpn::ike
