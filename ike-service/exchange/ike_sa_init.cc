#include "ike-service/exchange/ike_sa_init.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ike-service/exchange/nat_detection.h"
#include "ike-service/exchange/proposals.h"

namespace vpn::ike {
namespace {

using codec::NotifyType;

constexpr size_t kNonceSize = 32;

uint64_t RandomSpi() {
  uint64_t spi = 0;
  while (spi == 0) {
    crypto::GetProvider().RandomBytes(
        absl::MakeSpan(reinterpret_cast<uint8_t*>(&spi), sizeof(spi)));
  }
  return spi;
}

}  // namespace

codec::Message NotifyResponse(const codec::Header& request_header, NotifyType type,
                              codec::Bytes data) {
  codec::Message response;
  response.header = request_header;
  response.header.initiator = false;
  response.header.response = true;
  response.payloads.push_back(codec::MakeNotify(type, std::move(data)));
  return response;
}

absl::optional<std::pair<std::string, std::string>> MalformedIkeSaInit(
    const codec::Message& request) {
  const codec::Header& header = request.header;
  if (header.initiator_spi == 0) return std::make_pair("zero_spi", "SPIi is zero");
  if (!header.initiator) return std::make_pair("not_initiator", "Initiator flag not set");
  if (header.message_id != 0) {
    return std::make_pair("message_id", absl::StrCat("message ID ", header.message_id));
  }
  int sa = 0, ke = 0, nonce = 0;
  for (const codec::Payload& payload : request.payloads) {
    switch (payload.type()) {
      case codec::PayloadType::kSa: ++sa; break;
      case codec::PayloadType::kKe: ++ke; break;
      case codec::PayloadType::kNonce: ++nonce; break;
      case codec::PayloadType::kNotify:
      case codec::PayloadType::kVendorId:
      case codec::PayloadType::kCertReq:
        break;
      default:
        // Unknown payloads were skipped (non-critical) or refused by the codec.
        if (!codec::IsKnownPayloadType(payload.type())) break;
        return std::make_pair(
            "unexpected_payload",
            absl::StrCat("payload type ", static_cast<int>(payload.type()), " in IKE_SA_INIT"));
    }
  }
  if (sa != 1 || ke != 1 || nonce != 1) {
    return std::make_pair("payload_count", absl::StrCat(sa, " SA, ", ke, " KE and ", nonce,
                                                        " Nonce payloads; want one of each"));
  }
  return absl::nullopt;
}

IkeSaInitResult HandleIkeSaInit(const codec::Message& request,
                                crypto::ByteSpan raw_request,
                                const net::IpEndpoint& local,
                                const net::IpEndpoint& remote,
                                const ResponderPolicy& policy, CookieJar* cookies,
                                crypto::ByteSpan certificate_authorities) {
  IkeSaInitResult result;
  const codec::Header& header = request.header;
  const codec::SaPayload* sa = request.Find<codec::SaPayload>();
  const codec::KePayload* ke = request.Find<codec::KePayload>();
  const codec::NoncePayload* nonce = request.Find<codec::NoncePayload>();
  if (auto malformed = MalformedIkeSaInit(request)) {
    result.drop = true;
    result.refusal = malformed->first;
    result.error = malformed->second;
    return result;
  }

  std::vector<const codec::NotifyPayload*> notifies;
  for (const codec::Payload& payload : request.payloads) {
    if (const auto* notify = payload.As<codec::NotifyPayload>()) notifies.push_back(notify);
  }
  if (cookies != nullptr) {
    const codec::NotifyPayload* cookie = nullptr;
    for (const auto* notify : notifies) {
      if (notify->type == NotifyType::kCookie) cookie = notify;
    }
    if (cookie == nullptr ||
        !cookies->Check(cookie->data, nonce->data, remote, header.initiator_spi)) {
      result.response = NotifyResponse(
          header, NotifyType::kCookie,
          cookies->Make(nonce->data, remote, header.initiator_spi));
      result.error = cookie == nullptr ? "cookie required" : "bad cookie";
      result.refusal = cookie == nullptr ? "cookie_required" : "bad_cookie";
      return result;
    }
  }

  const uint16_t ke_group = static_cast<uint16_t>(ke->group);
  absl::optional<SelectedProposal> selected = SelectProposal(
      sa->proposals, policy.ike_proposals, codec::ProtocolId::kIke, ke_group);
  if (!selected) {
    result.response = NotifyResponse(header, NotifyType::kNoProposalChosen);
    result.error = "no acceptable IKE proposal";
    result.refusal = "no_proposal_chosen";
    return result;
  }
  if (selected->transforms.key_exchange != ke_group) {
    const uint16_t group = selected->transforms.key_exchange;
    result.response = NotifyResponse(
        header, NotifyType::kInvalidKePayload,
        {static_cast<uint8_t>(group >> 8), static_cast<uint8_t>(group)});
    result.error = absl::StrCat("KE group ", ke_group, " not acceptable; asked for ", group);
    result.refusal = "invalid_ke_payload";
    return result;
  }

  absl::StatusOr<crypto::KeyExchangeGroup> group = ipsec::KeyExchangeGroupFor(ke_group);
  if (!group.ok()) {
    result.response = NotifyResponse(header, NotifyType::kNoProposalChosen);
    result.error = std::string(group.status().message());
    result.refusal = "no_proposal_chosen";
    return result;
  }
  absl::StatusOr<std::unique_ptr<crypto::KeyExchange>> exchange =
      crypto::GetProvider().NewKeyExchange(*group);
  if (!exchange.ok()) {
    result.response = NotifyResponse(header, NotifyType::kNoProposalChosen);
    result.error = std::string(exchange.status().message());
    result.refusal = "no_proposal_chosen";
    return result;
  }
  absl::StatusOr<crypto::SecretBytes> shared = (*exchange)->ComputeSharedSecret(ke->data);
  if (!shared.ok()) {
    result.drop = true;
    result.refusal = "bad_ke_value";
    result.error = absl::StrCat("invalid KE value: ", shared.status().message());
    return result;
  }

  auto ike_sa = std::make_unique<IkeSa>();
  ike_sa->spi_i = header.initiator_spi;
  ike_sa->spi_r = RandomSpi();
  ike_sa->transforms = selected->transforms;
  ike_sa->nonce_i = nonce->data;
  ike_sa->nonce_r.resize(kNonceSize);
  crypto::GetProvider().RandomBytes(absl::MakeSpan(ike_sa->nonce_r));
  ike_sa->local = local;
  ike_sa->remote = remote;
  ike_sa->created = ike_sa->last_seen = absl::Now();
  ike_sa->next_request_id = 1;
  ike_sa->init_request.assign(raw_request.begin(), raw_request.end());

  // NAT detection: the initiator hashed SPIr = 0.
  bool source_seen = false, source_matches = false;
  bool destination_seen = false, destination_matches = false;
  const crypto::Bytes expected_source = NatDetectionHash(ike_sa->spi_i, 0, remote);
  const crypto::Bytes expected_destination = NatDetectionHash(ike_sa->spi_i, 0, local);
  bool wants_signature_hashes = false;
  for (const auto* notify : notifies) {
    switch (notify->type) {
      case NotifyType::kNatDetectionSourceIp:
        source_seen = true;
        source_matches |= notify->data == expected_source;
        break;
      case NotifyType::kNatDetectionDestinationIp:
        destination_seen = true;
        destination_matches |= notify->data == expected_destination;
        break;
      case NotifyType::kIkev2FragmentationSupported:
        ike_sa->peer_supports_fragmentation = true;
        break;
      case NotifyType::kSignatureHashAlgorithms:
        wants_signature_hashes = true;
        for (size_t i = 0; i + 1 < notify->data.size(); i += 2) {
          ike_sa->peer_hash_algorithms.push_back(
              static_cast<uint16_t>(notify->data[i] << 8 | notify->data[i + 1]));
        }
        break;
      default:
        break;
    }
  }
  ike_sa->initiator_behind_nat = source_seen && !source_matches;
  ike_sa->responder_behind_nat = destination_seen && !destination_matches;

  absl::StatusOr<IkeSaKeys> keys =
      DeriveIkeSaKeys(ike_sa->transforms, ike_sa->nonce_i, ike_sa->nonce_r, shared->span(),
                      ike_sa->spi_i, ike_sa->spi_r);
  if (!keys.ok()) {
    result.response = NotifyResponse(header, NotifyType::kNoProposalChosen);
    result.error = std::string(keys.status().message());
    return result;
  }
  ike_sa->keys = std::move(*keys);
  absl::StatusOr<std::unique_ptr<SkProtector>> from_initiator = SkProtector::Create(
      ike_sa->transforms, ike_sa->keys.sk_ei.span(), ike_sa->keys.sk_ai.span());
  absl::StatusOr<std::unique_ptr<SkProtector>> to_initiator = SkProtector::Create(
      ike_sa->transforms, ike_sa->keys.sk_er.span(), ike_sa->keys.sk_ar.span());
  if (!from_initiator.ok() || !to_initiator.ok()) {
    result.response = NotifyResponse(header, NotifyType::kNoProposalChosen);
    result.error = "cannot set up SK protection";
    return result;
  }
  ike_sa->from_initiator = std::move(*from_initiator);
  ike_sa->to_initiator = std::move(*to_initiator);

  codec::Message& response = result.response;
  response.header = header;
  response.header.responder_spi = ike_sa->spi_r;
  response.header.initiator = false;
  response.header.response = true;
  codec::SaPayload sa_reply;
  sa_reply.proposals.push_back(
      ToResponseProposal(*selected, codec::ProtocolId::kIke, /*spi=*/{}));
  response.payloads.push_back(codec::Payload{std::move(sa_reply)});
  codec::KePayload ke_reply;
  ke_reply.group = ke->group;
  ke_reply.data.assign((*exchange)->public_value().begin(),
                       (*exchange)->public_value().end());
  response.payloads.push_back(codec::Payload{std::move(ke_reply)});
  codec::NoncePayload nonce_reply;
  nonce_reply.data = ike_sa->nonce_r;
  response.payloads.push_back(codec::Payload{std::move(nonce_reply)});
  response.payloads.push_back(codec::MakeNotify(NotifyType::kNatDetectionSourceIp,
                                     NatDetectionHash(ike_sa->spi_i, ike_sa->spi_r, local)));
  response.payloads.push_back(codec::MakeNotify(NotifyType::kNatDetectionDestinationIp,
                                     NatDetectionHash(ike_sa->spi_i, ike_sa->spi_r, remote)));
  codec::CertReqPayload certreq;
  certreq.encoding = codec::CertEncoding::kX509Signature;
  certreq.authorities.assign(certificate_authorities.begin(), certificate_authorities.end());
  response.payloads.push_back(codec::Payload{std::move(certreq)});
  if (ike_sa->peer_supports_fragmentation) {
    response.payloads.push_back(codec::MakeNotify(NotifyType::kIkev2FragmentationSupported));
  }
  if (wants_signature_hashes) {
    // SHA2-256, SHA2-384, SHA2-512 (RFC 7427 §4).
    response.payloads.push_back(
        codec::MakeNotify(NotifyType::kSignatureHashAlgorithms, {0, 2, 0, 3, 0, 4}));
  }
  result.sa = std::move(ike_sa);
  return result;
}

}  // namespace vpn::ike
