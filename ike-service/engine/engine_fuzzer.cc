// Fuzz target for the IKE engine past the integrity check.
//
// A world of its own (an IkeEngine with an embedded store, an address pool
// and auth-service's EAP-MSCHAPv2 server) is built, and a real IKE SA set up
// in it by the load generator's initiator: IKE_SA_INIT, then IKE_AUTH with
// EAP, behind a (claimed) NAT, with MOBIKE and fragmentation announced. The
// harness holds that SA's keys, so each input is sealed as the client's next
// request and reaches the exchange handlers behind SK decryption:
// IKE_AUTH, CREATE_CHILD_SA (CHILD and IKE rekeys) and INFORMATIONAL
// (DELETE, UPDATE_SA_ADDRESSES, COOKIE2, liveness), whole or in fragments.
// The world is rebuilt every kInputsPerWorld inputs, and whenever the SA is
// gone, so state stays bounded.
//
// Input: [exchange (1)][flags (1)][first inner payload type (1)][inner chain]
//   exchange % 4: 0 IKE_AUTH, 1 CREATE_CHILD_SA, 2 INFORMATIONAL, 3 the
//                 next byte as is (consumed);
//   flags: 0x01 send in SKF fragments ((flags >> 5) + 1 of them);
//          0x02 a response, to the gateway's last request;
//          0x04 under the previous message ID (a retransmit);
//          0x08 one byte of the sealed message flipped (integrity failure);
//          0x10 from a new client port (NAT rebinding); then the gateway's
//               liveness check runs.
// ENGINE_FUZZER_LOG=1 in the environment keeps the engine's log.
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "auth-service/eap/eap_session.h"
#include "auth-service/eap/mschapv2_server.h"
#include "common/crypto/crypto.h"
#include "common/crypto/mschapv2.h"
#include "common/log/log.h"
#include "common/net/ip_endpoint.h"
#include "common/store/embedded_store.h"
#include "common/store/sealer.h"
#include "ike-service/codec/message.h"
#include "ike-service/engine/ike_engine.h"
#include "ike-service/exchange/proposals.h"
#include "ike-service/pool/address_pool.h"
#include "ike-service/sa/sa_recorder.h"
#include "ike-service/sa/sk_protector.h"
#include "prometheus/registry.h"
#include "tools/ike_loadgen/initiator.h"

namespace {

using namespace vpn;  // NOLINT
using ike::codec::ExchangeType;
using ike::codec::PayloadType;

constexpr int kInputsPerWorld = 512;
constexpr char kPassword[] = "secret-Pa55";
constexpr uint8_t kStoreKey[32] = {1, 2, 3};

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "engine_fuzzer: %s\n", what);
    std::abort();
  }
}

// auth-service's EAP-MSCHAPv2 server for one user, and a signer that signs
// nothing (the initiator is told not to check the gateway's AUTH).
class FuzzAuthenticator : public ike::Authenticator {
 public:
  FuzzAuthenticator()
      : sessions_(crypto::GetProvider(),
                  [this](const auth::eap::PeerInfo&) {
                    return std::make_unique<auth::eap::MsChapV2Server>(
                        crypto::GetProvider(), users_, auth::eap::MsChapV2Options());
                  },
                  auth::eap::SessionOptions()) {}

  absl::StatusOr<v1::EapReply> EapStart(const v1::EapStartRequest& request) override {
    absl::StatusOr<auth::eap::Result> result =
        sessions_.Start(crypto::AsBytes(request.peer_identity()));
    if (!result.ok()) return result.status();
    return Reply(*result);
  }
  absl::StatusOr<v1::EapReply> EapRound(const v1::EapRoundRequest& request) override {
    return Reply(sessions_.Round(request.session(), crypto::AsBytes(request.eap_message())));
  }
  absl::StatusOr<v1::SignReply> Sign(const v1::SignRequest&) override {
    v1::SignReply reply;
    reply.set_auth_method(1);
    reply.set_auth_data(std::string(256, '\x5a'));
    return reply;
  }
  absl::StatusOr<v1::ValidateCertificateReply> ValidateCertificate(
      const v1::ValidateCertificateRequest&) override {
    v1::ValidateCertificateReply reply;
    reply.set_reason("no certificates in this world");
    return reply;
  }
  absl::StatusOr<v1::GatewayCertificateReply> GatewayCertificate() override {
    return v1::GatewayCertificateReply();
  }

 private:
  class OneUser : public auth::eap::CredentialSource {
   public:
    absl::StatusOr<crypto::SecretBytes> NtHash(absl::string_view user) override {
      if (user != "alice") return absl::NotFoundError("unknown user");
      absl::StatusOr<crypto::SecretBytes> unicode = crypto::mschapv2::PasswordToUnicode(kPassword);
      if (!unicode.ok()) return unicode.status();
      return crypto::mschapv2::NtPasswordHash(crypto::GetProvider(), unicode->span());
    }
  };

  static v1::EapReply Reply(const auth::eap::Result& result) {
    v1::EapReply reply;
    switch (result.outcome) {
      case auth::eap::Result::Outcome::kContinue: reply.set_outcome(v1::EapReply::CONTINUE); break;
      case auth::eap::Result::Outcome::kSuccess: reply.set_outcome(v1::EapReply::SUCCESS); break;
      case auth::eap::Result::Outcome::kFailure: reply.set_outcome(v1::EapReply::FAILURE); break;
    }
    reply.set_session(result.session);
    reply.set_eap_message(std::string(result.message.begin(), result.message.end()));
    const crypto::ByteSpan msk = result.msk.span();
    reply.set_msk(std::string(msk.begin(), msk.end()));
    reply.set_eap_identity(result.identity);
    return reply;
  }

  OneUser users_;
  auth::eap::SessionManager sessions_;
};

// One engine, its store and one established IKE SA.
class World {
 public:
  World() {
    // tmpfs: the store fdatasync()s every write.
    char dir_template[] = "/dev/shm/engine_fuzzer.XXXXXX";
    Check(mkdtemp(dir_template) != nullptr, "mkdtemp");
    dir_ = dir_template;
    store::EmbeddedOptions options;
    options.dir = dir_;
    options.segment_bytes = 1 << 20;
    options.history_limit = 1000;
    auto store = store::EmbeddedStore::Open(options);
    Check(store.ok(), "store");
    store_ = std::move(*store);
    auto sealer = store::Sealer::FromKey(crypto::ByteSpan(kStoreKey, sizeof(kStoreKey)));
    Check(sealer.ok(), "sealer");
    sealer_ = std::move(*sealer);
    auto pool = ike::AddressPool::Create("10.10.0.0/24", store_.get());
    Check(pool.ok(), "pool");
    pool_ = std::move(*pool);

    for (const char* text : {"aes256gcm16-prfsha384-x25519", "aes256-sha1-prfsha1-modp1024"}) {
      auto p = ike::ParseProposalPolicy(text, ike::ProposalKind::kIke);
      Check(p.ok(), "ike proposal");
      policy_.ike_proposals.push_back(*p);
    }
    for (const char* text : {"aes256gcm16", "aes256-sha1", "aes256gcm16-x25519"}) {
      auto p = ike::ParseProposalPolicy(text, ike::ProposalKind::kEsp);
      Check(p.ok(), "esp proposal");
      policy_.esp_proposals.push_back(*p);
    }
    ike::codec::TrafficSelector everything;
    everything.starting_address = {0, 0, 0, 0};
    everything.ending_address = {255, 255, 255, 255};
    policy_.local_ts.push_back(everything);
    policy_.additional_addresses.push_back(std::string("\xc6\x33\x64\x01", 4));

    recorder_ = std::make_unique<ike::SaRecorder>(store_.get(), sealer_.get(), "fuzz", &policy_);
    ike::AuthServices services;
    services.authenticator = &authenticator_;
    services.pool_v4 = pool_.get();
    ike::EngineOptions engine_options;
    engine_options.workers = 1;
    engine_options.fragment_size = 576;
    engine_ = std::make_unique<ike::IkeEngine>(
        policy_, engine_options, services, recorder_.get(), /*mobility=*/nullptr,
        [this](size_t, const v1::IkeDatagram& datagram) {
          absl::MutexLock lock(&sent_mu_);
          sent_.push_back(datagram);
        },
        [](const v1::SaPathUpdate&) {}, [](size_t, const v1::ChildSa&) {}, registry_);
    Establish();
  }

  ~World() {
    engine_.reset();
    recorder_.reset();
    pool_.reset();
    store_.reset();
    if (DIR* d = opendir(dir_.c_str())) {
      while (dirent* entry = readdir(d)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..") unlink((dir_ + "/" + name).c_str());
      }
      closedir(d);
    }
    rmdir(dir_.c_str());
  }

  bool established() const { return engine_->sa_count() > 0; }

  void Send(const uint8_t* data, size_t size) {
    if (size < 3) return;
    size_t at = 0;
    const uint8_t selector = data[at++];
    ExchangeType exchange;
    switch (selector % 4) {
      case 0: exchange = ExchangeType::kIkeAuth; break;
      case 1: exchange = ExchangeType::kCreateChildSa; break;
      case 2: exchange = ExchangeType::kInformational; break;
      default: exchange = static_cast<ExchangeType>(data[at++]); break;
    }
    if (size - at < 2) return;
    const uint8_t flags = data[at++];
    const auto first = static_cast<PayloadType>(data[at++]);
    const crypto::ByteSpan inner(data + at, size - at);

    ike::codec::Header header;
    header.initiator_spi = spi_i_;
    header.responder_spi = spi_r_;
    header.exchange_type = exchange;
    header.initiator = true;
    header.response = (flags & 0x02) != 0;
    header.message_id = header.response ? gateway_request_id_
                                        : next_request_id_ - ((flags & 0x04) ? 1 : 0);
    const size_t fragments = (flags & 0x01) ? (flags >> 5) + 1 : 0;
    std::vector<crypto::Bytes> messages = Seal(header, first, inner, fragments);
    if ((flags & 0x08) && !messages.empty() && !messages[0].empty()) {
      messages[0][inner.size() % messages[0].size()] ^= 0x01;
    }
    if (flags & 0x10) client_.set_port(static_cast<uint16_t>(client_.port() + 1));
    for (const crypto::Bytes& message : messages) Deliver(message);
    if (flags & 0x10) engine_->CheckLiveness();
    Collect();
  }

 private:
  // Seals `inner` (with `first` as its first payload type) as one SK
  // message, or as `fragments` SKF fragments when that is not 0.
  std::vector<crypto::Bytes> Seal(const ike::codec::Header& header, PayloadType first,
                                  crypto::ByteSpan inner, size_t fragments) const {
    auto sealed = [&](const std::vector<uint8_t>& prefix, crypto::ByteSpan plain) {
      crypto::Bytes message(prefix.begin(), prefix.end());
      absl::StatusOr<crypto::Bytes> body = to_gateway_->Seal(prefix, plain);
      if (prefix.empty() || !body.ok()) return crypto::Bytes();
      message.insert(message.end(), body->begin(), body->end());
      return message;
    };
    auto sizes = [&](size_t plain) {
      ike::codec::EncryptedSizes s;
      s.iv_size = to_gateway_->iv_size();
      s.icv_size = to_gateway_->icv_size();
      s.ciphertext_size = to_gateway_->SealedSize(plain) - s.iv_size - s.icv_size;
      return s;
    };
    if (fragments == 0) {
      return {sealed(ike::codec::EncodeSkPrefix(header, first, sizes(inner.size())), inner)};
    }
    std::vector<crypto::Bytes> out;
    const size_t chunk = inner.size() / fragments + 1;
    for (size_t i = 0; i < fragments; ++i) {
      const size_t offset = std::min(inner.size(), i * chunk);
      const size_t length = std::min(chunk, inner.size() - offset);
      const crypto::ByteSpan piece = inner.subspan(offset, length);
      out.push_back(sealed(
          ike::codec::EncodeSkfPrefix(header, i == 0 ? first : PayloadType::kNone,
                                      static_cast<uint16_t>(i + 1),
                                      static_cast<uint16_t>(fragments), sizes(piece.size())),
          piece));
    }
    return out;
  }

  void Deliver(const crypto::Bytes& message) {
    if (message.empty()) return;
    v1::IkeDatagram datagram;
    *datagram.mutable_local() = gateway_.ToProto();
    *datagram.mutable_remote() = client_.ToProto();
    datagram.set_initiator_spi(spi_i_);
    datagram.set_responder_spi(spi_r_);
    datagram.set_udp_encapsulated(client_.port() != 500);
    datagram.set_payload(std::string(message.begin(), message.end()));
    engine_->Handle(0, datagram);
  }

  // What the engine sent: answers move the expected message ID on; its own
  // requests are remembered so an input can answer them.
  std::vector<crypto::Bytes> Collect() {
    std::vector<v1::IkeDatagram> sent;
    {
      absl::MutexLock lock(&sent_mu_);
      sent.swap(sent_);
    }
    std::vector<crypto::Bytes> out;
    for (const v1::IkeDatagram& datagram : sent) {
      const crypto::ByteSpan bytes = crypto::AsBytes(datagram.payload());
      absl::optional<ike::codec::Header> header = ike::codec::PeekHeader(bytes);
      Check(header.has_value(), "the engine sent a message without an IKE header");
      if (spi_r_ != 0 && header->initiator_spi == spi_i_ && header->responder_spi == spi_r_) {
        if (!header->response) {
          gateway_request_id_ = header->message_id;
        } else if (header->message_id == next_request_id_) {
          ++next_request_id_;
        }
        if (verbose_) Show(bytes);
      }
      out.emplace_back(bytes.begin(), bytes.end());
    }
    return out;
  }

  // For ENGINE_FUZZER_LOG: what a response to the client carried.
  void Show(crypto::ByteSpan bytes) const {
    auto message = ike::codec::DecodeMessage(bytes);
    if (!message.ok() || message->payloads.empty() || from_gateway_ == nullptr) return;
    const auto* sk = message->payloads.back().As<ike::codec::SkPayload>();
    if (sk == nullptr) return;
    auto plain = from_gateway_->Open(bytes.first(bytes.size() - sk->encrypted.size()), sk->encrypted);
    if (!plain.ok()) return;
    auto inner = ike::codec::DecodePayloadChain(sk->inner_first_payload, *plain);
    if (!inner.ok()) return;
    std::string text;
    for (const ike::codec::Payload& payload : *inner) {
      absl::StrAppend(&text, " ", static_cast<int>(payload.type()));
      if (const auto* n = payload.As<ike::codec::NotifyPayload>()) {
        absl::StrAppend(&text, "(", static_cast<int>(n->type), ")");
      }
    }
    std::fprintf(stderr, "engine_fuzzer: message %u %s:%s\n", message->header.message_id,
                 message->header.response ? "response" : "request", text.c_str());
  }

  void Establish() {
    initiator_config_.eap_identity = "alice";
    initiator_config_.password = kPassword;
    auto names = loadgen::ProposalsByName("modern");
    Check(names.ok(), "proposal names");
    auto ike_set = loadgen::ParseProposalSet(names->ike, ike::ProposalKind::kIke);
    auto esp_set = loadgen::ParseProposalSet(names->esp, ike::ProposalKind::kEsp);
    Check(ike_set.ok() && esp_set.ok(), "proposal sets");
    initiator_config_.ike = *ike_set;
    initiator_config_.esp = *esp_set;
    initiator_config_.fragmentation = true;
    initiator_config_.fake_nat = true;
    initiator_ = std::make_unique<loadgen::Initiator>(&initiator_config_);
    spi_i_ = 0x0102030405060708ull + ++worlds_;
    client_ = *net::IpEndpoint::Parse("192.0.2.2:500");
    gateway_ = *net::IpEndpoint::Parse("192.0.2.1:500");
    absl::StatusOr<crypto::Bytes> request = initiator_->Start(spi_i_, client_, gateway_);
    Check(request.ok(), "initiator start");
    crypto::Bytes next = *request;
    for (int step = 0; step < 16 && !next.empty(); ++step) {
      Deliver(next);
      if (initiator_->udp_encapsulation() && client_.port() == 500) {
        client_.set_port(4500);
        gateway_.set_port(4500);
      }
      next.clear();
      for (const crypto::Bytes& answer : Collect()) {
        const crypto::Bytes reply = initiator_->Receive(answer);
        if (spi_r_ == 0) spi_r_ = initiator_->spi_r();
        if (!reply.empty()) next = reply;
      }
      if (initiator_->udp_encapsulation() && client_.port() == 500) {
        client_.set_port(4500);
        gateway_.set_port(4500);
      }
    }
    Check(initiator_->state() == loadgen::Initiator::State::kEstablished,
          "a real client could not connect");
    const ike::IkeSaKeys& keys = initiator_->keys();
    auto to_gateway = ike::SkProtector::Create(initiator_->ike_transforms(), keys.sk_ei.span(),
                                               keys.sk_ai.span());
    Check(to_gateway.ok(), "SK protector");
    to_gateway_ = std::move(*to_gateway);
    auto from_gateway = ike::SkProtector::Create(initiator_->ike_transforms(),
                                                 keys.sk_er.span(), keys.sk_ar.span());
    Check(from_gateway.ok(), "SK protector");
    from_gateway_ = std::move(*from_gateway);
    next_request_id_ = initiator_->next_request_id();
  }

  std::string dir_;
  std::unique_ptr<store::EmbeddedStore> store_;
  std::unique_ptr<store::Sealer> sealer_;
  std::unique_ptr<ike::AddressPool> pool_;
  ike::ResponderPolicy policy_;
  FuzzAuthenticator authenticator_;
  prometheus::Registry registry_;
  std::unique_ptr<ike::SaRecorder> recorder_;
  std::unique_ptr<ike::IkeEngine> engine_;
  absl::Mutex sent_mu_;
  std::vector<v1::IkeDatagram> sent_ ABSL_GUARDED_BY(sent_mu_);

  loadgen::InitiatorConfig initiator_config_;
  std::unique_ptr<loadgen::Initiator> initiator_;
  std::unique_ptr<ike::SkProtector> to_gateway_, from_gateway_;
  const bool verbose_ = std::getenv("ENGINE_FUZZER_LOG") != nullptr;
  net::IpEndpoint client_, gateway_;
  uint64_t spi_i_ = 0, spi_r_ = 0;
  uint32_t next_request_id_ = 0;
  uint32_t gateway_request_id_ = 0;
  static inline uint64_t worlds_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int inputs = 0;
  static std::unique_ptr<World> world;
  // ENGINE_FUZZER_LOG=1 keeps the engine's log, to see what an input did.
  if (world == nullptr && std::getenv("ENGINE_FUZZER_LOG") == nullptr) {
    log::SetMinimumLevel(log::Level::kError);
  }
  if (world == nullptr || ++inputs % kInputsPerWorld == 0 || !world->established()) {
    world.reset();
    world = std::make_unique<World>();
  }
  world->Send(data, size);
  return 0;
}
