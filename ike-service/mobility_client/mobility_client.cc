#include "ike-service/mobility_client/mobility_client.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/rpc/credentials.h"
#include "common/rpc/roles.h"
#include "common/rpc/in_process.h"
#include "google/protobuf/util/time_util.h"

namespace vpn::ike {
namespace {

constexpr absl::Duration kUpdateDeadline = absl::Seconds(2);
constexpr absl::Duration kLivenessDeadline = absl::Milliseconds(500);
constexpr size_t kMaxTracked = 1 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<MobilityServiceClient>> MobilityServiceClient::OverGrpc(
    const std::string& target, const rpc::TlsFiles& tls, absl::Duration interval) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = rpc::MakeChannel(target, tls, rpc::kRoleMobilityService);
  if (!channel.ok()) return channel.status();
  std::shared_ptr<v1::Mobility::Stub> stub = v1::Mobility::NewStub(*channel);
  auto update = [stub](const v1::EndpointUpdate& request)
      -> absl::StatusOr<v1::EndpointUpdateReply> {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kUpdateDeadline));
    v1::EndpointUpdateReply reply;
    grpc::Status status = stub->UpdateEndpoint(&context, request, &reply);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrCat("mobility-service UpdateEndpoint: ",
                                       status.error_message()));
    }
    return reply;
  };
  auto liveness = [stub](const v1::LivenessReport& report) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kLivenessDeadline));
    v1::LivenessReply reply;
    // Best effort: a lost report is followed by the next one.
    (void)stub->ReportLiveness(&context, report, &reply);
  };
  return std::unique_ptr<MobilityServiceClient>(
      new MobilityServiceClient(std::move(update), std::move(liveness), interval));
}

std::unique_ptr<MobilityServiceClient> MobilityServiceClient::InProcess(
    v1::Mobility::Service* service, absl::Duration interval) {
  auto update = [service](const v1::EndpointUpdate& request) {
    return rpc::CallInProcess(service, &v1::Mobility::Service::UpdateEndpoint, request,
                              "mobility-service UpdateEndpoint");
  };
  auto liveness = [service](const v1::LivenessReport& report) {
    (void)rpc::CallInProcess(service, &v1::Mobility::Service::ReportLiveness, report,
                             "mobility-service ReportLiveness");
  };
  return std::unique_ptr<MobilityServiceClient>(
      new MobilityServiceClient(std::move(update), std::move(liveness), interval));
}

MobilityServiceClient::MobilityServiceClient(UpdateCall update, LivenessCall liveness,
                                             absl::Duration interval)
    : update_(std::move(update)), liveness_(std::move(liveness)), interval_(interval) {
  sender_ = std::thread([this] {
    log::SetThreadName("ike-mob-send");
    while (!stopping_.WaitForNotificationWithTimeout(absl::Seconds(1))) Flush();
  });
}

MobilityServiceClient::~MobilityServiceClient() { Stop(); }

void MobilityServiceClient::Stop() {
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  if (!sender_.joinable()) return;
  sender_.join();
  Flush();  // the last reports
}

absl::StatusOr<int64_t> MobilityServiceClient::UpdateEndpoint(
    const v1::EndpointUpdate& update) {
  absl::StatusOr<v1::EndpointUpdateReply> reply = update_(update);
  if (!reply.ok()) return reply.status();
  return reply->version();
}

void MobilityServiceClient::ReportLiveness(uint64_t spi_i, uint64_t spi_r) {
  const auto key = std::make_pair(spi_i, spi_r);
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  auto it = reported_.find(key);
  if (it != reported_.end() && now - it->second < interval_) return;
  if (reported_.size() >= kMaxTracked) reported_.clear();
  reported_[key] = now;
  pending_[key] = now;
}

void MobilityServiceClient::Flush() {
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, absl::Time> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(pending_);
  }
  for (const auto& [key, seen] : batch) {
    v1::LivenessReport report;
    report.set_initiator_spi(key.first);
    report.set_responder_spi(key.second);
    *report.mutable_last_seen() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(seen));
    liveness_(report);
  }
}

}  // namespace vpn::ike
