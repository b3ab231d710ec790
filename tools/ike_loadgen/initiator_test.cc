// The initiator's messages, checked from the responder's side with the same
// codec, key derivation and SK protection ike-service uses.
#include "tools/ike_loadgen/initiator.h"

#include "common/crypto/mschapv2.h"
#include "gtest/gtest.h"
#include "ike-service/exchange/nat_detection.h"
#include "ike-service/sa/keymat.h"
#include "tools/ike_loadgen/eap_peer.h"

namespace vpn::loadgen {
namespace {

namespace codec = ike::codec;
using codec::NotifyType;
using codec::Payload;

constexpr uint64_t kSpiI = 0x1122334455667788;
constexpr uint64_t kSpiR = 0x99aabbccddeeff00;

net::IpEndpoint Endpoint(const char* text) { return *net::IpEndpoint::Parse(text); }

InitiatorConfig Config(absl::string_view name) {
  InitiatorConfig config;
  const NamedProposals names = *ProposalsByName(name);
  config.ike = *ParseProposalSet(names.ike, ike::ProposalKind::kIke);
  config.esp = *ParseProposalSet(names.esp, ike::ProposalKind::kEsp);
  config.password = "secret-Pa55";
  return config;
}

// Plays the responder's side of IKE_SA_INIT and decrypts what follows.
class MiniResponder {
 public:
  // Answers `request` (an IKE_SA_INIT) accepting the first proposal.
  crypto::Bytes AnswerInit(crypto::ByteSpan request, const net::IpEndpoint& initiator,
                           const net::IpEndpoint& responder) {
    const codec::Message in = *codec::DecodeMessage(request);
    const auto* sa = codec::FindPayload<codec::SaPayload>(in.payloads);
    const auto* ke = codec::FindPayload<codec::KePayload>(in.payloads);
    nonce_i_ = codec::FindPayload<codec::NoncePayload>(in.payloads)->data;
    transforms_ = ipsec::TransformSet();
    for (const codec::Transform& t : sa->proposals.front().transforms) {
      switch (t.type) {
        case codec::TransformType::kEncr:
          transforms_.encryption = t.id;
          transforms_.encryption_key_bits = t.key_length().value_or(0);
          break;
        case codec::TransformType::kPrf: transforms_.prf = t.id; break;
        case codec::TransformType::kInteg: transforms_.integrity = t.id; break;
        case codec::TransformType::kDh: transforms_.key_exchange = t.id; break;
        default: break;
      }
    }
    auto kex = *crypto::GetProvider().NewKeyExchange(
        *ipsec::KeyExchangeGroupFor(static_cast<uint16_t>(ke->group)));
    const crypto::SecretBytes shared = *kex->ComputeSharedSecret(ke->data);
    nonce_r_ = codec::Bytes(32, 0x5a);
    keys_ = *ike::DeriveIkeSaKeys(transforms_, nonce_i_, nonce_r_, shared.span(), kSpiI, kSpiR);
    from_initiator_ =
        *ike::SkProtector::Create(transforms_, keys_.sk_ei.span(), keys_.sk_ai.span());
    to_initiator_ = *ike::SkProtector::Create(transforms_, keys_.sk_er.span(), keys_.sk_ar.span());
    codec::Message out;
    out.header = in.header;
    out.header.responder_spi = kSpiR;
    out.header.initiator = false;
    out.header.response = true;
    codec::SaPayload chosen;
    chosen.proposals.push_back(sa->proposals.front());
    out.payloads.push_back(Payload{std::move(chosen)});
    codec::KePayload our_ke;
    our_ke.group = ke->group;
    our_ke.data.assign(kex->public_value().begin(), kex->public_value().end());
    out.payloads.push_back(Payload{std::move(our_ke)});
    out.payloads.push_back(Payload{codec::NoncePayload{nonce_r_}});
    out.payloads.push_back(
        codec::MakeNotify(NotifyType::kNatDetectionSourceIp, ike::NatDetectionHash(kSpiI, kSpiR, responder)));
    out.payloads.push_back(codec::MakeNotify(NotifyType::kNatDetectionDestinationIp,
                                  ike::NatDetectionHash(kSpiI, kSpiR, initiator)));
    return codec::EncodeMessage(out);
  }

  std::vector<Payload> Open(crypto::ByteSpan datagram, codec::Header* header = nullptr) {
    const codec::Message message = *codec::DecodeMessage(datagram);
    if (header != nullptr) *header = message.header;
    const auto* sk = message.payloads.back().As<codec::SkPayload>();
    EXPECT_NE(sk, nullptr);
    const crypto::Bytes plain = *from_initiator_->Open(
        datagram.first(datagram.size() - sk->encrypted.size()), sk->encrypted);
    if (plain.empty()) return {};
    return *codec::DecodePayloadChain(sk->inner_first_payload, plain);
  }

  // An encrypted response (or, with fragments > 1, RFC 7383 fragments).
  std::vector<crypto::Bytes> Seal(uint32_t message_id, const std::vector<Payload>& payloads,
                                  int fragments = 1) {
    codec::Header header;
    header.initiator_spi = kSpiI;
    header.responder_spi = kSpiR;
    header.exchange_type = codec::ExchangeType::kIkeAuth;
    header.response = true;
    header.message_id = message_id;
    const crypto::Bytes inner = codec::EncodePayloadChain(payloads);
    std::vector<crypto::Bytes> out;
    const size_t chunk = (inner.size() + fragments - 1) / fragments;
    for (int i = 0; i < fragments; ++i) {
      const crypto::ByteSpan part =
          crypto::ByteSpan(inner).subspan(i * chunk, std::min(chunk, inner.size() - i * chunk));
      codec::EncryptedSizes sizes;
      sizes.iv_size = to_initiator_->iv_size();
      sizes.icv_size = to_initiator_->icv_size();
      sizes.ciphertext_size =
          to_initiator_->SealedSize(part.size()) - sizes.iv_size - sizes.icv_size;
      const codec::PayloadType first = i == 0 ? payloads.front().type() : codec::PayloadType::kNone;
      crypto::Bytes datagram = fragments == 1
                                   ? codec::EncodeSkPrefix(header, first, sizes)
                                   : codec::EncodeSkfPrefix(header, first, i + 1, fragments, sizes);
      const crypto::Bytes sealed = *to_initiator_->Seal(datagram, part);
      datagram.insert(datagram.end(), sealed.begin(), sealed.end());
      out.push_back(std::move(datagram));
    }
    return out;
  }

  const ike::IkeSaKeys& keys() const { return keys_; }
  const ipsec::TransformSet& transforms() const { return transforms_; }
  const codec::Bytes& nonce_i() const { return nonce_i_; }
  const codec::Bytes& nonce_r() const { return nonce_r_; }

 private:
  ipsec::TransformSet transforms_;
  codec::Bytes nonce_i_, nonce_r_;
  ike::IkeSaKeys keys_;
  std::unique_ptr<ike::SkProtector> from_initiator_, to_initiator_;
};

TEST(ProposalSetTest, WindowsAndModern) {
  const InitiatorConfig windows = Config("windows");
  ASSERT_EQ(windows.ike.proposals.size(), 1u);
  const codec::Proposal& ike = windows.ike.proposals[0];
  EXPECT_EQ(ike.protocol_id, codec::ProtocolId::kIke);
  ASSERT_EQ(ike.transforms.size(), 4u);
  EXPECT_EQ(ike.transforms[0], codec::Transform::Encr(codec::EncrId::kAesCbc, 256));
  EXPECT_EQ(ike.transforms[1], codec::Transform::Prf(codec::PrfId::kHmacSha1));
  EXPECT_EQ(ike.transforms[2], codec::Transform::Integ(codec::IntegId::kHmacSha1_96));
  EXPECT_EQ(ike.transforms[3], codec::Transform::Dh(codec::DhGroup::kModp1024));
  const codec::Proposal& esp = windows.esp.proposals[0];
  EXPECT_EQ(esp.protocol_id, codec::ProtocolId::kEsp);
  EXPECT_EQ(esp.transforms.back(), codec::Transform::Esn(codec::EsnId::kNoEsn));
  for (const codec::Transform& t : esp.transforms) EXPECT_NE(t.type, codec::TransformType::kDh);

  const InitiatorConfig modern = Config("modern");
  EXPECT_EQ(modern.ike.proposals[0].transforms.size(), 3u);  // AEAD: no integrity
  EXPECT_FALSE(ProposalsByName("nope").ok());
  EXPECT_FALSE(ParseProposalSet("aes256-sha1", ike::ProposalKind::kIke).ok());  // no group
  EXPECT_EQ(ParseProposalSet("aes256-sha1-modp1024,aes128-sha1-modp1024", ike::ProposalKind::kIke)
                ->proposals[1]
                .number,
            2);
}

TEST(InitiatorTest, InitRequestCarriesHonestNatHashes) {
  InitiatorConfig config = Config("windows");
  Initiator initiator(&config);
  const net::IpEndpoint local = Endpoint("192.0.2.2:40000"), remote = Endpoint("192.0.2.1:500");
  const crypto::Bytes request = *initiator.Start(kSpiI, local, remote);
  const codec::Message message = *codec::DecodeMessage(request);
  EXPECT_EQ(message.header.initiator_spi, kSpiI);
  EXPECT_EQ(message.header.responder_spi, 0u);
  EXPECT_TRUE(message.header.initiator);
  EXPECT_FALSE(message.header.response);
  EXPECT_EQ(message.payloads[0].type(), codec::PayloadType::kSa);
  const auto* ke = codec::FindPayload<codec::KePayload>(message.payloads);
  ASSERT_NE(ke, nullptr);
  EXPECT_EQ(ke->group, codec::DhGroup::kModp1024);
  EXPECT_EQ(ke->data.size(), 128u);
  EXPECT_EQ(codec::FindPayload<codec::NoncePayload>(message.payloads)->data.size(), 32u);
  EXPECT_EQ(codec::FindNotify(message.payloads, NotifyType::kNatDetectionSourceIp)->data,
            ike::NatDetectionHash(kSpiI, 0, local));
  EXPECT_EQ(codec::FindNotify(message.payloads, NotifyType::kNatDetectionDestinationIp)->data,
            ike::NatDetectionHash(kSpiI, 0, remote));
  EXPECT_EQ(codec::FindNotify(message.payloads, NotifyType::kIkev2FragmentationSupported), nullptr);
  EXPECT_NE(codec::FindNotify(message.payloads, NotifyType::kSignatureHashAlgorithms), nullptr);
  EXPECT_EQ(initiator.last_request(), request);
  EXPECT_EQ(initiator.phase(), "IKE_SA_INIT");
}

TEST(InitiatorTest, CookieIsEchoedFirst) {
  InitiatorConfig config = Config("modern");
  Initiator initiator(&config);
  const crypto::Bytes first =
      *initiator.Start(kSpiI, Endpoint("192.0.2.2:40000"), Endpoint("192.0.2.1:500"));
  codec::Message reply;
  reply.header = codec::DecodeMessage(first)->header;
  reply.header.initiator = false;
  reply.header.response = true;
  reply.payloads.push_back(codec::MakeNotify(NotifyType::kCookie, {1, 2, 3, 4, 5, 6, 7, 8}));
  const crypto::Bytes second = initiator.Receive(codec::EncodeMessage(reply));
  ASSERT_FALSE(second.empty());
  const codec::Message message = *codec::DecodeMessage(second);
  const auto* cookie = message.payloads[0].As<codec::NotifyPayload>();
  ASSERT_NE(cookie, nullptr);
  EXPECT_EQ(cookie->type, NotifyType::kCookie);
  EXPECT_EQ(cookie->data, codec::Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  // The same SA, KE and nonce follow.
  EXPECT_EQ(codec::Bytes(second.end() - (first.size() - codec::kHeaderSize), second.end()),
            codec::Bytes(first.begin() + codec::kHeaderSize, first.end()));
  EXPECT_EQ(initiator.cookie_retries(), 1);
  EXPECT_EQ(initiator.request_count(), 2u);
}

TEST(InitiatorTest, InvalidKeSwitchesToAnOfferedGroupOnly) {
  InitiatorConfig config = Config("modern");
  config.ike = *ParseProposalSet("aes256gcm16-prfsha384-ecp384-x25519", ike::ProposalKind::kIke);
  Initiator initiator(&config);
  const crypto::Bytes first =
      *initiator.Start(kSpiI, Endpoint("192.0.2.2:40000"), Endpoint("192.0.2.1:500"));
  EXPECT_EQ(codec::FindPayload<codec::KePayload>(codec::DecodeMessage(first)->payloads)->group,
            codec::DhGroup::kEcp384);
  codec::Message reply;
  reply.header = codec::DecodeMessage(first)->header;
  reply.header.initiator = false;
  reply.header.response = true;
  reply.payloads.push_back(codec::MakeNotify(NotifyType::kInvalidKePayload, {0, 31}));
  const crypto::Bytes second = initiator.Receive(codec::EncodeMessage(reply));
  const auto* ke = codec::FindPayload<codec::KePayload>(codec::DecodeMessage(second)->payloads);
  ASSERT_NE(ke, nullptr);
  EXPECT_EQ(ke->group, codec::DhGroup::kCurve25519);
  EXPECT_EQ(ke->data.size(), 32u);

  reply.payloads[0] = codec::MakeNotify(NotifyType::kInvalidKePayload, {0, 2});  // not offered
  EXPECT_TRUE(initiator.Receive(codec::EncodeMessage(reply)).empty());
  EXPECT_EQ(initiator.state(), Initiator::State::kFailed);
  EXPECT_EQ(initiator.failure(), "IKE_SA_INIT: INVALID_KE_PAYLOAD asks for group 2");
}

// The whole exchange against MiniResponder, playing EAP-MSCHAPv2's server.
void RunHandshake(absl::string_view proposals, int fragments) {
  InitiatorConfig config = Config(proposals);
  config.fragmentation = fragments > 1;
  config.eap_identity = "alice";
  Initiator initiator(&config);
  const net::IpEndpoint local = Endpoint("192.0.2.2:40000"), remote = Endpoint("192.0.2.1:500");
  MiniResponder responder;
  const crypto::Bytes init = *initiator.Start(kSpiI, local, remote);
  const crypto::Bytes init_response = responder.AnswerInit(init, local, remote);
  const crypto::Bytes auth1 = initiator.Receive(init_response);
  ASSERT_FALSE(auth1.empty()) << initiator.failure();
  EXPECT_FALSE(initiator.udp_encapsulation());  // honest hashes, no NAT

  // IKE_AUTH 1: IDi = our IPv4 address, no AUTH, CP, ESP SA, TSi/TSr 0/0.
  codec::Header header;
  std::vector<Payload> request = responder.Open(auth1, &header);
  EXPECT_EQ(header.message_id, 1u);
  EXPECT_EQ(header.exchange_type, codec::ExchangeType::kIkeAuth);
  const auto* idi = codec::FindPayload<codec::IdiPayload>(request);
  ASSERT_NE(idi, nullptr);
  EXPECT_EQ(idi->id_type, codec::IdType::kIpv4Addr);
  EXPECT_EQ(idi->data, codec::Bytes({192, 0, 2, 2}));
  EXPECT_EQ(codec::FindPayload<codec::AuthPayload>(request), nullptr);
  EXPECT_EQ(codec::FindPayload<codec::IdrPayload>(request), nullptr);
  const auto* cp = codec::FindPayload<codec::ConfigPayload>(request);
  ASSERT_NE(cp, nullptr);
  EXPECT_EQ(cp->cfg_type, codec::CfgType::kRequest);
  EXPECT_EQ(cp->attributes[0].type, codec::ConfigAttributeType::kInternalIp4Address);
  ASSERT_NE(codec::FindPayload<codec::SaPayload>(request), nullptr);
  const codec::SaPayload esp_sa = *codec::FindPayload<codec::SaPayload>(request);  // request is reused
  const codec::SaPayload* esp = &esp_sa;
  EXPECT_EQ(esp->proposals[0].protocol_id, codec::ProtocolId::kEsp);
  EXPECT_EQ(esp->proposals[0].spi.size(), 4u);
  ASSERT_NE(codec::FindPayload<codec::TsiPayload>(request), nullptr);
  const codec::TsiPayload tsi_copy = *codec::FindPayload<codec::TsiPayload>(request);
  const codec::TsiPayload* tsi = &tsi_copy;
  EXPECT_EQ(tsi->selectors[0].starting_address, codec::Bytes({0, 0, 0, 0}));
  EXPECT_EQ(tsi->selectors[0].ending_address, codec::Bytes({255, 255, 255, 255}));
  EXPECT_NE(codec::FindNotify(request, NotifyType::kMobikeSupported), nullptr);

  // Response 1: IDr, AUTH (not checked here), EAP-Identity request.
  codec::IdrPayload idr;
  idr.id_type = codec::IdType::kFqdn;
  idr.data = {'g', 'w'};
  const crypto::Bytes idr_body = {2, 0, 0, 0, 'g', 'w'};
  std::vector<Payload> reply;
  reply.push_back(Payload{idr});
  reply.push_back(Payload{codec::AuthPayload{codec::AuthMethod::kRsaSignature, {1, 2, 3}}});
  reply.push_back(Payload{codec::EapPayload{EapPacket(1, 7, 1, {})}});
  crypto::Bytes next;
  for (const crypto::Bytes& datagram : responder.Seal(1, reply, fragments)) {
    EXPECT_TRUE(next.empty());
    next = initiator.Receive(datagram);
  }
  ASSERT_FALSE(next.empty()) << initiator.failure();
  request = responder.Open(next, &header);
  EXPECT_EQ(header.message_id, 2u);
  const auto* eap = codec::FindPayload<codec::EapPayload>(request);
  ASSERT_NE(eap, nullptr);
  EXPECT_EQ(eap->message, EapPacket(2, 7, 1, codec::Bytes({'a', 'l', 'i', 'c', 'e'})));

  // MSCHAPv2 Challenge → Response, checked as auth-service would.
  const crypto::Provider& provider = crypto::GetProvider();
  const codec::Bytes challenge(16, 0x42);
  codec::Bytes body = {1, 9, 0, 4 + 1 + 16 + 2, 16};
  body.insert(body.end(), challenge.begin(), challenge.end());
  body.insert(body.end(), {'g', 'w'});
  next = initiator.Receive(
      responder.Seal(2, {Payload{codec::EapPayload{EapPacket(1, 8, 26, body)}}})[0]);
  ASSERT_FALSE(next.empty()) << initiator.failure();
  request = responder.Open(next);
  const codec::Bytes& response = codec::FindPayload<codec::EapPayload>(request)->message;
  ASSERT_EQ(response.size(), 5u + 4 + 1 + 49 + 5);
  EXPECT_EQ(response[5], 2);  // OpCode Response
  EXPECT_EQ(response[6], 9);  // MS-CHAPv2-ID echoed
  const codec::Bytes peer_challenge(response.begin() + 10, response.begin() + 26);
  const codec::Bytes nt_response(response.begin() + 34, response.begin() + 58);
  const crypto::SecretBytes hash = crypto::mschapv2::NtPasswordHash(
      provider, crypto::mschapv2::PasswordToUnicode("secret-Pa55")->span());
  EXPECT_TRUE(crypto::mschapv2::VerifyNtResponse(provider, challenge, peer_challenge, "alice",
                                                 hash.span(), nt_response));

  // Success request (S=...) → Success response; then EAP-Success → AUTH.
  const std::string s = *crypto::mschapv2::GenerateAuthenticatorResponse(
      provider, hash.span(), nt_response, peer_challenge, challenge, "alice");
  const std::string message = s + " M=welcome";
  codec::Bytes success = {3, 9, 0, static_cast<uint8_t>(4 + message.size())};
  success.insert(success.end(), message.begin(), message.end());
  next = initiator.Receive(
      responder.Seal(3, {Payload{codec::EapPayload{EapPacket(1, 9, 26, success)}}})[0]);
  ASSERT_FALSE(next.empty()) << initiator.failure();
  EXPECT_EQ(codec::FindPayload<codec::EapPayload>(responder.Open(next))->message,
            EapPacket(2, 9, 26, codec::Bytes({3})));
  next =
      initiator.Receive(responder.Seal(4, {Payload{codec::EapPayload{EapPacket(3, 9, 0, {})}}})[0]);
  ASSERT_FALSE(next.empty()) << initiator.failure();
  request = responder.Open(next);
  const auto* auth = codec::FindPayload<codec::AuthPayload>(request);
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->method, codec::AuthMethod::kSharedKeyMic);
  const crypto::SecretBytes msk = *crypto::mschapv2::DeriveMsk(provider, hash.span(), nt_response);
  const uint16_t prf = responder.transforms().prf;
  EXPECT_EQ(auth->data,
            *ike::SharedKeyAuth(
                prf, msk.span(),
                *ike::SignedOctets(prf, init, responder.nonce_r(), responder.keys().sk_pi.span(),
                                   crypto::Bytes({1, 0, 0, 0, 192, 0, 2, 2}))));

  // Final response: AUTH from the MSK, CP reply, the CHILD SA.
  reply.clear();
  reply.push_back(Payload{codec::AuthPayload{
      codec::AuthMethod::kSharedKeyMic,
      *ike::SharedKeyAuth(prf, msk.span(),
                          *ike::SignedOctets(prf, init_response, responder.nonce_i(),
                                             responder.keys().sk_pr.span(), idr_body))}});
  codec::ConfigPayload cp_reply;
  cp_reply.cfg_type = codec::CfgType::kReply;
  cp_reply.attributes.push_back({codec::ConfigAttributeType::kInternalIp4Address, {10, 10, 0, 7}});
  reply.push_back(Payload{cp_reply});
  codec::SaPayload child = *esp;
  child.proposals.resize(1);
  child.proposals[0].spi = {0xc0, 0, 0, 1};
  reply.push_back(Payload{child});
  reply.push_back(Payload{*tsi});
  reply.push_back(Payload{codec::TsrPayload{tsi->selectors}});
  EXPECT_TRUE(initiator.Receive(responder.Seal(5, reply)[0]).empty());
  ASSERT_EQ(initiator.state(), Initiator::State::kEstablished) << initiator.failure();
  EXPECT_EQ(initiator.virtual_ip(), "10.10.0.7");

  // Delete: INFORMATIONAL request 6 with D(IKE).
  const crypto::Bytes del = initiator.BeginDelete();
  request = responder.Open(del, &header);
  EXPECT_EQ(header.exchange_type, codec::ExchangeType::kInformational);
  EXPECT_EQ(header.message_id, 6u);
  ASSERT_NE(codec::FindPayload<codec::DeletePayload>(request), nullptr);
  EXPECT_EQ(codec::FindPayload<codec::DeletePayload>(request)->protocol_id, codec::ProtocolId::kIke);
}

TEST(InitiatorTest, FullHandshakeWindows) { RunHandshake("windows", 1); }
TEST(InitiatorTest, FullHandshakeModern) { RunHandshake("modern", 1); }
TEST(InitiatorTest, FragmentedResponseIsReassembled) { RunHandshake("modern", 3); }

TEST(EapPeerTest, WrongAuthenticatorResponseFails) {
  EapMsChapV2Peer peer("alice", "pw");
  codec::Bytes body = {1, 1, 0, 21, 16};
  body.insert(body.end(), 16, 0x11);
  ASSERT_TRUE(peer.Process(EapPacket(1, 1, 26, body)).ok());
  const std::string bad = "S=" + std::string(40, '0');
  codec::Bytes success = {3, 1, 0, static_cast<uint8_t>(4 + bad.size())};
  success.insert(success.end(), bad.begin(), bad.end());
  absl::StatusOr<EapMsChapV2Peer::Step> step = peer.Process(EapPacket(1, 2, 26, success));
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->kind, EapMsChapV2Peer::Step::Kind::kFailure);
  EXPECT_FALSE(peer.Process(EapPacket(3, 3, 0, {})).ok());  // no Success without S= check
  const std::string failure = "E=691 R=0 C=00000000000000000000000000000000 V=3 M=no";
  codec::Bytes fail = {4, 1, 0, static_cast<uint8_t>(4 + failure.size())};
  fail.insert(fail.end(), failure.begin(), failure.end());
  step = peer.Process(EapPacket(1, 4, 26, fail));
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->reason, "MSCHAPv2 Failure E=691");
}

}  // namespace
}  // namespace vpn::loadgen
