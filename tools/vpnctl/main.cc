// vpnctl: the operator's command line for the gateway's gRPC APIs.
//
// Without --target it talks to `gateway`'s operator socket
// (unix:/run/vpn-gateway/gateway.sock). With mTLS (the operator's
// certificate, tools/service-pki.sh) it checks that the server holds the
// role that serves the command (ike-service for SAs, auth-service for
// users, esp-forwarder for esp-counters), or --tls_server_name.
//
//   vpnctl [--target=host:port|unix:/path] [--tls_*_file=...] health [--wait=10s]
//   vpnctl [--target=host:port] services
//   vpnctl [--target=ike-service:50051] sas | sa SPI_I SPI_R | terminate SPI_I SPI_R
//   vpnctl [--target=ike-service:50051] counters | events
//   vpnctl [--target=esp-forwarder:50054] esp-counters [INBOUND_SPI]
#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/net/ip_endpoint.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "proto/vpn/v1/auth.grpc.pb.h"
#include "proto/vpn/v1/forwarder.grpc.pb.h"
#include "proto/vpn/v1/management.grpc.pb.h"

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/config/config_reader.h"
#include "common/rpc/probes.h"
#include "common/rpc/credentials.h"
#include "common/rpc/roles.h"
#include "common/rpc/server_options.h"

ABSL_FLAG(std::string, target, "unix:/run/vpn-gateway/gateway.sock",
          "Service address: host:port, or unix:/path (gateway's operator socket).");
ABSL_FLAG(std::string, tls_server_name, "",
          "The role the server's certificate must name (default: the role serving the "
          "command; health and services: the --target host).");
ABSL_FLAG(std::string, tls_cert_file, "", "Client certificate (PEM) for mTLS.");
ABSL_FLAG(std::string, tls_key_file, "", "Client key (PEM) for mTLS.");
ABSL_FLAG(std::string, tls_ca_file, "", "CA (PEM) that signed the server.");
ABSL_FLAG(std::string, wait, "0s",
          "health: keep retrying until SERVING for up to this long.");

namespace {

constexpr char kUsage[] =
    "vpnctl [flags] COMMAND\n"
    "  health    grpc.health.v1 status of the service at --target\n"
    "  services  gRPC services the target serves (server reflection)\n"
    "  sas       IKE SAs (ike-service management API), with the replica that owns each\n"
    "  sa SPI_I SPI_R         one IKE SA and its CHILD SAs, as JSON\n"
    "  terminate SPI_I SPI_R  delete an IKE SA, telling the client\n"
    "  counters  SA counts\n"
    "  events    stream SA up/down/rekey/address-update events\n"
    "  users                  user names (auth-service, e.g. --target=:50052)\n"
    "  user-add NAME          add or change a user; the password is read from stdin\n"
    "  user-del NAME          remove a user\n"
    "  esp-counters [SPI]     per-CHILD-SA bytes, packets and drops (esp-forwarder,\n"
    "                         e.g. --target=:50054; SPI: inbound, hex)";

int Fail(const std::string& message) {
  std::fprintf(stderr, "vpnctl: %s\n", message.c_str());
  return 1;
}

std::string Address(const vpn::v1::Endpoint& endpoint) {
  auto parsed = vpn::net::IpEndpoint::FromProto(endpoint);
  return parsed.ok() ? parsed->ToString() : "?";
}

bool ParseSpis(const std::vector<char*>& args, uint64_t* spi_i, uint64_t* spi_r) {
  return args.size() == 4 && absl::SimpleHexAtoi(args[2], spi_i) &&
         absl::SimpleHexAtoi(args[3], spi_r);
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(5);
}

int RunManagement(const std::string& command, const std::vector<char*>& args,
                  const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = vpn::v1::Management::NewStub(channel);
  grpc::ClientContext context;
  if (command != "events") context.set_deadline(Deadline());
  grpc::Status status;
  if (command == "sas") {
    vpn::v1::ListSasReply reply;
    status = stub->ListSas(&context, vpn::v1::ListSasRequest(), &reply);
    if (status.ok()) {
      std::printf("%-16s %-16s %-22s %-16s %-16s %-9s %s\n", "SPI_I", "SPI_R", "REMOTE",
                  "IDENTITY", "VIRTUAL_IP", "CHILD_SAS", "OWNER");
      for (const vpn::v1::IkeSa& sa : reply.ike_sas()) {
        std::string vips;
        for (const std::string& ip : sa.virtual_ips()) {
          vpn::v1::Endpoint e;
          e.set_ip(ip);
          absl::StrAppend(&vips, vips.empty() ? "" : ",",
                          vpn::net::IpEndpoint::FromProto(e)->AddressString());
        }
        std::printf("%016llx %016llx %-22s %-16s %-16s %-9d %s\n",
                    static_cast<unsigned long long>(sa.initiator_spi()),
                    static_cast<unsigned long long>(sa.responder_spi()),
                    Address(sa.remote()).c_str(),
                    sa.eap_identity().empty() ? "-" : sa.eap_identity().c_str(),
                    vips.empty() ? "-" : vips.c_str(), sa.child_spis_size(),
                    sa.meta().owner_replica().empty() ? "-" : sa.meta().owner_replica().c_str());
      }
    }
  } else if (command == "sa" || command == "terminate") {
    uint64_t spi_i = 0, spi_r = 0;
    if (!ParseSpis(args, &spi_i, &spi_r)) {
      return Fail(command + " takes SPI_I SPI_R in hex, as `vpnctl sas` shows them");
    }
    if (command == "sa") {
      vpn::v1::GetSaRequest request;
      request.set_initiator_spi(spi_i);
      request.set_responder_spi(spi_r);
      vpn::v1::GetSaReply reply;
      status = stub->GetSa(&context, request, &reply);
      if (status.ok()) std::printf("%s\n", ToJson(reply).c_str());
    } else {
      vpn::v1::TerminateSaRequest request;
      request.set_initiator_spi(spi_i);
      request.set_responder_spi(spi_r);
      vpn::v1::TerminateSaReply reply;
      status = stub->TerminateSa(&context, request, &reply);
      if (status.ok()) std::printf("terminated\n");
    }
  } else if (command == "counters") {
    vpn::v1::GetCountersReply reply;
    status = stub->GetCounters(&context, vpn::v1::GetCountersRequest(), &reply);
    if (status.ok()) {
      std::printf("ike_sas %llu\nchild_sas %llu\n",
                  static_cast<unsigned long long>(reply.ike_sas()),
                  static_cast<unsigned long long>(reply.child_sas()));
    }
  } else {
    auto reader = stub->WatchEvents(&context, vpn::v1::WatchEventsRequest());
    vpn::v1::SaEvent event;
    while (reader->Read(&event)) {
      std::printf("%s %s %016llx %016llx %s %s\n",
                  google::protobuf::util::TimeUtil::ToString(event.time()).c_str(),
                  vpn::v1::SaEvent::Kind_Name(event.kind()).c_str(),
                  static_cast<unsigned long long>(event.initiator_spi()),
                  static_cast<unsigned long long>(event.responder_spi()),
                  event.eap_identity().empty() ? "-" : event.eap_identity().c_str(),
                  Address(event.remote()).c_str());
      std::fflush(stdout);
    }
    status = reader->Finish();
  }
  if (!status.ok()) return Fail(command + ": " + status.error_message());
  return 0;
}

int RunUsers(const std::string& command, const std::vector<char*>& args,
             const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = vpn::v1::Auth::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  grpc::Status status;
  vpn::v1::Empty empty;
  if (command == "users") {
    vpn::v1::ListUsersReply reply;
    status = stub->ListUsers(&context, vpn::v1::ListUsersRequest(), &reply);
    for (const vpn::v1::User& user : reply.users()) {
      std::printf("%s%s\n", user.name().c_str(), user.disabled() ? " (disabled)" : "");
    }
  } else {
    if (args.size() != 3) return Fail(command + " takes a user name");
    if (command == "user-del") {
      vpn::v1::DeleteUserRequest request;
      request.set_name(args[2]);
      status = stub->DeleteUser(&context, request, &empty);
    } else {
      // From stdin, so the password shows in no process list or history.
      std::string password;
      char buffer[256];
      while (std::fgets(buffer, sizeof(buffer), stdin) != nullptr) password += buffer;
      while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
        password.pop_back();
      }
      if (password.empty()) return Fail("user-add: no password on stdin");
      vpn::v1::PutUserRequest request;
      request.set_name(args[2]);
      request.set_password(password);
      status = stub->PutUser(&context, request, &empty);
      std::fill(password.begin(), password.end(), '\0');
    }
    if (status.ok()) std::printf("ok\n");
  }
  if (!status.ok()) return Fail(command + ": " + status.error_message());
  return 0;
}

int RunEspCounters(const std::vector<char*>& args,
                   const std::shared_ptr<grpc::Channel>& channel) {
  vpn::v1::CountersRequest request;
  uint32_t spi = 0;
  if (args.size() > 3 || (args.size() == 3 && !absl::SimpleHexAtoi(args[2], &spi))) {
    return Fail("esp-counters takes an optional inbound SPI in hex");
  }
  request.set_inbound_spi(spi);
  auto stub = vpn::v1::Forwarder::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  vpn::v1::CountersReply reply;
  grpc::Status status = stub->Counters(&context, request, &reply);
  if (!status.ok()) return Fail("esp-counters: " + status.error_message());
  std::printf("%-10s %-10s %14s %12s %14s %12s %8s %8s\n", "SPI_IN", "SPI_OUT", "BYTES_IN",
              "PACKETS_IN", "BYTES_OUT", "PACKETS_OUT", "REPLAY", "AUTH");
  for (const vpn::v1::SaCounters& sa : reply.sas()) {
    std::printf("%08x   %08x   %14llu %12llu %14llu %12llu %8llu %8llu\n", sa.inbound_spi(),
                sa.outbound_spi(), static_cast<unsigned long long>(sa.bytes_in()),
                static_cast<unsigned long long>(sa.packets_in()),
                static_cast<unsigned long long>(sa.bytes_out()),
                static_cast<unsigned long long>(sa.packets_out()),
                static_cast<unsigned long long>(sa.replay_drops()),
                static_cast<unsigned long long>(sa.auth_failures()));
  }
  return 0;
}

// The role whose API a command calls, for the server certificate check.
std::string ServingRole(const std::string& command) {
  if (command == "users" || command == "user-add" || command == "user-del") {
    return vpn::rpc::kRoleAuthService;
  }
  if (command == "esp-counters") return vpn::rpc::kRoleEspForwarder;
  if (command == "health" || command == "services") return "";
  return vpn::rpc::kRoleIkeService;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) return Fail(std::string("usage: ") + kUsage);
  const std::string command = args[1];
  const std::string target = absl::GetFlag(FLAGS_target);
  if (absl::Status valid = vpn::rpc::ValidateListen(target); !valid.ok()) {
    return Fail("flag --target: " + std::string(valid.message()));
  }
  vpn::rpc::TlsFiles tls{absl::GetFlag(FLAGS_tls_cert_file),
                         absl::GetFlag(FLAGS_tls_key_file),
                         absl::GetFlag(FLAGS_tls_ca_file)};
  std::string server_role = absl::GetFlag(FLAGS_tls_server_name);
  if (server_role.empty()) server_role = ServingRole(command);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      vpn::rpc::MakeChannel(target, tls, server_role);
  if (!channel.ok()) return Fail(std::string(channel.status().message()));

  if (command == "health") {
    absl::StatusOr<absl::Duration> wait =
        vpn::config::ParseDuration(absl::GetFlag(FLAGS_wait));
    if (!wait.ok()) return Fail("flag --wait: " + std::string(wait.status().message()));
    const absl::Time give_up = absl::Now() + *wait;
    absl::StatusOr<std::string> health;
    while (true) {
      health = vpn::rpc::CheckHealth(*channel);
      if ((health.ok() && *health == "SERVING") || absl::Now() >= give_up) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    if (!health.ok()) return Fail(std::string(health.status().message()));
    std::printf("%s %s\n", target.c_str(), health->c_str());
    return *health == "SERVING" ? 0 : 1;
  }
  if (command == "services") {
    absl::StatusOr<std::vector<std::string>> services =
        vpn::rpc::ListServices(*channel);
    if (!services.ok()) return Fail(std::string(services.status().message()));
    std::printf("%s\n", absl::StrJoin(*services, "\n").c_str());
    return 0;
  }
  if (command == "sas" || command == "sa" || command == "terminate" ||
      command == "counters" || command == "events") {
    return RunManagement(command, args, *channel);
  }
  if (command == "users" || command == "user-add" || command == "user-del") {
    return RunUsers(command, args, *channel);
  }
  if (command == "esp-counters") return RunEspCounters(args, *channel);
  return Fail("unknown command '" + command + "'\n" + kUsage);
}
