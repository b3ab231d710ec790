#include "ike-service/exchange/create_child_sa.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ike-service/exchange/proposals.h"
#include "ike-service/exchange/traffic_selectors.h"

namespace vpn::ike {
namespace {

using codec::NotifyType;

constexpr size_t kNonceSize = 32;

ExchangeResult Refuse(NotifyType type, std::string note) {
  ExchangeResult result;
  result.payloads.push_back(codec::MakeNotify(type));
  result.outcome = ExchangeOutcome::kDone;
  result.note = std::move(note);
  return result;
}

codec::Bytes SpiBytes(uint32_t spi) {
  return {static_cast<uint8_t>(spi >> 24), static_cast<uint8_t>(spi >> 16),
          static_cast<uint8_t>(spi >> 8), static_cast<uint8_t>(spi)};
}

uint64_t RandomIkeSpi() {
  uint64_t spi = 0;
  while (spi == 0) {
    crypto::GetProvider().RandomBytes(
        absl::MakeSpan(reinterpret_cast<uint8_t*>(&spi), sizeof(spi)));
  }
  return spi;
}

// The Diffie-Hellman part of a request with a KE payload: our public value
// and the shared secret, or an error notify.
struct KeyExchangeResult {
  std::unique_ptr<crypto::KeyExchange> exchange;
  crypto::SecretBytes shared;
};
absl::StatusOr<KeyExchangeResult> Exchange(uint16_t group_id, const codec::KePayload& ke) {
  absl::StatusOr<crypto::KeyExchangeGroup> group = ipsec::KeyExchangeGroupFor(group_id);
  if (!group.ok()) return group.status();
  absl::StatusOr<std::unique_ptr<crypto::KeyExchange>> exchange =
      crypto::GetProvider().NewKeyExchange(*group);
  if (!exchange.ok()) return exchange.status();
  absl::StatusOr<crypto::SecretBytes> shared = (*exchange)->ComputeSharedSecret(ke.data);
  if (!shared.ok()) return shared.status();
  return KeyExchangeResult{std::move(*exchange), std::move(*shared)};
}

codec::Payload KeReply(uint16_t group, const crypto::KeyExchange& exchange) {
  codec::KePayload ke;
  ke.group = static_cast<codec::DhGroup>(group);
  ke.data.assign(exchange.public_value().begin(), exchange.public_value().end());
  return codec::Payload{std::move(ke)};
}

ExchangeResult RekeyIkeSa(IkeSa& sa, const codec::SaPayload& offered,
                          const codec::NoncePayload& nonce, const codec::KePayload* ke,
                          const ResponderPolicy& policy) {
  if (ke == nullptr) return Refuse(NotifyType::kInvalidSyntax, "IKE rekey without KE");
  const uint16_t ke_group = static_cast<uint16_t>(ke->group);
  absl::optional<SelectedProposal> selected =
      SelectProposal(offered.proposals, policy.ike_proposals, codec::ProtocolId::kIke, ke_group);
  if (!selected || selected->spi.size() != 8) {
    return Refuse(NotifyType::kNoProposalChosen, "no acceptable IKE rekey proposal");
  }
  if (selected->transforms.key_exchange != ke_group) {
    const uint16_t group = selected->transforms.key_exchange;
    ExchangeResult result = Refuse(NotifyType::kInvalidKePayload, "IKE rekey KE group");
    result.payloads[0].As<codec::NotifyPayload>()->data = {
        static_cast<uint8_t>(group >> 8), static_cast<uint8_t>(group)};
    return result;
  }
  absl::StatusOr<KeyExchangeResult> dh = Exchange(ke_group, *ke);
  if (!dh.ok()) return Refuse(NotifyType::kInvalidSyntax, std::string(dh.status().message()));

  auto rekeyed = std::make_unique<IkeSa>();
  uint64_t spi_i = 0;
  for (uint8_t byte : selected->spi) spi_i = (spi_i << 8) | byte;
  rekeyed->spi_i = spi_i;
  rekeyed->spi_r = RandomIkeSpi();
  rekeyed->transforms = selected->transforms;
  rekeyed->nonce_i = nonce.data;
  rekeyed->nonce_r.resize(kNonceSize);
  crypto::GetProvider().RandomBytes(absl::MakeSpan(rekeyed->nonce_r));
  absl::StatusOr<IkeSaKeys> keys = DeriveRekeyedIkeSaKeys(
      sa.transforms.prf, sa.keys.sk_d.span(), rekeyed->transforms, rekeyed->nonce_i,
      rekeyed->nonce_r, dh->shared.span(), rekeyed->spi_i, rekeyed->spi_r);
  if (!keys.ok()) return Refuse(NotifyType::kNoProposalChosen, std::string(keys.status().message()));
  rekeyed->keys = std::move(*keys);
  auto from_initiator = SkProtector::Create(rekeyed->transforms, rekeyed->keys.sk_ei.span(),
                                            rekeyed->keys.sk_ai.span());
  auto to_initiator = SkProtector::Create(rekeyed->transforms, rekeyed->keys.sk_er.span(),
                                          rekeyed->keys.sk_ar.span());
  if (!from_initiator.ok() || !to_initiator.ok()) {
    return Refuse(NotifyType::kNoProposalChosen, "cannot set up SK protection");
  }
  rekeyed->from_initiator = std::move(*from_initiator);
  rekeyed->to_initiator = std::move(*to_initiator);
  // Everything else moves to the new SA (§2.18): identities, addresses,
  // virtual IPs and CHILD SAs. The old SA waits for the client's DELETE.
  rekeyed->phase = IkeSa::Phase::kEstablished;
  rekeyed->local = sa.local;
  rekeyed->remote = sa.remote;
  rekeyed->udp_encapsulated = sa.udp_encapsulated;
  rekeyed->forwarder = sa.forwarder;
  rekeyed->initiator_behind_nat = sa.initiator_behind_nat;
  rekeyed->path_generation = sa.path_generation;  // the same path, still authorized
  rekeyed->responder_behind_nat = sa.responder_behind_nat;
  rekeyed->peer_supports_fragmentation = sa.peer_supports_fragmentation;
  rekeyed->peer_hash_algorithms = sa.peer_hash_algorithms;
  rekeyed->mobike = sa.mobike;
  rekeyed->next_request_id = 0;
  rekeyed->idi = sa.idi;
  rekeyed->idr_body = sa.idr_body;
  rekeyed->uses_eap = sa.uses_eap;
  rekeyed->eap_identity = sa.eap_identity;
  rekeyed->certificate_subject = sa.certificate_subject;
  rekeyed->virtual_ips = std::move(sa.virtual_ips);
  rekeyed->virtual_ip_leases = std::move(sa.virtual_ip_leases);
  sa.virtual_ips.clear();
  sa.virtual_ip_leases.clear();
  rekeyed->children = std::move(sa.children);
  sa.children.clear();
  rekeyed->created = rekeyed->last_seen = absl::Now();

  ExchangeResult result;
  codec::SaPayload reply;
  codec::Bytes our_spi(8);
  for (int k = 0; k < 8; ++k) our_spi[k] = static_cast<uint8_t>(rekeyed->spi_r >> (56 - 8 * k));
  reply.proposals.push_back(ToResponseProposal(*selected, codec::ProtocolId::kIke, our_spi));
  result.payloads.push_back(codec::Payload{std::move(reply)});
  codec::NoncePayload nonce_reply;
  nonce_reply.data = rekeyed->nonce_r;
  result.payloads.push_back(codec::Payload{std::move(nonce_reply)});
  result.payloads.push_back(KeReply(ke_group, *dh->exchange));
  result.outcome = ExchangeOutcome::kDone;
  result.note = "IKE SA rekeyed";
  result.rekeyed = std::move(rekeyed);
  return result;
}

}  // namespace

uint32_t RandomChildSpi() {
  uint32_t spi = 0;
  while (spi < 256) {
    crypto::GetProvider().RandomBytes(
        absl::MakeSpan(reinterpret_cast<uint8_t*>(&spi), sizeof(spi)));
  }
  return spi;
}

ExchangeResult HandleCreateChildSa(IkeSa& sa, const std::vector<codec::Payload>& request,
                                   const ResponderPolicy& policy) {
  if (sa.phase != IkeSa::Phase::kEstablished) {
    return Refuse(NotifyType::kInvalidSyntax, "CREATE_CHILD_SA before IKE_AUTH completed");
  }
  const codec::SaPayload* offered = codec::FindPayload<codec::SaPayload>(request);
  const codec::NoncePayload* nonce = codec::FindPayload<codec::NoncePayload>(request);
  const codec::KePayload* ke = codec::FindPayload<codec::KePayload>(request);
  if (offered == nullptr || nonce == nullptr || offered->proposals.empty()) {
    return Refuse(NotifyType::kInvalidSyntax, "CREATE_CHILD_SA without SA or Nonce");
  }
  if (offered->proposals.front().protocol_id == codec::ProtocolId::kIke) {
    return RekeyIkeSa(sa, *offered, *nonce, ke, policy);
  }

  const codec::TsiPayload* tsi = codec::FindPayload<codec::TsiPayload>(request);
  const codec::TsrPayload* tsr = codec::FindPayload<codec::TsrPayload>(request);
  if (tsi == nullptr || tsr == nullptr) {
    return Refuse(NotifyType::kInvalidSyntax, "CREATE_CHILD_SA without TSi/TSr");
  }
  const uint16_t ke_group = ke != nullptr ? static_cast<uint16_t>(ke->group) : 0;
  absl::optional<SelectedProposal> selected = SelectProposal(
      offered->proposals, policy.esp_proposals, codec::ProtocolId::kEsp, ke_group);
  if (!selected || selected->spi.size() != 4) {
    return Refuse(NotifyType::kNoProposalChosen, "no acceptable ESP proposal");
  }
  std::vector<codec::TrafficSelector> client_side;
  for (const std::string& ip : sa.virtual_ips) client_side.push_back(HostSelector(ip));
  if (client_side.empty()) {
    client_side.push_back(HostSelector(std::string(
        reinterpret_cast<const char*>(sa.remote.address_bytes().data()),
        sa.remote.address_bytes().size())));
  }
  std::vector<codec::TrafficSelector> narrowed_i = Narrow(tsi->selectors, client_side);
  std::vector<codec::TrafficSelector> narrowed_r = Narrow(tsr->selectors, policy.local_ts);
  if (narrowed_i.empty() || narrowed_r.empty()) {
    return Refuse(NotifyType::kTsUnacceptable, "TS_UNACCEPTABLE");
  }

  crypto::Bytes nonce_r(kNonceSize);
  crypto::GetProvider().RandomBytes(absl::MakeSpan(nonce_r));
  absl::optional<KeyExchangeResult> dh;
  if (ke != nullptr) {
    absl::StatusOr<KeyExchangeResult> computed = Exchange(ke_group, *ke);
    if (!computed.ok()) {
      return Refuse(NotifyType::kInvalidSyntax, std::string(computed.status().message()));
    }
    dh = std::move(*computed);
  }
  absl::StatusOr<ChildSaKeys> keys = DeriveChildSaKeys(
      sa.transforms.prf, sa.keys.sk_d.span(), selected->transforms,
      dh ? dh->shared.span() : crypto::ByteSpan(), nonce->data, nonce_r);
  if (!keys.ok()) return Refuse(NotifyType::kNoProposalChosen, std::string(keys.status().message()));

  ChildSaState child;
  child.inbound_spi = RandomChildSpi();
  for (uint8_t byte : selected->spi) child.outbound_spi = (child.outbound_spi << 8) | byte;
  child.transforms = selected->transforms;
  child.keys = std::move(*keys);
  child.remote_ts = narrowed_i;
  child.local_ts = narrowed_r;
  child.created = absl::Now();

  ExchangeResult result;
  result.outcome = ExchangeOutcome::kDone;
  result.note = "CHILD SA created";
  if (codec::FindNotify(request, NotifyType::kRekeySa) != nullptr) {
    result.note = "CHILD SA rekeyed";  // the old one stays until deleted
  }
  codec::SaPayload reply;
  reply.proposals.push_back(
      ToResponseProposal(*selected, codec::ProtocolId::kEsp, SpiBytes(child.inbound_spi)));
  result.payloads.push_back(codec::Payload{std::move(reply)});
  codec::NoncePayload nonce_reply;
  nonce_reply.data = std::move(nonce_r);
  result.payloads.push_back(codec::Payload{std::move(nonce_reply)});
  if (dh) result.payloads.push_back(KeReply(ke_group, *dh->exchange));
  codec::TsiPayload tsi_reply;
  tsi_reply.selectors = std::move(narrowed_i);
  result.payloads.push_back(codec::Payload{std::move(tsi_reply)});
  codec::TsrPayload tsr_reply;
  tsr_reply.selectors = std::move(narrowed_r);
  result.payloads.push_back(codec::Payload{std::move(tsr_reply)});
  result.added_children.push_back(child.inbound_spi);
  sa.children.push_back(std::move(child));
  return result;
}

}  // namespace vpn::ike
