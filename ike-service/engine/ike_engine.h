// Where IKE datagrams enter ike-service: decoding, the SA table, message
// IDs and retransmits, SK protection and fragments (RFC 7383), and dispatch
// to the exchange handlers. Messages of one SA are handled in order, by one
// worker; different SAs in parallel.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "common/log/log.h"
#include "common/log/summary.h"
#include "ike-service/codec/message.h"
#include "ike-service/exchange/cookies.h"
#include "ike-service/exchange/exchange_result.h"
#include "ike-service/exchange/ike_auth.h"
#include "ike-service/exchange/informational.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/mobility_client/mobility_client.h"
#include "ike-service/sa/ike_sa.h"
#include "ike-service/sa/sa_recorder.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "proto/vpn/v1/ike_transport.pb.h"

namespace vpn::ike {

struct EngineOptions {
  size_t workers = 2;
  size_t queue_limit = 4096;        // per worker; beyond it datagrams drop
  size_t queue_byte_limit = 8 << 20;  // per worker, the datagrams' bytes
  size_t half_open_limit = 10000;   // half-open SAs; beyond it INITs drop
  // Half-open SAs before cookies are asked. 50 keeps a burst of the costliest
  // group (MODP-3072) under 100 ms for a real client on 2 cores; 1000 let it
  // reach 0.5-0.8 s (test/hostile/cookie_threshold_bench.py, docs/security.md).
  size_t cookie_threshold = 50;
  // Half-open SAs of one client address; beyond it that address's INITs
  // drop. Cookies cannot stop a flood from an address that echoes them.
  size_t half_open_per_source_limit = 128;
  // Larger IKE_SA_INIT requests drop: each half-open SA keeps its request
  // (signed in IKE_AUTH). RFC 7296 2: 3000 octets SHOULD be accepted.
  size_t max_ike_sa_init_size = 4096;
  absl::Duration half_open_timeout = absl::Seconds(30);
  size_t fragment_size = 1280;      // largest IP packet of a sent fragment
  // Liveness (§1.4): an empty INFORMATIONAL after this much silence,
  // retransmitted with back-off; a client silent for dead_peer_timeout is
  // deleted. VPN Reconnect keeps silent clients for the outage window.
  absl::Duration liveness_interval = absl::Seconds(30);
  // 0: never here; mobility-service ends silent SAs after its outage window.
  absl::Duration dead_peer_timeout = absl::ZeroDuration();
};

class IkeEngine {
 public:
  using SendFunction = std::function<void(size_t forwarder, const v1::IkeDatagram&)>;
  // Announces an authenticated move to the forwarders (may be empty).
  using PathFunction = std::function<void(const v1::SaPathUpdate&)>;
  // Announces a CHILD SA just created to the forwarder its IKE SA's client
  // is reached by (may be empty).
  using ChildSaFunction = std::function<void(size_t forwarder, const v1::ChildSa&)>;

  // `mobility` (may be null) commits address changes and hears liveness.
  IkeEngine(ResponderPolicy policy, EngineOptions options, AuthServices services,
            SaRecorder* recorder, MobilityClient* mobility, SendFunction send,
            PathFunction move_path, ChildSaFunction announce_child,
            prometheus::Registry& registry);
  ~IkeEngine();

  // Queues a datagram for the worker that owns its SA.
  void Submit(size_t forwarder, v1::IkeDatagram datagram);

  // Handles a datagram on the calling thread (tests and the workers).
  void Handle(size_t forwarder, const v1::IkeDatagram& datagram);

  // Follows a change to an IKE SA's record made elsewhere (mobility-service
  // moved it, or deleted it after the outage window). `record` is null for
  // a delete.
  // `version`: the record's store version (0 for a delete); an event older
  // than what this replica wrote or took over is ignored.
  void ApplyRecord(uint64_t spi_i, uint64_t spi_r, const v1::IkeSa* record, int64_t version);
  // The IKE SAs the store holds, from a (re)list of the records: a request
  // under SPIs this replica does not hold reads the store only for these.
  // ApplyRecord keeps the set current between lists. A held SA whose record
  // this replica last wrote before `revision` (the listing's) and that is
  // not listed was deleted meanwhile, and is forgotten.
  void ResetStoredRecords(const std::vector<std::pair<uint64_t, uint64_t>>& spis,
                          int64_t revision);

  // Takes over SAs rebuilt from the store after a restart.
  void Restore(std::vector<std::unique_ptr<IkeSa>> sas);

  // Drops half-open SAs older than the timeout; returns how many.
  size_t ExpireHalfOpen();

  // Sends liveness checks and retransmits the gateway's own requests;
  // deletes SAs whose client stayed silent past dead_peer_timeout.
  void CheckLiveness();

  // Deletes an IKE SA, telling the client (INFORMATIONAL DELETE); one that
  // another replica owns is taken over first. kNotFound: no such
  // established SA.
  absl::Status Terminate(uint64_t spi_i, uint64_t spi_r);

  size_t sa_count() const;
  size_t half_open_count() const;

  void Stop();

 private:
  struct Work {
    size_t forwarder;
    v1::IkeDatagram datagram;
  };
  struct Worker {
    absl::Mutex mu;
    std::deque<Work> queue ABSL_GUARDED_BY(mu);
    size_t queued_bytes ABSL_GUARDED_BY(mu) = 0;
    bool stopping ABSL_GUARDED_BY(mu) = false;
    std::thread thread;
  };

  void RunWorker(Worker* worker);
  void HandleIkeSaInit(size_t forwarder, const v1::IkeDatagram& datagram,
                       const codec::Message& request);
  void HandleProtected(size_t forwarder, const v1::IkeDatagram& datagram,
                       const codec::Message& request);
  // Decrypts SK, or collects SKF fragments; false until a whole request is in.
  bool Unprotect(IkeSa& sa, const v1::IkeDatagram& datagram, const codec::Message& request,
                 std::vector<codec::Payload>* inner, std::string* error);
  // Encrypts the response, in fragments when it is too large.
  absl::StatusOr<std::vector<crypto::Bytes>> Protect(
      const IkeSa& sa, const codec::Header& header,
      const std::vector<codec::Payload>& payloads) const;
  // Sends to the SA's current path, or to `reply_path` (a response goes
  // where its request came from, RFC 7296 §2.11).
  void SendTo(const IkeSa& sa, const crypto::Bytes& message,
              const RequestPath* reply_path = nullptr);
  // Protects and sends a request of the gateway's own; remembers it for
  // retransmission until the response comes.
  void SendRequest(IkeSa& sa, std::vector<codec::Payload> payloads);
  void HandleResponse(size_t forwarder, const v1::IkeDatagram& datagram,
                      const codec::Message& response);
  void DeleteEstablished(IkeSa& sa, absl::string_view reason);
  // Tells the forwarders of a new CHILD SA before its record is written.
  void AnnounceChild(const IkeSa& sa, const ChildSaState& child);
  // Tells the forwarders the SA's new path at once (so ESP follows within
  // the gateway's 1 ms), then commits it through mobility-service (compare-
  // on-version there); without it, writes the records directly.
  void CommitMove(IkeSa& sa, v1::EndpointUpdate::Cause cause);
  // The CAs to name in CERTREQ, from auth-service, cached for a while.
  crypto::Bytes CertificateAuthorities();
  void Finish(std::shared_ptr<IkeSa> sa, ExchangeResult& result);
  void ReleaseResources(IkeSa& sa);
  void Forget(const IkeSa& sa);
  // The IKE SA (SPIi, SPIr) this replica holds, or null.
  std::shared_ptr<IkeSa> Held(uint64_t spi_i, uint64_t spi_r) const;
  // The SA a protected message names: held, or taken over if the message
  // passes the rebuilt SA's integrity check (TakeOver); null otherwise.
  std::shared_ptr<IkeSa> HeldOrTakenOver(size_t forwarder, const v1::IkeDatagram& datagram,
                                         const codec::Message& message);
  // An IKE SA this replica does not hold, taken over from its record (its
  // replica is gone, so the forwarders route it here) if `accept` takes the
  // rebuilt SA (the request passes its integrity check); null if there is
  // no such established SA, `accept` refused, or the lookups' rate limit is
  // spent.
  std::shared_ptr<IkeSa> TakeOver(size_t forwarder, uint64_t spi_i, uint64_t spi_r,
                                  const std::function<bool(const IkeSa&)>& accept);

  const ResponderPolicy policy_;
  const EngineOptions options_;
  const AuthServices services_;
  SaRecorder* const recorder_;
  MobilityClient* const mobility_;
  const SendFunction send_;
  const PathFunction move_path_;
  const ChildSaFunction announce_child_;
  const log::Logger log_{"ike-service"};
  // IKE_SA_INIT refusals and drops, one line per 10 s (counts by reason).
  log::Summary refusal_summary_{log_, "IKE_SA_INIT refusals", absl::Seconds(10)};
  CookieJar cookies_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<IkeSa>> sas_ ABSL_GUARDED_BY(mu_);
  // (SPIi, client address) of half-open SAs, to answer IKE_SA_INIT retransmits.
  absl::flat_hash_map<std::pair<uint64_t, std::string>, uint64_t> half_open_
      ABSL_GUARDED_BY(mu_);
  // The same SAs by SPIr (to forget one without a scan), and how many each
  // client address (without port) holds.
  struct HalfOpenEntry {
    std::pair<uint64_t, std::string> key;  // in half_open_
    std::string source;                    // in half_open_per_source_
  };
  absl::flat_hash_map<uint64_t, HalfOpenEntry> half_open_by_spi_r_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> half_open_per_source_ ABSL_GUARDED_BY(mu_);
  // Slots taken by IKE_SA_INITs being answered, not yet in half_open_.
  size_t half_open_reserved_ ABSL_GUARDED_BY(mu_) = 0;
  void ForgetHalfOpenLocked(uint64_t spi_r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseSourceSlotLocked(const std::string& source) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An IKE_SA_INIT dropped unanswered: counted by reason, and summarised.
  void DropIkeSaInit(absl::string_view reason);

  std::vector<std::unique_ptr<Worker>> workers_;

  // Store lookups for requests under unknown SPIs (TakeOver), so a flood of
  // made-up SPIs costs the store at most this many a second.
  static constexpr double kTakeOverLookupsPerSecond = 1000;
  absl::Mutex takeover_mu_;
  double takeover_tokens_ ABSL_GUARDED_BY(takeover_mu_) = kTakeOverLookupsPerSecond;
  absl::Time takeover_refilled_ ABSL_GUARDED_BY(takeover_mu_) = absl::InfinitePast();
  // (SPIi, SPIr) of every IKE record in the store (ResetStoredRecords).
  absl::Mutex stored_mu_;
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> stored_ ABSL_GUARDED_BY(stored_mu_);

  absl::Mutex authorities_mu_;
  crypto::Bytes authorities_ ABSL_GUARDED_BY(authorities_mu_);
  absl::Time authorities_fetched_ ABSL_GUARDED_BY(authorities_mu_) = absl::InfinitePast();

  prometheus::Family<prometheus::Counter>& dropped_family_;
  prometheus::Family<prometheus::Counter>& init_refused_family_;
  prometheus::Family<prometheus::Counter>& takeovers_family_;
  prometheus::Counter& sa_established_;
  prometheus::Counter& sa_failed_;
  prometheus::Counter& sa_deleted_;
  prometheus::Gauge& sas_gauge_;
  prometheus::Gauge& half_open_gauge_;
  prometheus::Histogram& mobike_switch_seconds_;
};

}  // namespace vpn::ike
