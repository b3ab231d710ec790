// rpc_probe: makes one call to one of the services as a given caller and
// prints the gRPC status code, for the trust scenarios of the interop suite
// (test/interop/dataplane_interop_test.py, scenario "trust"): a call from
// the wrong role, from no certificate, or from another CA's certificate
// must be refused.
//
//   rpc_probe --target=127.0.0.1:50052 --server_name=auth-service
//             [--cert=F --key=F --ca=F] CALL [NAME]
//
// CALL: sign, eap-start, put-user, list-users, update-endpoint,
// report-liveness, install-sa, list-sas, relay-hello NAME (holds the stream
// --hold long when accepted). Prints "<CODE> <message>"; exit 0 unless the
// arguments are wrong.
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/rpc/credentials.h"
#include "proto/vpn/v1/auth.grpc.pb.h"
#include "proto/vpn/v1/forwarder.grpc.pb.h"
#include "proto/vpn/v1/ike_transport.grpc.pb.h"
#include "proto/vpn/v1/management.grpc.pb.h"
#include "proto/vpn/v1/mobility.grpc.pb.h"

ABSL_FLAG(std::string, target, "", "host:port");
ABSL_FLAG(std::string, server_name, "", "the role the server's certificate must name");
ABSL_FLAG(std::string, cert, "", "client certificate (PEM); none: plaintext");
ABSL_FLAG(std::string, key, "", "its key");
ABSL_FLAG(std::string, ca, "", "the CA the server's certificate chains to");
ABSL_FLAG(int, hold_ms, 1000, "relay-hello: how long an accepted stream stays open");

namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "OTHER";
  }
}

void Deadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

// One unary call on `Stub` with a default request.
template <typename Service, typename Request, typename Reply, typename Method>
grpc::Status Unary(const std::shared_ptr<grpc::Channel>& channel, Method method,
                   const Request& request) {
  auto stub = Service::NewStub(channel);
  grpc::ClientContext context;
  Deadline(&context);
  Reply reply;
  return ((*stub).*method)(&context, request, &reply);
}

grpc::Status RelayHello(const std::shared_ptr<grpc::Channel>& channel, const std::string& name) {
  auto stub = vpn::v1::IkeTransport::NewStub(channel);
  grpc::ClientContext context;
  const int hold = absl::GetFlag(FLAGS_hold_ms);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(hold));
  auto stream = stub->Relay(&context);
  vpn::v1::IkeTransportUp hello;
  hello.mutable_hello()->set_replica(name);
  stream->Write(hello);
  vpn::v1::IkeDatagram ignored;
  while (stream->Read(&ignored)) {
  }
  grpc::Status status = stream->Finish();
  // Still open at the deadline: the forwarder accepted the stream.
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return grpc::Status::OK;
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2 || absl::GetFlag(FLAGS_target).empty()) {
    std::fprintf(stderr, "usage: rpc_probe --target=HOST:PORT [--cert --key --ca] CALL [NAME]\n");
    return 2;
  }
  const std::string call = args[1];
  const std::string name = args.size() > 2 ? args[2] : "probe";
  vpn::rpc::TlsFiles tls{absl::GetFlag(FLAGS_cert), absl::GetFlag(FLAGS_key),
                         absl::GetFlag(FLAGS_ca)};
  auto channel = vpn::rpc::MakeChannel(absl::GetFlag(FLAGS_target), tls,
                                       absl::GetFlag(FLAGS_server_name));
  if (!channel.ok()) {
    std::fprintf(stderr, "rpc_probe: %s\n", std::string(channel.status().message()).c_str());
    return 2;
  }
  using namespace vpn::v1;  // NOLINT
  grpc::Status status;
  if (call == "sign") {
    SignRequest request;
    request.set_ike_sa_init_response("chosen octets");
    status = Unary<Auth, SignRequest, SignReply>(*channel, &Auth::Stub::Sign, request);
  } else if (call == "eap-start") {
    EapStartRequest request;
    request.set_peer_address(std::string("\x0a\x00\x00\x01", 4));  // a lie
    status = Unary<Auth, EapStartRequest, EapReply>(*channel, &Auth::Stub::EapStart, request);
  } else if (call == "put-user") {
    PutUserRequest request;
    request.set_name(name);
    request.set_password("mallory-pw");
    status = Unary<Auth, PutUserRequest, Empty>(*channel, &Auth::Stub::PutUser, request);
  } else if (call == "list-users") {
    status = Unary<Auth, ListUsersRequest, ListUsersReply>(*channel, &Auth::Stub::ListUsers, {});
  } else if (call == "update-endpoint") {
    EndpointUpdate request;
    request.set_initiator_spi(1);
    request.set_responder_spi(2);
    status = Unary<Mobility, EndpointUpdate, EndpointUpdateReply>(
        *channel, &Mobility::Stub::UpdateEndpoint, request);
  } else if (call == "report-liveness") {
    status = Unary<Mobility, LivenessReport, LivenessReply>(
        *channel, &Mobility::Stub::ReportLiveness, {});
  } else if (call == "install-sa") {
    status = Unary<Forwarder, InstallSaRequest, InstallSaReply>(
        *channel, &Forwarder::Stub::InstallSa, {});
  } else if (call == "list-sas") {
    status = Unary<Management, ListSasRequest, ListSasReply>(
        *channel, &Management::Stub::ListSas, {});
  } else if (call == "relay-hello") {
    status = RelayHello(*channel, name);
  } else {
    std::fprintf(stderr, "rpc_probe: unknown call '%s'\n", call.c_str());
    return 2;
  }
  std::printf("%s %s\n", CodeName(status.error_code()), status.error_message().c_str());
  return 0;
}
