#include "ike-service/engine/ike_engine.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto/crypto.h"
#include "common/store/sa_keys.h"
#include "common/store/sa_seal.h"
#include "google/protobuf/util/time_util.h"
#include "ike-service/exchange/create_child_sa.h"
#include "ike-service/exchange/ike_sa_init.h"
#include "ike-service/exchange/informational.h"

namespace vpn::ike {
namespace {

using codec::ExchangeType;
using codec::NotifyType;

using crypto::AsBytes;

std::string Hex(uint64_t spi) {
  return absl::StrCat(absl::Hex(spi, absl::kZeroPad16));
}

std::string EndpointKey(const v1::Endpoint& endpoint) {
  return absl::StrCat(endpoint.ip(), ":", endpoint.port());
}

// A client address without its port: what per-source limits count.
const std::string& SourceKey(const v1::Endpoint& endpoint) { return endpoint.ip(); }

}  // namespace

IkeEngine::IkeEngine(ResponderPolicy policy, EngineOptions options, AuthServices services,
                     SaRecorder* recorder, MobilityClient* mobility, SendFunction send,
                     PathFunction move_path, ChildSaFunction announce_child,
                     prometheus::Registry& registry)
    : policy_(std::move(policy)),
      options_(options),
      services_(services),
      recorder_(recorder),
      mobility_(mobility),
      send_(std::move(send)),
      move_path_(std::move(move_path)),
      announce_child_(std::move(announce_child)),
      dropped_family_(prometheus::BuildCounter()
                          .Name("ike_datagrams_dropped_total")
                          .Help("IKE datagrams dropped, by reason.")
                          .Register(registry)),
      init_refused_family_(prometheus::BuildCounter()
                               .Name("ike_sa_init_refused_total")
                               .Help("IKE_SA_INIT requests answered with an error notify, by "
                                     "reason: cookie_required, bad_cookie, no_proposal_chosen, "
                                     "invalid_ke_payload.")
                               .Register(registry)),
      takeovers_family_(prometheus::BuildCounter()
                            .Name("ike_sa_takeovers_total")
                            .Help("Requests under an IKE SA this replica did not hold, by "
                                  "outcome: taken (another replica's SA taken over), not_found, "
                                  "unauthenticated, failed, rate_limited.")
                            .Register(registry)),
      sa_established_(prometheus::BuildCounter()
                          .Name("ike_sa_established_total")
                          .Help("IKE SAs that completed IKE_AUTH.")
                          .Register(registry)
                          .Add({})),
      sa_failed_(prometheus::BuildCounter()
                     .Name("ike_sa_failed_total")
                     .Help("IKE SAs that failed before they were established.")
                     .Register(registry)
                     .Add({})),
      sa_deleted_(prometheus::BuildCounter()
                      .Name("ike_sa_deleted_total")
                      .Help("Established IKE SAs that were deleted.")
                      .Register(registry)
                      .Add({})),
      sas_gauge_(prometheus::BuildGauge()
                     .Name("ike_sas")
                     .Help("IKE SAs this replica holds, half-open ones included.")
                     .Register(registry)
                     .Add({})),
      half_open_gauge_(prometheus::BuildGauge()
                           .Name("ike_sas_half_open")
                           .Help("IKE SAs not yet authenticated.")
                           .Register(registry)
                           .Add({})),
      mobike_switch_seconds_(
          prometheus::BuildHistogram()
              .Name("ike_mobike_switch_seconds")
              .Help("From an authenticated UPDATE_SA_ADDRESSES to its CHILD SAs moving "
                    "(the forwarders told), return-routability round trip included.")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001,
                                                               0.0025, 0.005, 0.01, 0.025, 0.05,
                                                               0.1, 0.25, 0.5, 1, 2.5})) {
  for (size_t i = 0; i < std::max<size_t>(options_.workers, 1); ++i) {
    auto worker = std::make_unique<Worker>();
    Worker* raw = worker.get();
    worker->thread = std::thread([this, raw, i] {
      log::SetThreadName(absl::StrCat("ike-worker-", i));
      RunWorker(raw);
    });
    workers_.push_back(std::move(worker));
  }
}

IkeEngine::~IkeEngine() { Stop(); }

void IkeEngine::Stop() {
  for (auto& worker : workers_) {
    {
      absl::MutexLock lock(&worker->mu);
      worker->stopping = true;
    }
    if (worker->thread.joinable()) worker->thread.join();
  }
}

void IkeEngine::Submit(size_t forwarder, v1::IkeDatagram datagram) {
  Worker& worker =
      *workers_[absl::HashOf(datagram.initiator_spi()) % workers_.size()];
  const size_t size = datagram.payload().size();
  if (size > options_.max_ike_sa_init_size) {
    absl::optional<codec::Header> header = codec::PeekHeader(AsBytes(datagram.payload()));
    if (header && header->exchange_type == ExchangeType::kIkeSaInit && !header->response) {
      DropIkeSaInit("init_too_large");
      return;
    }
  }
  absl::MutexLock lock(&worker.mu);
  if (worker.queue.size() >= options_.queue_limit ||
      worker.queued_bytes + size > options_.queue_byte_limit) {
    dropped_family_.Add({{"reason", "queue_full"}}).Increment();
    return;
  }
  worker.queued_bytes += size;
  // A response to one of the gateway's own requests (liveness, a MOBIKE
  // return-routability check) is cheap and may let traffic move: it goes
  // ahead of queued requests, which are a separate window (RFC 7296 §2.3),
  // after other queued responses.
  auto is_response = [](const Work& work) {
    constexpr size_t kFlagsOffset = 19;
    constexpr uint8_t kResponseFlag = 0x20;
    const std::string& p = work.datagram.payload();
    return p.size() > kFlagsOffset && (p[kFlagsOffset] & kResponseFlag) != 0;
  };
  Work work{forwarder, std::move(datagram)};
  auto position = is_response(work)
                      ? std::find_if_not(worker.queue.begin(), worker.queue.end(), is_response)
                      : worker.queue.end();
  worker.queue.insert(position, std::move(work));
}

void IkeEngine::RunWorker(Worker* worker) {
  while (true) {
    Work work;
    {
      absl::MutexLock lock(&worker->mu);
      auto ready = [worker]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(worker->mu) {
        return worker->stopping || !worker->queue.empty();
      };
      worker->mu.Await(absl::Condition(&ready));
      if (worker->stopping) return;
      work = std::move(worker->queue.front());
      worker->queue.pop_front();
      worker->queued_bytes -= work.datagram.payload().size();
    }
    Handle(work.forwarder, work.datagram);
  }
}

size_t IkeEngine::sa_count() const {
  absl::MutexLock lock(&mu_);
  return sas_.size();
}

size_t IkeEngine::half_open_count() const {
  absl::MutexLock lock(&mu_);
  return half_open_.size();
}

void IkeEngine::Handle(size_t forwarder, const v1::IkeDatagram& datagram) {
  const crypto::ByteSpan bytes = AsBytes(datagram.payload());
  codec::DecodeResult<codec::Message> decoded = codec::DecodeMessage(bytes);
  if (!decoded.ok()) {
    const codec::DecodeFailure& failure = decoded.failure();
    uint8_t major_version = 0;
    absl::optional<codec::Header> header = codec::PeekHeader(bytes, &major_version);
    // Only an IKE_SA_INIT request may be answered without integrity
    // protection, and only with version or critical-payload errors; an older
    // major version (IKEv1) is not ours to answer (RFC 7296 1.5, 2.5).
    const bool older_version =
        failure.error == codec::DecodeError::kBadVersion && major_version < codec::kMajorVersion;
    if (header && !header->response && header->exchange_type == ExchangeType::kIkeSaInit &&
        failure.notify != NotifyType::kInvalidSyntax && !older_version) {
      codec::Message reply = NotifyResponse(*header, failure.notify, failure.notify_data);
      v1::IkeDatagram out;
      *out.mutable_local() = datagram.local();
      *out.mutable_remote() = datagram.remote();
      out.set_initiator_spi(header->initiator_spi);
      out.set_responder_spi(header->responder_spi);
      const std::vector<uint8_t> encoded = codec::EncodeMessage(reply);
      out.set_payload(std::string(encoded.begin(), encoded.end()));
      out.set_udp_encapsulated(datagram.udp_encapsulated());
      send_(forwarder, out);
    }
    dropped_family_.Add({{"reason", "malformed"}}).Increment();
    log_.Debug("malformed IKE message", {{"error", failure.detail}});
    return;
  }
  const codec::Message& request = *decoded;
  if (request.header.response) {
    HandleResponse(forwarder, datagram, request);
    return;
  }
  if (request.header.exchange_type == ExchangeType::kIkeSaInit) {
    HandleIkeSaInit(forwarder, datagram, request);
  } else {
    HandleProtected(forwarder, datagram, request);
  }
}

void IkeEngine::HandleIkeSaInit(size_t forwarder, const v1::IkeDatagram& datagram,
                                const codec::Message& request) {
  if (request.header.responder_spi != 0) {
    dropped_family_.Add({{"reason", "init_with_responder_spi"}}).Increment();
    return;
  }
  const auto index_key =
      std::make_pair(request.header.initiator_spi, EndpointKey(datagram.remote()));
  const std::string& source = SourceKey(datagram.remote());
  std::shared_ptr<IkeSa> existing;
  size_t half_open = 0;
  bool all_full = false, source_full = false, reserved = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = half_open_.find(index_key);
    if (it != half_open_.end()) {
      auto sa = sas_.find(it->second);
      if (sa != sas_.end()) existing = sa->second;
    }
    half_open = half_open_.size();
    // A new SA's slots (in all, and for its source) are taken here, under
    // the same lock as the checks, so concurrent workers cannot overshoot
    // either limit; given back below unless the SA is created.
    if (existing == nullptr) {
      auto held = half_open_per_source_.find(source);
      all_full = half_open + half_open_reserved_ >= options_.half_open_limit;
      source_full = held != half_open_per_source_.end() &&
                    held->second >= options_.half_open_per_source_limit;
      reserved = !all_full && !source_full;
    }
    if (reserved) {
      ++half_open_per_source_[source];
      ++half_open_reserved_;
    }
  }
  bool slot_used = false;
  absl::Cleanup give_back_slots = [&] {
    if (!reserved || slot_used) return;
    absl::MutexLock lock(&mu_);
    --half_open_reserved_;
    ReleaseSourceSlotLocked(source);
  };
  if (existing != nullptr) {
    absl::MutexLock lock(&existing->mu);
    // A retransmit gets the same answer (§2.1); another request is dropped.
    // As bytes: payload() is a std::string of (signed) char.
    const crypto::ByteSpan payload = AsBytes(datagram.payload());
    if (std::equal(existing->init_request.begin(), existing->init_request.end(),
                   payload.begin(), payload.end())) {
      SendTo(*existing, existing->init_response);
    } else {
      dropped_family_.Add({{"reason", "init_spi_in_use"}}).Increment();
    }
    return;
  }
  if (all_full) {
    DropIkeSaInit("half_open_limit");
    return;
  }
  if (source_full) {
    DropIkeSaInit("source_half_open_limit");
    return;
  }
  absl::StatusOr<net::IpEndpoint> local = net::IpEndpoint::FromProto(datagram.local());
  absl::StatusOr<net::IpEndpoint> remote = net::IpEndpoint::FromProto(datagram.remote());
  if (!local.ok() || !remote.ok()) {
    dropped_family_.Add({{"reason", "bad_endpoint"}}).Increment();
    return;
  }
  IkeSaInitResult result = ike::HandleIkeSaInit(
      request, AsBytes(datagram.payload()), *local, *remote, policy_,
      half_open >= options_.cookie_threshold ? &cookies_ : nullptr,
      CertificateAuthorities());
  if (result.drop) {
    DropIkeSaInit(result.refusal);
    log_.Debug("IKE_SA_INIT dropped", {{"spi_i", Hex(request.header.initiator_spi)},
                                       {"remote", remote->ToString()},
                                       {"reason", result.error}});
    return;
  }
  const std::vector<uint8_t> encoded = codec::EncodeMessage(result.response);
  if (result.sa == nullptr) {
    v1::IkeDatagram out;
    *out.mutable_local() = datagram.local();
    *out.mutable_remote() = datagram.remote();
    out.set_initiator_spi(request.header.initiator_spi);
    out.set_payload(std::string(encoded.begin(), encoded.end()));
    out.set_udp_encapsulated(datagram.udp_encapsulated());
    send_(forwarder, out);
    // Per packet, an attacker picks the volume: a counter, a summary line
    // per interval, and the detail at debug level.
    init_refused_family_.Add({{"reason", result.refusal}}).Increment();
    refusal_summary_.Add(result.refusal);
    log_.Debug("IKE_SA_INIT refused", {{"spi_i", Hex(request.header.initiator_spi)},
                                       {"remote", remote->ToString()},
                                       {"reason", result.error}});
    return;
  }
  std::shared_ptr<IkeSa> sa(std::move(result.sa));
  sa->init_response.assign(encoded.begin(), encoded.end());
  sa->udp_encapsulated = datagram.udp_encapsulated();
  sa->forwarder = forwarder;
  sa->last_response_id = 0;
  sa->last_response = {sa->init_response};
  {
    absl::MutexLock lock(&mu_);
    sas_[sa->spi_r] = sa;
    half_open_[index_key] = sa->spi_r;
    half_open_by_spi_r_[sa->spi_r] = {index_key, source};
    --half_open_reserved_;  // counted in half_open_ now
    slot_used = true;
    sas_gauge_.Set(static_cast<double>(sas_.size()));
    half_open_gauge_.Set(static_cast<double>(half_open_.size()));
  }
  SendTo(*sa, sa->init_response);
  log_.Debug("IKE_SA_INIT answered",
            {{"spi_i", Hex(sa->spi_i)}, {"spi_r", Hex(sa->spi_r)},
             {"remote", remote->ToString()}, {"proposal", sa->transforms.ToString()},
             {"initiator_behind_nat", sa->initiator_behind_nat}});
}

bool IkeEngine::Unprotect(IkeSa& sa, const v1::IkeDatagram& datagram,
                          const codec::Message& request,
                          std::vector<codec::Payload>* inner, std::string* error) {
  const crypto::ByteSpan bytes = AsBytes(datagram.payload());
  const codec::Payload& last = request.payloads.back();
  if (const auto* sk = last.As<codec::SkPayload>()) {
    const crypto::ByteSpan prefix = bytes.subspan(0, bytes.size() - sk->encrypted.size());
    absl::StatusOr<crypto::Bytes> plain = sa.from_initiator->Open(prefix, sk->encrypted);
    if (!plain.ok()) {
      *error = std::string(plain.status().message());
      return false;
    }
    codec::DecodeResult<std::vector<codec::Payload>> chain =
        codec::DecodePayloadChain(sk->inner_first_payload, *plain);
    if (!chain.ok()) {
      *error = chain.failure().detail;
      return false;
    }
    *inner = std::move(*chain);
    return true;
  }
  const auto* skf = last.As<codec::SkfPayload>();
  FragmentReassembly& reassembly =
      request.header.response ? sa.response_reassembly : sa.reassembly;
  if (skf == nullptr || !sa.peer_supports_fragmentation ||
      !reassembly.ValidNumbering(skf->fragment_number, skf->total_fragments)) {
    *error = "no usable SK or SKF payload";
    return false;
  }
  const crypto::ByteSpan prefix = bytes.subspan(0, bytes.size() - skf->encrypted.size());
  absl::StatusOr<crypto::Bytes> plain = sa.from_initiator->Open(prefix, skf->encrypted);
  if (!plain.ok()) {
    *error = std::string(plain.status().message());
    return false;
  }
  switch (reassembly.Add(request.header.message_id, skf->fragment_number,
                            skf->total_fragments, skf->inner_first_payload, *std::move(plain))) {
    case FragmentReassembly::Outcome::kStored:
    case FragmentReassembly::Outcome::kIgnored:
      return false;
    case FragmentReassembly::Outcome::kTooLarge:
      *error = "fragmented message too large";
      return false;
    case FragmentReassembly::Outcome::kComplete:
      break;
  }
  codec::PayloadType first = codec::PayloadType::kNone;
  const crypto::Bytes whole = reassembly.Take(&first);
  codec::DecodeResult<std::vector<codec::Payload>> chain =
      codec::DecodePayloadChain(first, whole);
  if (!chain.ok()) {
    *error = chain.failure().detail;
    return false;
  }
  *inner = std::move(*chain);
  return true;
}

absl::StatusOr<std::vector<crypto::Bytes>> IkeEngine::Protect(
    const IkeSa& sa, const codec::Header& header,
    const std::vector<codec::Payload>& payloads) const {
  const std::vector<uint8_t> inner = codec::EncodePayloadChain(payloads);
  if (inner.empty() && !payloads.empty()) {
    return absl::InternalError("response payloads do not encode");
  }
  const codec::PayloadType first =
      payloads.empty() ? codec::PayloadType::kNone : payloads.front().type();
  const SkProtector& protector = *sa.to_initiator;
  constexpr size_t kHeaderAndSk = 28 + 4;
  const size_t overhead = (sa.remote.is_v6() ? 40 : 20) + 8 + (sa.udp_encapsulated ? 4 : 0);
  const size_t max_message =
      options_.fragment_size > overhead + 200 ? options_.fragment_size - overhead : 1000;

  auto sizes_for = [&](size_t plaintext) {
    codec::EncryptedSizes sizes;
    sizes.iv_size = protector.iv_size();
    sizes.icv_size = protector.icv_size();
    sizes.ciphertext_size = protector.SealedSize(plaintext) - sizes.iv_size - sizes.icv_size;
    return sizes;
  };
  auto seal = [&](const std::vector<uint8_t>& prefix,
                  crypto::ByteSpan plaintext) -> absl::StatusOr<crypto::Bytes> {
    if (prefix.empty()) return absl::InternalError("message too large to encode");
    absl::StatusOr<crypto::Bytes> body = protector.Seal(prefix, plaintext);
    if (!body.ok()) return body.status();
    crypto::Bytes message(prefix.begin(), prefix.end());
    message.insert(message.end(), body->begin(), body->end());
    return message;
  };

  const bool fragment = sa.peer_supports_fragmentation &&
                        header.exchange_type != ExchangeType::kIkeSaInit &&
                        kHeaderAndSk + protector.SealedSize(inner.size()) > max_message;
  if (!fragment) {
    absl::StatusOr<crypto::Bytes> message =
        seal(codec::EncodeSkPrefix(header, first, sizes_for(inner.size())), inner);
    if (!message.ok()) return message.status();
    return std::vector<crypto::Bytes>{std::move(*message)};
  }
  // The largest chunk whose fragment fits (IKE header, SKF header of 8).
  size_t chunk = max_message;
  while (chunk > 0 && 28 + 8 + protector.SealedSize(chunk) > max_message) --chunk;
  if (chunk == 0) return absl::InternalError("fragment size too small");
  const size_t total = (inner.size() + chunk - 1) / chunk;
  std::vector<crypto::Bytes> fragments;
  for (size_t i = 0; i < total; ++i) {
    const size_t offset = i * chunk;
    const size_t length = std::min(chunk, inner.size() - offset);
    absl::StatusOr<crypto::Bytes> message = seal(
        codec::EncodeSkfPrefix(header, i == 0 ? first : codec::PayloadType::kNone,
                               static_cast<uint16_t>(i + 1), static_cast<uint16_t>(total),
                               sizes_for(length)),
        crypto::ByteSpan(inner.data() + offset, length));
    if (!message.ok()) return message.status();
    fragments.push_back(std::move(*message));
  }
  return fragments;
}

void IkeEngine::SendTo(const IkeSa& sa, const crypto::Bytes& message,
                       const RequestPath* reply_path) {
  v1::IkeDatagram out;
  *out.mutable_local() = (reply_path ? reply_path->local : sa.local).ToProto();
  *out.mutable_remote() = (reply_path ? reply_path->remote : sa.remote).ToProto();
  out.set_initiator_spi(sa.spi_i);
  out.set_responder_spi(sa.spi_r);
  out.set_payload(std::string(message.begin(), message.end()));
  out.set_udp_encapsulated(reply_path ? reply_path->udp_encapsulated : sa.udp_encapsulated);
  send_(reply_path ? reply_path->forwarder : sa.forwarder, out);
}

namespace {

// Ends in SK or SKF: a message that can authenticate under an IKE SA.
bool Protected(const codec::Message& message) {
  return !message.payloads.empty() &&
         (message.payloads.back().As<codec::SkPayload>() != nullptr ||
          message.payloads.back().As<codec::SkfPayload>() != nullptr);
}

// The protected datagram passes the SA's integrity check (its SK payload,
// or this SKF fragment, RFC 7383 §2.5), without decrypting anything else.
bool Authentic(const IkeSa& sa, const v1::IkeDatagram& datagram,
               const codec::Message& message) {
  if (!Protected(message)) return false;
  const auto* sk = message.payloads.back().As<codec::SkPayload>();
  const codec::Bytes& encrypted =
      sk != nullptr ? sk->encrypted : message.payloads.back().As<codec::SkfPayload>()->encrypted;
  const crypto::ByteSpan bytes = AsBytes(datagram.payload());
  return sa.from_initiator->Open(bytes.subspan(0, bytes.size() - encrypted.size()), encrypted)
      .ok();
}

}  // namespace

void IkeEngine::HandleProtected(size_t forwarder, const v1::IkeDatagram& datagram,
                                const codec::Message& request) {
  std::shared_ptr<IkeSa> sa = HeldOrTakenOver(forwarder, datagram, request);
  if (sa == nullptr) {
    dropped_family_.Add({{"reason", "unknown_spi"}}).Increment();
    return;
  }
  absl::MutexLock lock(&sa->mu);
  if (sa->phase == IkeSa::Phase::kDeleted) return;
  if (request.payloads.empty() ||
      (request.payloads.back().As<codec::SkPayload>() == nullptr &&
       request.payloads.back().As<codec::SkfPayload>() == nullptr)) {
    dropped_family_.Add({{"reason", "unprotected"}}).Increment();
    return;
  }
  RequestPath path;
  path.forwarder = forwarder;
  path.udp_encapsulated = datagram.udp_encapsulated();
  if (auto remote = net::IpEndpoint::FromProto(datagram.remote()); remote.ok()) {
    path.remote = *remote;
  }
  if (auto local = net::IpEndpoint::FromProto(datagram.local()); local.ok()) {
    path.local = *local;
  }
  const uint32_t message_id = request.header.message_id;
  if (message_id + 1 == sa->next_request_id && message_id == sa->last_response_id) {
    // A retransmitted request: the same response again (§2.1). Of a
    // fragmented request only the first fragment triggers it (RFC 7383
    // §2.6.1). The copy must pass the integrity check, so a forged one from
    // a spoofed address cannot bounce the (larger) response there.
    const auto* skf = request.payloads.back().As<codec::SkfPayload>();
    if (skf != nullptr && skf->fragment_number != 1) return;
    if (!Authentic(*sa, datagram, request)) {
      dropped_family_.Add({{"reason", "integrity_or_syntax"}}).Increment();
      return;
    }
    for (const crypto::Bytes& message : sa->last_response) SendTo(*sa, message, &path);
    return;
  }
  const bool moved_on = sa->restored && message_id > sa->next_request_id;
  if (message_id != sa->next_request_id && !sa->message_id_unknown && !moved_on) {
    dropped_family_.Add({{"reason", "message_id"}}).Increment();
    return;
  }
  std::vector<codec::Payload> inner;
  std::string error;
  if (!Unprotect(*sa, datagram, request, &inner, &error)) {
    if (!error.empty()) {
      dropped_family_.Add({{"reason", "integrity_or_syntax"}}).Increment();
      log_.Info("protected message rejected",
                {{"spi_r", Hex(sa->spi_r)}, {"error", error}});
    }
    return;
  }
  if (sa->message_id_unknown) {
    // Restored SA: an authenticated request tells where the client is.
    if (message_id + 1 < sa->next_request_id) return;  // older than we knew
    sa->message_id_unknown = false;
  }
  // Authenticated: behind a NAT the client is where this came from (§2.23).
  // With MOBIKE only UPDATE_SA_ADDRESSES moves the SA (RFC 4555 §3.8).
  if (sa->initiator_behind_nat && !sa->mobike && !path.remote.is_unspecified()) {
    const bool moved = sa->remote != path.remote || sa->local != path.local;
    sa->remote = path.remote;
    sa->local = path.local;
    sa->udp_encapsulated = path.udp_encapsulated;
    sa->forwarder = forwarder;
    if (moved && sa->phase == IkeSa::Phase::kEstablished) {
      CommitMove(*sa, v1::EndpointUpdate::NAT_REBINDING);
    }
  }
  sa->last_seen = absl::Now();
  if (mobility_ != nullptr && sa->phase == IkeSa::Phase::kEstablished) {
    mobility_->ReportLiveness(sa->spi_i, sa->spi_r);
  }

  ExchangeResult result;
  switch (request.header.exchange_type) {
    case ExchangeType::kIkeAuth:
      result = HandleIkeAuth(*sa, inner, policy_, services_);
      break;
    case ExchangeType::kInformational:
      result = HandleInformational(*sa, inner, path);
      break;
    case ExchangeType::kCreateChildSa:
      result = HandleCreateChildSa(*sa, inner, policy_);
      break;
    default:
      result.payloads.push_back(codec::MakeNotify(NotifyType::kInvalidSyntax));
      result.outcome = ExchangeOutcome::kDone;
  }

  codec::Header header = request.header;
  header.initiator = false;
  header.response = true;
  absl::StatusOr<std::vector<crypto::Bytes>> response =
      Protect(*sa, header, result.payloads);
  if (!response.ok()) {
    log_.Error("cannot protect response", {{"error", response.status().message()}});
    return;
  }
  sa->last_response = std::move(*response);
  sa->last_response_id = message_id;
  sa->next_request_id = message_id + 1;
  for (const crypto::Bytes& message : sa->last_response) SendTo(*sa, message, &path);
  Finish(sa, result);
}

void IkeEngine::Finish(std::shared_ptr<IkeSa> sa, ExchangeResult& result) {
  switch (result.outcome) {
    case ExchangeOutcome::kContinue:
      return;
    case ExchangeOutcome::kEstablished: {
      {
        absl::MutexLock lock(&mu_);
        ForgetHalfOpenLocked(sa->spi_r);
        half_open_gauge_.Set(static_cast<double>(half_open_.size()));
      }
      for (const ChildSaState& child : sa->children) AnnounceChild(*sa, child);
      absl::Status recorded = recorder_->RecordEstablished(*sa);
      std::string vips;
      for (const std::string& ip : sa->virtual_ips) {
        auto address = net::IpEndpoint::FromBytes(AsBytes(ip), 0);
        if (address.ok()) absl::StrAppend(&vips, vips.empty() ? "" : ",", address->AddressString());
      }
      sa_established_.Increment();
      log_.Info("IKE SA established",
                {{"spi_i", Hex(sa->spi_i)},
                 {"spi_r", Hex(sa->spi_r)},
                 {"remote", sa->remote.ToString()},
                 {"eap_identity", sa->eap_identity},
                 {"certificate", sa->certificate_subject},
                 {"virtual_ips", vips},
                 {"child_sas", sa->children.size()},
                 {"note", result.note},
                 {"recorded", recorded.ok()}});
      if (!recorded.ok()) {
        log_.Error("cannot record SA", {{"error", recorded.message()}});
      }
      return;
    }
    case ExchangeOutcome::kDone:
      if (result.addresses_updated) sa->moved_here = sa->mobike_update_at = absl::Now();
      if (result.addresses_updated && sa->pending_request.has_value()) {
        // One request at a time (window size 1): no check this time.
        log_.Info("MOBIKE address update without return routability check",
                  {{"spi_r", Hex(sa->spi_r)}, {"remote", sa->remote.ToString()}});
        CommitMove(*sa, v1::EndpointUpdate::MOBIKE);
      } else if (result.addresses_updated) {
        // RFC 4555 §3.5: check that the client is reachable at the new
        // address (COOKIE2 echoed) before the CHILD SAs move there.
        crypto::Bytes cookie(16);
        crypto::GetProvider().RandomBytes(absl::MakeSpan(cookie));
        sa->return_routability_cookie = cookie;
        SendRequest(*sa, {codec::MakeNotify(NotifyType::kCookie2, cookie)});
        log_.Info("MOBIKE address update", {{"spi_r", Hex(sa->spi_r)},
                                            {"remote", sa->remote.ToString()},
                                            {"local", sa->local.ToString()}});
      }
      for (uint32_t spi : result.added_children) {
        for (const ChildSaState& child : sa->children) {
          if (child.inbound_spi != spi) continue;
          AnnounceChild(*sa, child);
          absl::Status recorded = recorder_->RecordChild(*sa, child);
          log_.Info(result.note, {{"spi_r", Hex(sa->spi_r)},
                                  {"child_in", absl::StrCat(absl::Hex(spi, absl::kZeroPad8))},
                                  {"proposal", child.transforms.ToString()},
                                  {"recorded", recorded.ok()}});
        }
      }
      if (result.rekeyed != nullptr) {
        std::shared_ptr<IkeSa> rekeyed(std::move(result.rekeyed));
        {
          absl::MutexLock lock(&mu_);
          sas_[rekeyed->spi_r] = rekeyed;
          sas_gauge_.Set(static_cast<double>(sas_.size()));
        }
        absl::Status recorded =
            recorder_->RecordEstablished(*rekeyed, SaRecorder::Children::kRekeyed);
        log_.Info("IKE SA rekeyed", {{"old_spi_r", Hex(sa->spi_r)},
                                     {"spi_i", Hex(rekeyed->spi_i)},
                                     {"spi_r", Hex(rekeyed->spi_r)},
                                     {"proposal", rekeyed->transforms.ToString()},
                                     {"recorded", recorded.ok()}});
      }
      for (const ChildSaState& child : result.removed_children) {
        if (absl::Status s = recorder_->RemoveChild(child); !s.ok()) {
          log_.Error("cannot remove CHILD SA record", {{"error", s.message()}});
        }
      }
      return;
    case ExchangeOutcome::kFailed:
      sa_failed_.Increment();
      log_.Info("IKE SA failed", {{"spi_r", Hex(sa->spi_r)}, {"reason", result.note}});
      ReleaseResources(*sa);
      Forget(*sa);
      return;
    case ExchangeOutcome::kDeleteSa:
      if (sa->phase == IkeSa::Phase::kEstablished) {
        DeleteEstablished(*sa, result.note);
        return;
      }
      sa_failed_.Increment();
      log_.Info("IKE SA deleted", {{"spi_r", Hex(sa->spi_r)}, {"reason", result.note}});
      ReleaseResources(*sa);
      Forget(*sa);
      return;
  }
}

void IkeEngine::ReleaseResources(IkeSa& sa) {
  // After the SA's record is gone (queued before), off this worker.
  std::vector<store::Op> releases;
  for (size_t i = 0; i < sa.virtual_ips.size(); ++i) {
    const std::string& ip = sa.virtual_ips[i];
    AddressPool* pool = ip.size() == 16 ? services_.pool_v6 : services_.pool_v4;
    if (pool == nullptr) continue;
    if (i < sa.virtual_ip_leases.size()) {
      releases.push_back(pool->ReleaseOp({ip, sa.virtual_ip_leases[i]}));
    } else {
      recorder_->Defer([recorder = recorder_, pool, ip, owner = sa.record_key()] {
        // Not the address of an SA another replica holds now.
        if (!recorder->IsLost(owner)) pool->Release(ip, owner).IgnoreError();
      });
    }
  }
  if (!releases.empty()) {
    recorder_->ReleaseLeases(std::move(releases), sa.record_key()).IgnoreError();
  }
  sa.virtual_ips.clear();
  sa.virtual_ip_leases.clear();
  sa.phase = IkeSa::Phase::kDeleted;
}

void IkeEngine::Forget(const IkeSa& sa) {
  absl::MutexLock lock(&mu_);
  sas_.erase(sa.spi_r);
  ForgetHalfOpenLocked(sa.spi_r);
  sas_gauge_.Set(static_cast<double>(sas_.size()));
  half_open_gauge_.Set(static_cast<double>(half_open_.size()));
}

void IkeEngine::ForgetHalfOpenLocked(uint64_t spi_r) {
  auto it = half_open_by_spi_r_.find(spi_r);
  if (it == half_open_by_spi_r_.end()) return;
  auto entry = half_open_.find(it->second.key);
  if (entry != half_open_.end() && entry->second == spi_r) half_open_.erase(entry);
  ReleaseSourceSlotLocked(it->second.source);
  half_open_by_spi_r_.erase(it);
}

void IkeEngine::ReleaseSourceSlotLocked(const std::string& source) {
  auto it = half_open_per_source_.find(source);
  if (it != half_open_per_source_.end() && --it->second == 0) half_open_per_source_.erase(it);
}

void IkeEngine::DropIkeSaInit(absl::string_view reason) {
  dropped_family_.Add({{"reason", std::string(reason)}}).Increment();
  refusal_summary_.Add(reason);
}

crypto::Bytes IkeEngine::CertificateAuthorities() {
  absl::MutexLock lock(&authorities_mu_);
  if (absl::Now() - authorities_fetched_ < absl::Minutes(5)) return authorities_;
  absl::StatusOr<v1::GatewayCertificateReply> reply =
      services_.authenticator->GatewayCertificate();
  if (!reply.ok()) {
    // Not again for 30 s: an IKE_SA_INIT must not wait on a dead auth-service.
    authorities_fetched_ = absl::Now() - absl::Minutes(5) + absl::Seconds(30);
    return authorities_;
  }
  authorities_.clear();
  for (const std::string& hash : reply->certificate_authorities()) {
    if (hash.size() == 20) authorities_.insert(authorities_.end(), hash.begin(), hash.end());
  }
  authorities_fetched_ = absl::Now();
  return authorities_;
}

void IkeEngine::AnnounceChild(const IkeSa& sa, const ChildSaState& child) {
  if (!announce_child_) return;
  absl::StatusOr<v1::ChildSa> record = recorder_->ChildRecord(sa, child);
  if (record.ok()) announce_child_(sa.forwarder, *record);
}

void IkeEngine::CommitMove(IkeSa& sa, v1::EndpointUpdate::Cause cause) {
  sa.moved_here = absl::Now();
  if (move_path_) {
    v1::SaPathUpdate path;
    path.set_initiator_spi(sa.spi_i);
    path.set_responder_spi(sa.spi_r);
    *path.mutable_local() = sa.local.ToProto();
    *path.mutable_remote() = sa.remote.ToProto();
    path.set_remote_behind_nat(sa.initiator_behind_nat);
    move_path_(path);
  }
  if (cause == v1::EndpointUpdate::MOBIKE && sa.mobike_update_at != absl::InfinitePast()) {
    mobike_switch_seconds_.Observe(absl::ToDoubleSeconds(absl::Now() - sa.mobike_update_at));
    sa.mobike_update_at = absl::InfinitePast();
  }
  // The durable commit goes after this SA's queued record writes, so none
  // of them (built before the move) lands after it.
  recorder_->Flush();
  // This replica authorized the move (an authenticated request, after the
  // return routability check for MOBIKE): a new path generation, tagged, so
  // mobility-service's copy of it is checked by every reader.
  sa.path_generation = store::NextPathGeneration(sa.path_generation);
  if (mobility_ != nullptr) {
    v1::EndpointUpdate update;
    update.set_initiator_spi(sa.spi_i);
    update.set_responder_spi(sa.spi_r);
    *update.mutable_local() = sa.local.ToProto();
    *update.mutable_remote() = sa.remote.ToProto();
    update.set_cause(cause);
    update.set_remote_behind_nat(sa.initiator_behind_nat);
    absl::StatusOr<v1::PathAuth> auth = recorder_->TagPath(sa, sa.path_generation);
    if (!auth.ok()) {
      log_.Error("cannot tag the move", {{"spi_r", Hex(sa.spi_r)}, {"error", auth.status().message()}});
      return;
    }
    *update.mutable_path_auth() = *std::move(auth);
    absl::StatusOr<int64_t> version = mobility_->UpdateEndpoint(update);
    if (version.ok()) return;
    log_.Warning("mobility-service did not take the move; writing the records directly",
                 {{"spi_r", Hex(sa.spi_r)}, {"error", version.status().message()}});
  }
  if (absl::Status s = recorder_->RecordEstablished(sa, SaRecorder::Children::kMoved); !s.ok()) {
    log_.Error("cannot record the move", {{"spi_r", Hex(sa.spi_r)}, {"error", s.message()}});
  }
}

void IkeEngine::ResetStoredRecords(const std::vector<std::pair<uint64_t, uint64_t>>& spis,
                                   int64_t revision) {
  {
    absl::MutexLock lock(&stored_mu_);
    stored_.clear();
    stored_.insert(spis.begin(), spis.end());
  }
  std::vector<std::pair<uint64_t, uint64_t>> held;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [spi_r, sa] : sas_) held.emplace_back(sa->spi_i, spi_r);
  }
  for (const auto& [spi_i, spi_r] : held) {
    {
      absl::MutexLock lock(&stored_mu_);
      if (stored_.contains({spi_i, spi_r})) continue;
    }
    // Gone only if this replica's last write of it was in the listing's
    // past: a record not written yet (queued behind the workers), or
    // written after the listing was read, is not gone.
    const int64_t written = recorder_->KnownRevision(store::IkeSaKey(spi_i, spi_r));
    if (written > 0 && written <= revision) ApplyRecord(spi_i, spi_r, nullptr, 0);
  }
}

void IkeEngine::ApplyRecord(uint64_t spi_i, uint64_t spi_r, const v1::IkeSa* record,
                            int64_t version) {
  {
    absl::MutexLock lock(&stored_mu_);
    if (record == nullptr) {
      stored_.erase({spi_i, spi_r});
    } else {
      stored_.insert({spi_i, spi_r});
    }
  }
  if (record == nullptr) recorder_->ForgetLost(store::IkeSaKey(spi_i, spi_r));
  std::shared_ptr<IkeSa> sa = Held(spi_i, spi_r);
  if (sa == nullptr) return;
  absl::MutexLock lock(&sa->mu);
  if (sa->phase != IkeSa::Phase::kEstablished) return;
  if (record != nullptr && record->meta().owner_replica() != recorder_->replica()) {
    // An event from before this replica's own write (a late watch event of
    // the previous owner's record) says nothing about who owns it now.
    if (version <= recorder_->KnownVersion(sa->record_key())) return;
    // Another replica took it over (the forwarders sent its client there):
    // that one answers now. Nothing is released; the SA lives on there, and
    // writes of ours still queued about it are dropped.
    log_.Info("IKE SA taken over by another replica; forgetting it",
              {{"spi_r", Hex(spi_r)}, {"replica", record->meta().owner_replica()}});
    recorder_->NoteLost(sa->record_key());
    sa->phase = IkeSa::Phase::kDeleted;
    Forget(*sa);
    return;
  }
  if (record == nullptr) {
    // Deleted elsewhere (the outage window ended): forget it quietly.
    log_.Info("IKE SA removed from the store; forgetting it", {{"spi_r", Hex(spi_r)}});
    sa->virtual_ips.clear();  // released with the record
    sa->virtual_ip_leases.clear();
    sa->phase = IkeSa::Phase::kDeleted;
    Forget(*sa);
    return;
  }
  sa->dormant = record->state() == v1::IKE_SA_STATE_DORMANT;
  const absl::Time updated = absl::FromUnixNanos(
      google::protobuf::util::TimeUtil::TimestampToNanoseconds(record->meta().updated()));
  if (updated <= sa->moved_here) return;  // written before our own move
  auto local = net::IpEndpoint::FromProto(record->local());
  auto remote = net::IpEndpoint::FromProto(record->remote());
  if (local.ok() && remote.ok() && (*remote != sa->remote || *local != sa->local)) {
    // Only a path a key holder tagged, and not back to an older one.
    if (recorder_->CheckPath(*record, sa->path_generation) != store::PathVerdict::kValid) return;
    sa->local = *local;
    sa->remote = *remote;
    sa->initiator_behind_nat = record->remote_behind_nat();
    sa->path_generation = record->path_auth().generation();
    log_.Info("IKE SA follows its record to a new address",
              {{"spi_r", Hex(spi_r)}, {"remote", sa->remote.ToString()}});
  }
}

std::shared_ptr<IkeSa> IkeEngine::Held(uint64_t spi_i, uint64_t spi_r) const {
  absl::MutexLock lock(&mu_);
  auto it = sas_.find(spi_r);
  return it != sas_.end() && it->second->spi_i == spi_i ? it->second : nullptr;
}

std::shared_ptr<IkeSa> IkeEngine::HeldOrTakenOver(size_t forwarder,
                                                  const v1::IkeDatagram& datagram,
                                                  const codec::Message& message) {
  const codec::Header& header = message.header;
  std::shared_ptr<IkeSa> sa = Held(header.initiator_spi, header.responder_spi);
  if (sa != nullptr || header.responder_spi == 0 || !Protected(message)) return sa;
  // Only a message that passes the SA's integrity check claims it.
  return TakeOver(forwarder, header.initiator_spi, header.responder_spi,
                  [&](const IkeSa& rebuilt) { return Authentic(rebuilt, datagram, message); });
}

std::shared_ptr<IkeSa> IkeEngine::TakeOver(size_t forwarder, uint64_t spi_i, uint64_t spi_r,
                                           const std::function<bool(const IkeSa&)>& accept) {
  {
    // Made-up SPIs end here, without a store read.
    absl::MutexLock lock(&stored_mu_);
    if (!stored_.contains({spi_i, spi_r})) {
      takeovers_family_.Add({{"result", "not_found"}}).Increment();
      return nullptr;
    }
  }
  {
    absl::MutexLock lock(&takeover_mu_);
    const absl::Time now = absl::Now();
    takeover_tokens_ = std::min(
        kTakeOverLookupsPerSecond,
        takeover_tokens_ + absl::ToDoubleSeconds(now - takeover_refilled_) * kTakeOverLookupsPerSecond);
    takeover_refilled_ = now;
    if (takeover_tokens_ < 1) {
      takeovers_family_.Add({{"result", "rate_limited"}}).Increment();
      return nullptr;
    }
    takeover_tokens_ -= 1;
  }
  std::string previous_owner;
  absl::StatusOr<std::unique_ptr<IkeSa>> taken =
      recorder_->TakeOver(spi_i, spi_r, accept, &previous_owner);
  if (!taken.ok()) {
    const bool missing = absl::IsNotFound(taken.status());
    const bool refused = absl::IsPermissionDenied(taken.status());
    takeovers_family_.Add({{"result", missing ? "not_found" : refused ? "unauthenticated" : "failed"}})
        .Increment();
    if (!missing && !refused) {
      log_.Warning("cannot take over an IKE SA",
                   {{"spi_r", Hex(spi_r)}, {"error", taken.status().message()}});
    }
    return nullptr;
  }
  (*taken)->forwarder = forwarder;
  std::shared_ptr<IkeSa> sa(std::move(*taken));
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = sas_.emplace(sa->spi_r, sa);
    if (!inserted) return it->second;  // restored meanwhile
    sas_gauge_.Set(static_cast<double>(sas_.size()));
  }
  takeovers_family_.Add({{"result", "taken"}}).Increment();
  log_.Info("IKE SA taken over", {{"spi_i", Hex(sa->spi_i)},
                                  {"spi_r", Hex(sa->spi_r)},
                                  {"from_replica", previous_owner},
                                  {"child_sas", sa->children.size()}});
  return sa;
}

void IkeEngine::Restore(std::vector<std::unique_ptr<IkeSa>> sas) {
  absl::MutexLock lock(&mu_);
  for (std::unique_ptr<IkeSa>& sa : sas) {
    const uint64_t spi_r = sa->spi_r;
    sas_[spi_r] = std::shared_ptr<IkeSa>(std::move(sa));
  }
  sas_gauge_.Set(static_cast<double>(sas_.size()));
}

void IkeEngine::SendRequest(IkeSa& sa, std::vector<codec::Payload> payloads) {
  codec::Header header;
  header.initiator_spi = sa.spi_i;
  header.responder_spi = sa.spi_r;
  header.exchange_type = ExchangeType::kInformational;
  header.initiator = false;  // the client started this IKE SA
  header.response = false;
  header.message_id = sa.next_own_request_id++;
  absl::StatusOr<std::vector<crypto::Bytes>> datagrams = Protect(sa, header, payloads);
  if (!datagrams.ok()) {
    log_.Error("cannot protect request", {{"error", datagrams.status().message()}});
    return;
  }
  IkeSa::PendingRequest pending;
  pending.message_id = header.message_id;
  pending.datagrams = std::move(*datagrams);
  pending.sent = absl::Now();
  pending.attempts = 1;
  for (const crypto::Bytes& message : pending.datagrams) SendTo(sa, message);
  sa.pending_request = std::move(pending);
  if (sa.phase == IkeSa::Phase::kEstablished) {
    // A replica that takes over must continue from the next message ID.
    if (absl::Status s = recorder_->RecordIke(sa); !s.ok()) {
      log_.Warning("cannot record message ID", {{"error", s.message()}});
    }
  }
}

void IkeEngine::HandleResponse(size_t forwarder, const v1::IkeDatagram& datagram,
                               const codec::Message& response) {
  // A response can claim an SA too: the answer to the previous owner's
  // request, recorded with the SA.
  std::shared_ptr<IkeSa> sa = HeldOrTakenOver(forwarder, datagram, response);
  if (sa == nullptr) {
    dropped_family_.Add({{"reason", "unexpected_response"}}).Increment();
    return;
  }
  absl::MutexLock lock(&sa->mu);
  if (!sa->pending_request.has_value() ||
      sa->pending_request->message_id != response.header.message_id ||
      response.payloads.empty()) {
    dropped_family_.Add({{"reason", "unexpected_response"}}).Increment();
    return;
  }
  std::vector<codec::Payload> inner;
  std::string error;
  if (!Unprotect(*sa, datagram, response, &inner, &error)) {
    if (!error.empty()) dropped_family_.Add({{"reason", "integrity_or_syntax"}}).Increment();
    return;
  }
  (void)forwarder;
  sa->pending_request.reset();
  sa->last_seen = absl::Now();
  if (mobility_ != nullptr) mobility_->ReportLiveness(sa->spi_i, sa->spi_r);
  if (!sa->return_routability_cookie.empty()) {
    bool echoed = false;
    for (const codec::Payload& payload : inner) {
      const auto* notify = payload.As<codec::NotifyPayload>();
      echoed |= notify != nullptr && notify->type == NotifyType::kCookie2 &&
                crypto::ConstantTimeEquals(notify->data, sa->return_routability_cookie);
    }
    if (echoed) {
      sa->return_routability_cookie.clear();
      // The new path works: the CHILD SAs follow (the forwarder watches).
      log_.Info("return routability confirmed", {{"spi_r", Hex(sa->spi_r)},
                                                 {"remote", sa->remote.ToString()}});
      CommitMove(*sa, v1::EndpointUpdate::MOBIKE);
    }
  }
}

void IkeEngine::DeleteEstablished(IkeSa& sa, absl::string_view reason) {
  sa_deleted_.Increment();
  if (absl::Status s = recorder_->RemoveSa(sa); !s.ok()) {
    log_.Error("cannot remove SA record", {{"error", s.message()}});
  }
  log_.Info("IKE SA deleted", {{"spi_r", Hex(sa.spi_r)}, {"reason", reason}});
  ReleaseResources(sa);
  Forget(sa);
}

absl::Status IkeEngine::Terminate(uint64_t spi_i, uint64_t spi_r) {
  std::shared_ptr<IkeSa> sa = Held(spi_i, spi_r);
  // Another replica's (gone, or not): this one takes it over to end it.
  if (sa == nullptr) sa = TakeOver(0, spi_i, spi_r, [](const IkeSa&) { return true; });
  if (sa == nullptr) return absl::NotFoundError("no such established IKE SA");
  absl::MutexLock lock(&sa->mu);
  if (sa->phase != IkeSa::Phase::kEstablished) {
    return absl::FailedPreconditionError("the IKE SA is not established");
  }
  codec::DeletePayload del;
  del.protocol_id = codec::ProtocolId::kIke;
  // The records go first, and durably: the client's answer is routed to
  // whichever replica the forwarders pick, which must find no SA left to
  // take over (it would take the SA back, and this delete would then be
  // dropped as another replica's). Deleted, the SA's request is not recorded.
  DeleteEstablished(*sa, "terminated by the operator");
  recorder_->Flush();
  SendRequest(*sa, {codec::Payload{std::move(del)}});
  return absl::OkStatus();
}

void IkeEngine::CheckLiveness() {
  std::vector<std::shared_ptr<IkeSa>> established;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [spi, sa] : sas_) established.push_back(sa);
  }
  const absl::Time now = absl::Now();
  for (const std::shared_ptr<IkeSa>& sa : established) {
    absl::MutexLock lock(&sa->mu);
    if (sa->phase != IkeSa::Phase::kEstablished) continue;
    if (options_.dead_peer_timeout > absl::ZeroDuration() &&
        now - sa->last_seen > options_.dead_peer_timeout) {
      DeleteEstablished(*sa, "the client stayed silent past dead_peer_timeout");
      continue;
    }
    if (sa->pending_request.has_value()) {
      // Retransmit with exponential back-off, capped at the interval.
      IkeSa::PendingRequest& pending = *sa->pending_request;
      // A silent client may be in an outage: back off to 5 minutes rather
      // than give up, so the outage window, not us, ends the SA.
      const absl::Duration wait = std::min(
          absl::Seconds(2) * (1 << std::min(pending.attempts - 1, 10)),
          std::max(options_.liveness_interval, absl::Minutes(5)));
      if (now - pending.sent >= wait) {
        if (pending.give_up_after > 0 && pending.attempts >= pending.give_up_after) {
          // The previous owner's request, unanswered here: the client may
          // have answered it before the takeover and moved on.
          sa->pending_request.reset();
          sa->return_routability_cookie.clear();
          continue;
        }
        for (const crypto::Bytes& message : pending.datagrams) SendTo(*sa, message);
        pending.sent = now;
        ++pending.attempts;
      }
      continue;
    }
    if (now - sa->last_seen >= options_.liveness_interval) SendRequest(*sa, {});
  }
}

size_t IkeEngine::ExpireHalfOpen() {
  std::vector<std::shared_ptr<IkeSa>> candidates;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, spi_r] : half_open_) {
      auto it = sas_.find(spi_r);
      if (it != sas_.end()) candidates.push_back(it->second);
    }
  }
  const absl::Time cutoff = absl::Now() - options_.half_open_timeout;
  size_t expired = 0;
  for (const std::shared_ptr<IkeSa>& sa : candidates) {
    absl::MutexLock lock(&sa->mu);
    if (sa->phase == IkeSa::Phase::kEstablished || sa->created > cutoff) continue;
    ReleaseResources(*sa);
    Forget(*sa);
    ++expired;
  }
  return expired;
}

}  // namespace vpn::ike
