#include "esp-forwarder/path_reports/mobility_reporter.h"

#include <time.h>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log/log.h"
#include "common/rpc/credentials.h"
#include "common/rpc/roles.h"
#include "common/rpc/in_process.h"
#include "google/protobuf/util/time_util.h"
#include "proto/vpn/v1/mobility.grpc.pb.h"

namespace vpn::forwarder {
namespace {

constexpr absl::Duration kUpdateDeadline = absl::Seconds(2);
constexpr absl::Duration kLivenessDeadline = absl::Milliseconds(500);

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("esp-forwarder");
  return *logger;
}

std::string Hex64(uint64_t spi) { return absl::StrFormat("%016x", spi); }
std::string Hex32(uint32_t spi) { return absl::StrFormat("%08x", spi); }

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("mobility-service ", what, ": ", status.error_message()));
}

v1::LivenessReport LivenessReport(uint64_t spi_i, uint64_t spi_r, absl::Time seen) {
  v1::LivenessReport report;
  report.set_initiator_spi(spi_i);
  report.set_responder_spi(spi_r);
  *report.mutable_last_seen() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(seen));
  return report;
}

class GrpcMobilityApi : public MobilityApi {
 public:
  explicit GrpcMobilityApi(std::unique_ptr<v1::Mobility::Stub> stub) : stub_(std::move(stub)) {}

  absl::StatusOr<int64_t> UpdateEndpoint(const v1::EndpointUpdate& update) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kUpdateDeadline));
    v1::EndpointUpdateReply reply;
    grpc::Status status = stub_->UpdateEndpoint(&context, update, &reply);
    if (!status.ok()) return FromGrpc(status, "UpdateEndpoint");
    return reply.version();
  }

  absl::Status ReportLiveness(uint64_t spi_i, uint64_t spi_r, absl::Time seen) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kLivenessDeadline));
    v1::LivenessReply reply;
    return FromGrpc(stub_->ReportLiveness(&context, LivenessReport(spi_i, spi_r, seen), &reply),
                    "ReportLiveness");
  }

 private:
  std::unique_ptr<v1::Mobility::Stub> stub_;
};

// The same, calling mobility-service's implementation in this process.
class InProcessMobilityApi : public MobilityApi {
 public:
  explicit InProcessMobilityApi(v1::Mobility::Service* service) : service_(service) {}

  absl::StatusOr<int64_t> UpdateEndpoint(const v1::EndpointUpdate& update) override {
    absl::StatusOr<v1::EndpointUpdateReply> reply = rpc::CallInProcess(
        service_, &v1::Mobility::Service::UpdateEndpoint, update, "mobility-service UpdateEndpoint");
    if (!reply.ok()) return reply.status();
    return reply->version();
  }

  absl::Status ReportLiveness(uint64_t spi_i, uint64_t spi_r, absl::Time seen) override {
    return rpc::CallInProcess(service_, &v1::Mobility::Service::ReportLiveness,
                              LivenessReport(spi_i, spi_r, seen),
                              "mobility-service ReportLiveness")
        .status();
  }

 private:
  v1::Mobility::Service* const service_;
};

// A definitive answer: the move must not stand and is not retried.
bool IsRefusal(const absl::Status& status) {
  return absl::IsFailedPrecondition(status) || absl::IsNotFound(status) ||
         absl::IsInvalidArgument(status) || absl::IsPermissionDenied(status);
}

}  // namespace

std::unique_ptr<MobilityApi> MakeInProcessMobilityApi(v1::Mobility::Service* service) {
  return std::make_unique<InProcessMobilityApi>(service);
}

absl::StatusOr<std::unique_ptr<MobilityApi>> MakeGrpcMobilityApi(const std::string& target,
                                                                 const rpc::TlsFiles& tls) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = rpc::MakeChannel(target, tls, rpc::kRoleMobilityService);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<MobilityApi>(new GrpcMobilityApi(v1::Mobility::NewStub(*channel)));
}

// ---- Ring ------------------------------------------------------------------

bool MobilityReporter::Ring::Push(Event&& event) {
  if (count_ == slots_.size()) return false;
  slots_[(head_ + count_) % slots_.size()] = std::move(event);
  ++count_;
  return true;
}

bool MobilityReporter::Ring::Pop(Event* event) {
  if (count_ == 0) return false;
  *event = std::move(slots_[head_]);
  slots_[head_].sa.reset();
  head_ = (head_ + 1) % slots_.size();
  --count_;
  return true;
}

// ---- MobilityReporter ------------------------------------------------------

MobilityReporter::MobilityReporter(std::unique_ptr<MobilityApi> api, SaTable* table,
                                   prometheus::Registry& registry,
                                   MobilityReporterOptions options,
                                   std::shared_ptr<const store::Sealer> sealer)
    : api_(std::move(api)),
      table_(table),
      sealer_(std::move(sealer)),
      options_(std::move(options)),
      moves_(std::max<size_t>(1, options_.move_queue)),
      liveness_(std::max<size_t>(1, options_.liveness_queue)),
      rebindings_(prometheus::BuildCounter()
                      .Name("forwarder_nat_rebindings_total")
                      .Help("Authenticated ESP in UDP from a new source (NAT rebinding), by "
                            "outcome: moved (mobility-service committed it), refused (it said "
                            "no; moved back), failed (no answer; the move stands), superseded "
                            "(the SA changed meanwhile), dropped (queue full).")
                      .Register(registry)),
      moved_(rebindings_.Add({{"result", "moved"}})),
      refused_(rebindings_.Add({{"result", "refused"}})),
      failed_(rebindings_.Add({{"result", "failed"}})),
      superseded_(rebindings_.Add({{"result", "superseded"}})),
      move_dropped_(rebindings_.Add({{"result", "dropped"}})),
      liveness_family_(prometheus::BuildCounter()
                           .Name("forwarder_liveness_reports_total")
                           .Help("Liveness reports to mobility-service from authenticated "
                                 "inbound ESP, by result.")
                           .Register(registry)),
      liveness_sent_(liveness_family_.Add({{"result", "sent"}})),
      liveness_failed_(liveness_family_.Add({{"result", "failed"}})),
      liveness_dropped_(liveness_family_.Add({{"result", "dropped"}})),
      move_seconds_(prometheus::BuildHistogram()
                        .Name("forwarder_nat_rebinding_move_seconds")
                        .Help("From the first authenticated packet from the new source to the "
                              "forwarder sending on the new path (its table published).")
                        .Register(registry)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01, 0.025, 0.1})) {}

MobilityReporter::~MobilityReporter() { Stop(); }

void MobilityReporter::Start() {
  thread_ = std::thread([this] {
    log::SetThreadName("fwd-mobility");
    Run();
  });
}

void MobilityReporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    wake_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

namespace {

// A source's tag for MobilityMarks::rebind_holdoff_source (never 0).
uint64_t SourceTag(const net::IpEndpoint& source) {
  return absl::Hash<net::IpEndpoint>{}(source) | 1;
}

}  // namespace

void MobilityReporter::HoldOffAfterMove(const std::vector<std::shared_ptr<const SaEntry>>& left) {
  const int64_t until = esp::MonotonicNanos() + absl::ToInt64Nanoseconds(options_.move_holdoff);
  for (const std::shared_ptr<const SaEntry>& entry : left) {
    esp::MobilityMarks& marks = entry->sa->mobility();
    marks.rebind_holdoff_source.store(SourceTag(entry->remote), std::memory_order_relaxed);
    marks.rebind_holdoff_until_ns.store(until, std::memory_order_relaxed);
  }
}

bool MobilityReporter::HeldOff(const esp::MobilityMarks& marks, const net::IpEndpoint& source,
                               int64_t now_ns) {
  if (now_ns >= marks.rebind_holdoff_until_ns.load(std::memory_order_relaxed)) return false;
  const uint64_t held = marks.rebind_holdoff_source.load(std::memory_order_relaxed);
  return held == 0 || held == SourceTag(source);
}

void MobilityReporter::OnAuthenticated(const SaEntry& entry, const net::IpEndpoint* source,
                                       bool highest, int64_t now_ns) {
  if (entry.ike_spi_i == 0 && entry.ike_spi_r == 0) return;  // no IKE SA to name
  esp::MobilityMarks& marks = entry.sa->mobility();
  bool queued = false;

  // Liveness: the first packet after an interval of quiet, then once per interval.
  const int64_t interval = absl::ToInt64Nanoseconds(options_.liveness_interval);
  int64_t last = marks.liveness_queued_ns.load(std::memory_order_relaxed);
  if (now_ns - last >= interval &&
      marks.liveness_queued_ns.compare_exchange_strong(last, now_ns,
                                                       std::memory_order_relaxed)) {
    Event event;
    event.sa = entry.sa;
    event.inbound_spi = entry.sa->inbound_spi();
    event.spi_i = entry.ike_spi_i;
    event.spi_r = entry.ike_spi_r;
    event.seen_ns = now_ns;
    bool pushed;
    {
      absl::MutexLock lock(&mu_);
      pushed = liveness_.Push(std::move(event));
    }
    if (pushed) {
      queued = true;
    } else {
      liveness_dropped_.Increment();
    }
  }

  // NAT rebinding: ESP in UDP, authenticated, new highest sequence number,
  // from elsewhere (RFC 3948 §2.2; RFC 4555 §3.5 for the highest number).
  if (source != nullptr && highest && *source != entry.remote && !HeldOff(marks, *source, now_ns)) {
    bool idle = false;
    if (marks.move_pending.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) {
      Event event;
      event.sa = entry.sa;
      event.inbound_spi = entry.sa->inbound_spi();
      event.spi_i = entry.ike_spi_i;
      event.spi_r = entry.ike_spi_r;
      event.to = *source;
      event.seen_ns = now_ns;
      bool pushed;
      {
        absl::MutexLock lock(&mu_);
        pushed = moves_.Push(std::move(event));
      }
      if (pushed) {
        queued = true;
      } else {
        marks.move_pending.store(false, std::memory_order_release);
        move_dropped_.Increment();
      }
    }
  }
  if (queued) {
    absl::MutexLock lock(&mu_);
    wake_.Signal();
  }
}

bool MobilityReporter::WaitIdle(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (!(moves_.empty() && liveness_.empty() && busy_ == 0)) {
    if (wake_.WaitWithDeadline(&mu_, deadline)) {
      return moves_.empty() && liveness_.empty() && busy_ == 0;
    }
  }
  return true;
}

void MobilityReporter::Run() {
  while (true) {
    Event event;
    bool move = false;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && moves_.empty() && liveness_.empty()) wake_.Wait(&mu_);
      if (stopping_) return;
      // Moves first: they change where traffic goes.
      move = moves_.Pop(&event);
      if (!move) liveness_.Pop(&event);
      ++busy_;
    }
    if (move) {
      HandleMove(event);
    } else {
      HandleLiveness(event);
    }
    event.sa.reset();
    absl::MutexLock lock(&mu_);
    --busy_;
    wake_.SignalAll();
  }
}

void MobilityReporter::HandleMove(Event& event) {
  esp::MobilityMarks& marks = event.sa->mobility();
  // 1. Send on the new path at once: our own table, same EspSa.
  absl::StatusOr<net::IpEndpoint> previous =
      table_->MoveRemote(event.inbound_spi, event.sa.get(), event.to);
  if (!previous.ok()) {
    superseded_.Increment();
    marks.move_pending.store(false, std::memory_order_release);
    return;
  }
  const double took = static_cast<double>(esp::MonotonicNanos() - event.seen_ns) / 1e9;
  move_seconds_.Observe(took);
  Log().Info("ESP from a new source: NAT rebinding followed",
             {{"spi_in", Hex32(event.inbound_spi)},
              {"spi_i", Hex64(event.spi_i)},
              {"spi_r", Hex64(event.spi_r)},
              {"from", previous->ToString()},
              {"to", event.to.ToString()},
              {"local_move_us", static_cast<int64_t>(took * 1e6)}});

  // 2. Commit through mobility-service (the store: IKE and every CHILD record).
  v1::EndpointUpdate update;
  update.set_initiator_spi(event.spi_i);
  update.set_responder_spi(event.spi_r);
  *update.mutable_remote() = event.to.ToProto();
  update.set_cause(v1::EndpointUpdate::NAT_REBINDING);
  update.set_remote_behind_nat(true);
  // This forwarder authorized the move (authenticated ESP, highest sequence
  // number): it tags it, past the generation of the path it had, and names
  // its own local address so the tag covers what the records will hold.
  if (std::shared_ptr<const SaEntry> entry = table_->Staged(event.inbound_spi);
      sealer_ != nullptr && entry != nullptr) {
    *update.mutable_local() = entry->local.ToProto();
    absl::StatusOr<v1::PathAuth> auth = store::TagPath(
        *sealer_, event.spi_i, event.spi_r, update.local(), update.remote(), true,
        store::NextPathGeneration(entry->path_generation));
    if (auth.ok()) *update.mutable_path_auth() = *std::move(auth);
  }
  absl::Status last = absl::OkStatus();
  absl::Duration backoff = options_.retry_backoff;
  for (int attempt = 1; attempt <= std::max(1, options_.update_attempts); ++attempt) {
    absl::StatusOr<int64_t> version = api_->UpdateEndpoint(update);
    if (version.ok()) {
      moved_.Increment();
      marks.move_pending.store(false, std::memory_order_release);
      return;
    }
    last = version.status();
    if (IsRefusal(last)) {
      // The store says no (RFC 7296 §2.23: only a client behind a NAT is
      // followed this way): back to where the SA was, and stop listening to
      // new sources of this SA for a while.
      (void)table_->MoveRemote(event.inbound_spi, event.sa.get(), *previous);
      marks.rebind_holdoff_source.store(0, std::memory_order_relaxed);  // every source
      marks.rebind_holdoff_until_ns.store(
          esp::MonotonicNanos() + absl::ToInt64Nanoseconds(options_.refused_holdoff),
          std::memory_order_relaxed);
      refused_.Increment();
      marks.move_pending.store(false, std::memory_order_release);
      Log().Warning("mobility-service refused the NAT rebinding; SA moved back",
                    {{"spi_in", Hex32(event.inbound_spi)},
                     {"spi_r", Hex64(event.spi_r)},
                     {"to", previous->ToString()},
                     {"error", last.message()}});
      return;
    }
    // Retry only while the move still stands (the store sync may have
    // applied a newer record meanwhile).
    std::shared_ptr<const SaEntry> staged = table_->Staged(event.inbound_spi);
    if (staged == nullptr || staged->sa != event.sa || staged->remote != event.to) break;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || attempt == options_.update_attempts) break;
      wake_.WaitWithTimeout(&mu_, backoff);
      if (stopping_) break;
    }
    backoff *= 2;
  }
  failed_.Increment();
  marks.move_pending.store(false, std::memory_order_release);
  Log().Warning("cannot report the NAT rebinding to mobility-service; the move stands here",
                {{"spi_in", Hex32(event.inbound_spi)},
                 {"spi_r", Hex64(event.spi_r)},
                 {"error", last.message()}});
}

void MobilityReporter::HandleLiveness(const Event& event) {
  const int64_t now = esp::MonotonicNanos();
  const int64_t interval = absl::ToInt64Nanoseconds(options_.liveness_interval);
  const auto key = std::make_pair(event.spi_i, event.spi_r);
  // Another CHILD SA of the same IKE SA reported it lately.
  auto it = reported_.find(key);
  if (it != reported_.end() && event.seen_ns - it->second < interval) return;
  reported_[key] = event.seen_ns;
  if (now - last_prune_ns_ >= interval) {
    last_prune_ns_ = now;
    absl::erase_if(reported_, [&](const auto& kv) { return now - kv.second >= interval; });
  }
  // The packet's wall time: now, less the time it waited here.
  const absl::Time seen = absl::Now() - absl::Nanoseconds(std::max<int64_t>(0, now - event.seen_ns));
  absl::Status status = api_->ReportLiveness(event.spi_i, event.spi_r, seen);
  if (status.ok()) {
    liveness_sent_.Increment();
  } else {
    // Best effort: the next interval reports again.
    liveness_failed_.Increment();
    Log().Debug("liveness report failed",
                {{"spi_r", Hex64(event.spi_r)}, {"error", status.message()}});
  }
}

}  // namespace vpn::forwarder
