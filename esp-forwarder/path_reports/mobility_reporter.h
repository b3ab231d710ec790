// What esp-forwarder tells mobility-service (vpn.v1.Mobility), from what the
// data plane sees on authenticated inbound ESP:
//
// - NAT rebinding (RFC 3948 §2.2, RFC 4555 §3.5): an ESP-in-UDP packet that
//   passed its integrity check and carries a new highest sequence number,
//   from a source ip:port other than the SA's remote. The SA's remote is
//   moved at once in the forwarder's own table (same EspSa: SPIs, sequence
//   numbers and replay window kept) and the move is reported as
//   UpdateEndpoint(cause NAT_REBINDING, remote_behind_nat) under the IKE
//   SPIs of the CHILD record; mobility-service commits it to the store (IKE
//   and every CHILD record), which ike-service and the other forwarders
//   follow. One move per SA in flight. A refusal (FAILED_PRECONDITION: the
//   client is not behind a NAT, the SA is not established; NOT_FOUND;
//   INVALID_ARGUMENT) moves the SA back and is not retried; new sources of
//   that SA are then ignored for `refused_holdoff`. Other errors are retried
//   `update_attempts` times while the move stands. A packet that fails its
//   integrity or replay check never reaches this class.
// - Liveness: ReportLiveness at most once per `liveness_interval` per IKE SA
//   while authenticated ESP comes in, and at once on the first packet after
//   `liveness_interval` of quiet (a DORMANT SA revives without waiting).
//
// The data-plane side (OnAuthenticated) takes no lock on the fast path and
// never allocates: per-SA marks are atomics in the EspSa, and events go to
// a fixed-size ring that one background thread drains (full: the event is
// dropped and counted; a move's mark is released so a later packet retries).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/rpc/server_options.h"
#include "esp-forwarder/dataplane/dataplane.h"
#include "common/store/sa_seal.h"
#include "esp-forwarder/sa_table/sa_table.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "proto/vpn/v1/mobility.grpc.pb.h"

namespace vpn::forwarder {

// The two calls the forwarder makes (a fake in tests).
class MobilityApi {
 public:
  virtual ~MobilityApi() = default;
  virtual absl::StatusOr<int64_t> UpdateEndpoint(const v1::EndpointUpdate& update) = 0;
  virtual absl::Status ReportLiveness(uint64_t spi_i, uint64_t spi_r, absl::Time seen) = 0;
};

// vpn.v1.Mobility over gRPC (mutual TLS with `tls`'s client certificate).
absl::StatusOr<std::unique_ptr<MobilityApi>> MakeGrpcMobilityApi(const std::string& target,
                                                                 const rpc::TlsFiles& tls);
// mobility-service's implementation in this process (`gateway`).
std::unique_ptr<MobilityApi> MakeInProcessMobilityApi(v1::Mobility::Service* service);

struct MobilityReporterOptions {
  absl::Duration liveness_interval = absl::Seconds(10);
  size_t move_queue = 1024;       // pending NAT rebindings
  size_t liveness_queue = 8192;   // pending liveness reports
  absl::Duration refused_holdoff = absl::Seconds(10);
  // After an authenticated MOBIKE move, ESP still in flight from the old
  // path (or sent from the client's old address before it switched) is not
  // taken for NAT rebinding back there for this long.
  absl::Duration move_holdoff = absl::Seconds(2);
  int update_attempts = 3;        // per move, for errors other than a refusal
  absl::Duration retry_backoff = absl::Milliseconds(200);  // doubled per attempt
};

class MobilityReporter : public InboundObserver {
 public:
  // `table` must outlive the reporter. `sealer` tags each NAT rebinding
  // (EndpointUpdate.path_auth, store/sa_seal.h); without one a move goes
  // untagged and no reader applies it.
  MobilityReporter(std::unique_ptr<MobilityApi> api, SaTable* table,
                   prometheus::Registry& registry, MobilityReporterOptions options = {},
                   std::shared_ptr<const store::Sealer> sealer = nullptr);
  ~MobilityReporter() override;

  // ike-service moved these CHILD SAs (MOBIKE; `left` as they were before
  // the move): for `move_holdoff`, ESP from the path each one left is not
  // taken for a NAT rebinding (the client sends a few packets from there
  // before it switches); a new source still is.
  void HoldOffAfterMove(const std::vector<std::shared_ptr<const SaEntry>>& left);

  void Start();
  void Stop();

  // InboundObserver (data-plane worker threads).
  void OnAuthenticated(const SaEntry& entry, const net::IpEndpoint* source, bool highest,
                       int64_t now_ns) override;

  // Waits until every queued event has been handled (tests).
  bool WaitIdle(absl::Duration timeout);

 private:
  // Whether a NAT rebinding to `source` is held off now.
  static bool HeldOff(const esp::MobilityMarks& marks, const net::IpEndpoint& source,
                      int64_t now_ns);
  struct Event {
    std::shared_ptr<esp::EspSa> sa;  // a reference count, no allocation
    uint32_t inbound_spi = 0;
    uint64_t spi_i = 0, spi_r = 0;
    net::IpEndpoint to;     // moves: the new remote
    int64_t seen_ns = 0;    // CLOCK_MONOTONIC
  };
  class Ring {
   public:
    explicit Ring(size_t capacity) : slots_(capacity) {}
    bool Push(Event&& event);   // false: full
    bool Pop(Event* event);
    bool empty() const { return count_ == 0; }

   private:
    std::vector<Event> slots_;
    size_t head_ = 0, count_ = 0;
  };

  void Run();
  void HandleMove(Event& event);
  void HandleLiveness(const Event& event);

  const std::unique_ptr<MobilityApi> api_;
  SaTable* const table_;
  const std::shared_ptr<const store::Sealer> sealer_;
  const MobilityReporterOptions options_;

  absl::Mutex mu_;
  absl::CondVar wake_;
  Ring moves_ ABSL_GUARDED_BY(mu_);
  Ring liveness_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int busy_ ABSL_GUARDED_BY(mu_) = 0;  // events taken, not yet handled
  std::thread thread_;

  // Background thread only: when each IKE SA was last reported.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, int64_t> reported_;
  int64_t last_prune_ns_ = 0;

  prometheus::Family<prometheus::Counter>& rebindings_;
  prometheus::Counter& moved_;
  prometheus::Counter& refused_;
  prometheus::Counter& failed_;
  prometheus::Counter& superseded_;
  prometheus::Counter& move_dropped_;
  prometheus::Family<prometheus::Counter>& liveness_family_;
  prometheus::Counter& liveness_sent_;
  prometheus::Counter& liveness_failed_;
  prometheus::Counter& liveness_dropped_;
  prometheus::Histogram& move_seconds_;
};

}  // namespace vpn::forwarder
