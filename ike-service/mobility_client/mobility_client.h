// What ike-service tells mobility-service: authenticated address changes
// (committed there, with compare-on-version) and liveness, batched.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/rpc/server_options.h"
#include "proto/vpn/v1/mobility.grpc.pb.h"

namespace vpn::ike {

class MobilityClient {
 public:
  virtual ~MobilityClient() = default;
  // Commits a move; returns the IKE record's new version.
  virtual absl::StatusOr<int64_t> UpdateEndpoint(const v1::EndpointUpdate& update) = 0;
  // Notes that the client was heard from; sent in the background, at most
  // once per `interval` per SA.
  virtual void ReportLiveness(uint64_t spi_i, uint64_t spi_r) = 0;
  // Sends what is pending and stops any background work; nothing is called
  // on mobility-service afterwards. Idempotent.
  virtual void Stop() {}
};

// mobility-service's API over gRPC, or in process (`gateway`). Liveness
// reports are sent in the background, at most once per `interval` per SA.
class MobilityServiceClient : public MobilityClient {
 public:
  static absl::StatusOr<std::unique_ptr<MobilityServiceClient>> OverGrpc(
      const std::string& target, const rpc::TlsFiles& tls,
      absl::Duration interval = absl::Seconds(10));
  static std::unique_ptr<MobilityServiceClient> InProcess(
      v1::Mobility::Service* service, absl::Duration interval = absl::Seconds(10));
  ~MobilityServiceClient() override;

  absl::StatusOr<int64_t> UpdateEndpoint(const v1::EndpointUpdate& update) override;
  void ReportLiveness(uint64_t spi_i, uint64_t spi_r) override;
  void Stop() override;

 private:
  using UpdateCall =
      std::function<absl::StatusOr<v1::EndpointUpdateReply>(const v1::EndpointUpdate&)>;
  using LivenessCall = std::function<void(const v1::LivenessReport&)>;

  MobilityServiceClient(UpdateCall update, LivenessCall liveness, absl::Duration interval);
  void Flush();

  const UpdateCall update_;
  const LivenessCall liveness_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  // When each SA was last reported, and the reports waiting to go out.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, absl::Time> reported_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, absl::Time> pending_ ABSL_GUARDED_BY(mu_);
  absl::Notification stopping_;
  std::thread sender_;
};

}  // namespace vpn::ike
