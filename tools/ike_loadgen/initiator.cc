#include "tools/ike_loadgen/initiator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ike-service/exchange/nat_detection.h"
#include "ike-service/sa/keymat.h"

namespace vpn::loadgen {
namespace {

namespace codec = ike::codec;
using codec::NotifyType;
using codec::Payload;

constexpr int kMaxCookieRetries = 3;
constexpr int kMaxKeRetries = 2;
constexpr size_t kNonceSize = 32;

const codec::NotifyPayload* FirstError(const std::vector<Payload>& payloads) {
  for (const Payload& payload : payloads) {
    const auto* notify = payload.As<codec::NotifyPayload>();
    if (notify != nullptr && notify->is_error()) return notify;
  }
  return nullptr;
}

codec::TrafficSelector AllIpv4() {
  codec::TrafficSelector ts;
  ts.type = codec::TsType::kIpv4AddrRange;
  ts.starting_address = {0, 0, 0, 0};
  ts.ending_address = {255, 255, 255, 255};
  return ts;
}

codec::Bytes RandomBytes(size_t size) {
  codec::Bytes out(size);
  crypto::GetProvider().RandomBytes(absl::MakeSpan(out));
  return out;
}

}  // namespace

absl::StatusOr<ProposalSet> ParseProposalSet(absl::string_view text, ike::ProposalKind kind) {
  ProposalSet set;
  for (absl::string_view one : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    absl::StatusOr<ike::ProposalPolicy> policy = ike::ParseProposalPolicy(one, kind);
    if (!policy.ok()) return policy.status();
    codec::Proposal proposal;
    proposal.number = static_cast<uint8_t>(set.proposals.size() + 1);
    proposal.protocol_id =
        kind == ike::ProposalKind::kIke ? codec::ProtocolId::kIke : codec::ProtocolId::kEsp;
    for (const auto& [id, bits] : policy->encryption) {
      proposal.transforms.push_back(codec::Transform::Encr(
          static_cast<codec::EncrId>(id),
          bits != 0 && id != 3 ? absl::optional<uint16_t>(bits) : absl::nullopt));
    }
    for (uint16_t id : policy->prf) {
      proposal.transforms.push_back(codec::Transform::Prf(static_cast<codec::PrfId>(id)));
    }
    for (uint16_t id : policy->integrity) {
      proposal.transforms.push_back(codec::Transform::Integ(static_cast<codec::IntegId>(id)));
    }
    for (uint16_t id : policy->key_exchange) {
      proposal.transforms.push_back(codec::Transform::Dh(static_cast<codec::DhGroup>(id)));
    }
    if (kind == ike::ProposalKind::kEsp) {
      if (policy->esn.empty()) {
        proposal.transforms.push_back(codec::Transform::Esn(codec::EsnId::kNoEsn));
      }
      for (uint16_t id : policy->esn) {
        proposal.transforms.push_back(codec::Transform::Esn(static_cast<codec::EsnId>(id)));
      }
    } else if (policy->key_exchange.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("IKE proposal without a group: ", one));
    }
    set.proposals.push_back(std::move(proposal));
    set.policies.push_back(*std::move(policy));
  }
  if (set.proposals.empty()) return absl::InvalidArgumentError("no proposals");
  return set;
}

absl::StatusOr<NamedProposals> ProposalsByName(absl::string_view name) {
  if (name == "windows") return NamedProposals{"aes256-sha1-prfsha1-modp1024", "aes256-sha1"};
  if (name == "modern") return NamedProposals{"aes256gcm16-prfsha384-x25519", "aes256gcm16"};
  return absl::InvalidArgumentError(
      absl::StrCat("unknown proposal set '", name, "' (windows, modern)"));
}

std::string NotifyName(NotifyType type) {
  switch (type) {
    case NotifyType::kUnsupportedCriticalPayload: return "UNSUPPORTED_CRITICAL_PAYLOAD";
    case NotifyType::kInvalidIkeSpi: return "INVALID_IKE_SPI";
    case NotifyType::kInvalidMajorVersion: return "INVALID_MAJOR_VERSION";
    case NotifyType::kInvalidSyntax: return "INVALID_SYNTAX";
    case NotifyType::kInvalidMessageId: return "INVALID_MESSAGE_ID";
    case NotifyType::kInvalidSpi: return "INVALID_SPI";
    case NotifyType::kNoProposalChosen: return "NO_PROPOSAL_CHOSEN";
    case NotifyType::kInvalidKePayload: return "INVALID_KE_PAYLOAD";
    case NotifyType::kAuthenticationFailed: return "AUTHENTICATION_FAILED";
    case NotifyType::kSinglePairRequired: return "SINGLE_PAIR_REQUIRED";
    case NotifyType::kNoAdditionalSas: return "NO_ADDITIONAL_SAS";
    case NotifyType::kInternalAddressFailure: return "INTERNAL_ADDRESS_FAILURE";
    case NotifyType::kFailedCpRequired: return "FAILED_CP_REQUIRED";
    case NotifyType::kTsUnacceptable: return "TS_UNACCEPTABLE";
    case NotifyType::kInvalidSelectors: return "INVALID_SELECTORS";
    case NotifyType::kTemporaryFailure: return "TEMPORARY_FAILURE";
    case NotifyType::kChildSaNotFound: return "CHILD_SA_NOT_FOUND";
    default: return absl::StrCat("NOTIFY_", static_cast<uint16_t>(type));
  }
}

std::string Initiator::phase() const {
  switch (state_) {
    case State::kIdle: return "idle";
    case State::kInit: return "IKE_SA_INIT";
    case State::kAuth: return absl::StrCat("IKE_AUTH#", auth_round_);
    case State::kEstablished: return "established";
    case State::kDeleting: return "INFORMATIONAL(delete)";
    case State::kDone: return "done";
    case State::kFailed: return "failed";
  }
  return "?";
}

absl::StatusOr<crypto::Bytes> Initiator::Start(uint64_t spi_i, const net::IpEndpoint& local,
                                               const net::IpEndpoint& remote) {
  const InitiatorConfig* config = config_;
  *this = Initiator(config);
  spi_i_ = spi_i;
  local_ = local;
  remote_ = remote;
  for (const codec::Transform& t : config_->ike.proposals.front().transforms) {
    if (t.type == codec::TransformType::kDh) {
      group_ = t.id;
      break;
    }
  }
  absl::StatusOr<crypto::KeyExchangeGroup> group = ipsec::KeyExchangeGroupFor(group_);
  if (!group.ok()) return group.status();
  absl::StatusOr<std::unique_ptr<crypto::KeyExchange>> kex =
      crypto::GetProvider().NewKeyExchange(*group);
  if (!kex.ok()) return kex.status();
  kex_ = *std::move(kex);
  nonce_i_ = RandomBytes(kNonceSize);
  state_ = State::kInit;
  init_request_ = BuildInitRequest();
  last_request_ = init_request_;
  ++request_count_;
  awaiting_id_ = 0;
  next_message_id_ = 1;
  return init_request_;
}

crypto::Bytes Initiator::BuildInitRequest() {
  codec::Message message;
  message.header.initiator_spi = spi_i_;
  message.header.exchange_type = codec::ExchangeType::kIkeSaInit;
  message.header.initiator = true;
  if (!cookie_.empty()) message.payloads.push_back(codec::MakeNotify(NotifyType::kCookie, cookie_));
  codec::SaPayload sa;
  sa.proposals = config_->ike.proposals;
  message.payloads.push_back(Payload{std::move(sa)});
  codec::KePayload ke;
  ke.group = static_cast<codec::DhGroup>(group_);
  ke.data.assign(kex_->public_value().begin(), kex_->public_value().end());
  message.payloads.push_back(Payload{std::move(ke)});
  message.payloads.push_back(Payload{codec::NoncePayload{nonce_i_}});
  crypto::Bytes source = ike::NatDetectionHash(spi_i_, 0, local_);
  if (config_->fake_nat) source[0] ^= 0xff;  // as strongSwan with libipsec does
  message.payloads.push_back(codec::MakeNotify(NotifyType::kNatDetectionSourceIp, std::move(source)));
  message.payloads.push_back(
      codec::MakeNotify(NotifyType::kNatDetectionDestinationIp, ike::NatDetectionHash(spi_i_, 0, remote_)));
  if (config_->fragmentation) {
    message.payloads.push_back(codec::MakeNotify(NotifyType::kIkev2FragmentationSupported));
  }
  if (config_->signature_hash_algorithms) {
    message.payloads.push_back(
        codec::MakeNotify(NotifyType::kSignatureHashAlgorithms, {0, 2, 0, 3, 0, 4}));  // SHA2-256/384/512
  }
  return codec::EncodeMessage(message);
}

void Initiator::Fail(std::string reason) {
  state_ = State::kFailed;
  failure_ = std::move(reason);
}

crypto::Bytes Initiator::FailWith(std::string reason) {
  Fail(std::move(reason));
  return {};
}

crypto::Bytes Initiator::Receive(crypto::ByteSpan datagram) {
  if (state_ == State::kIdle || state_ == State::kDone || state_ == State::kFailed) return {};
  codec::DecodeResult<codec::Message> decoded = codec::DecodeMessage(datagram);
  if (!decoded.ok()) return {};  // garbage: wait for a retransmit
  const codec::Message& message = *decoded;
  const codec::Header& header = message.header;
  if (header.initiator_spi != spi_i_) return {};

  if (!header.response) {
    // A request from the responder (DPD, delete): needs the keys.
    if (header.initiator || state_ == State::kInit || inbound_ == nullptr ||
        header.responder_spi != spi_r_) {
      return {};
    }
    absl::StatusOr<absl::optional<std::vector<Payload>>> payloads = Unprotect(message, datagram);
    if (!payloads.ok() || !payloads->has_value()) return {};
    return HandlePeerRequest(message, **payloads);
  }
  if (header.message_id != awaiting_id_) return {};  // late retransmit answer

  switch (state_) {
    case State::kInit:
      if (header.exchange_type != codec::ExchangeType::kIkeSaInit) return {};
      return HandleInitResponse(message, datagram);
    case State::kAuth:
    case State::kDeleting: {
      const auto expected = state_ == State::kAuth ? codec::ExchangeType::kIkeAuth
                                                   : codec::ExchangeType::kInformational;
      if (header.exchange_type != expected || header.responder_spi != spi_r_) return {};
      if (message.payloads.empty() ||
          (message.payloads.back().As<codec::SkPayload>() == nullptr &&
           message.payloads.back().As<codec::SkfPayload>() == nullptr)) {
        const codec::NotifyPayload* error = FirstError(message.payloads);
        return FailWith(absl::StrCat(phase(), ": unprotected response",
                                     error != nullptr ? " " + NotifyName(error->type) : ""));
      }
      absl::StatusOr<absl::optional<std::vector<Payload>>> payloads = Unprotect(message, datagram);
      if (!payloads.ok()) {
        return FailWith(absl::StrCat(phase(), ": ", payloads.status().message()));
      }
      if (!payloads->has_value()) return {};  // more fragments to come
      if (state_ == State::kDeleting) {
        state_ = State::kDone;
        return {};
      }
      return HandleAuthResponse(**payloads);
    }
    default: return {};
  }
}

crypto::Bytes Initiator::HandleInitResponse(const codec::Message& message,
                                            crypto::ByteSpan datagram) {
  const std::vector<Payload>& payloads = message.payloads;
  if (const auto* cookie = codec::FindNotify(payloads, NotifyType::kCookie)) {
    if (++cookie_retries_ > kMaxCookieRetries) return FailWith("IKE_SA_INIT: COOKIE loop");
    cookie_ = cookie->data;
    init_request_ = BuildInitRequest();
    last_request_ = init_request_;
    ++request_count_;
    return init_request_;
  }
  if (const auto* invalid_ke = codec::FindNotify(payloads, NotifyType::kInvalidKePayload)) {
    if (invalid_ke->data.size() != 2 || ++ke_retries_ > kMaxKeRetries) {
      return FailWith("IKE_SA_INIT: INVALID_KE_PAYLOAD");
    }
    const uint16_t wanted = (uint16_t{invalid_ke->data[0]} << 8) | invalid_ke->data[1];
    bool offered = false;
    for (const ike::ProposalPolicy& policy : config_->ike.policies) {
      offered |= std::count(policy.key_exchange.begin(), policy.key_exchange.end(), wanted) > 0;
    }
    absl::StatusOr<crypto::KeyExchangeGroup> group = ipsec::KeyExchangeGroupFor(wanted);
    if (!offered || !group.ok()) {
      return FailWith(absl::StrCat("IKE_SA_INIT: INVALID_KE_PAYLOAD asks for group ", wanted));
    }
    absl::StatusOr<std::unique_ptr<crypto::KeyExchange>> kex =
        crypto::GetProvider().NewKeyExchange(*group);
    if (!kex.ok()) return FailWith("IKE_SA_INIT: key exchange");
    kex_ = *std::move(kex);
    group_ = wanted;
    init_request_ = BuildInitRequest();
    last_request_ = init_request_;
    ++request_count_;
    return init_request_;
  }
  if (const codec::NotifyPayload* error = FirstError(payloads)) {
    return FailWith("IKE_SA_INIT: " + NotifyName(error->type));
  }
  const auto* sa = codec::FindPayload<codec::SaPayload>(payloads);
  const auto* ke = codec::FindPayload<codec::KePayload>(payloads);
  const auto* nonce = codec::FindPayload<codec::NoncePayload>(payloads);
  if (sa == nullptr || ke == nullptr || nonce == nullptr || message.header.responder_spi == 0) {
    return FailWith("IKE_SA_INIT: response lacks SA, KE, Nonce or SPIr");
  }
  absl::optional<ike::SelectedProposal> chosen =
      ike::SelectProposal(sa->proposals, config_->ike.policies, codec::ProtocolId::kIke, group_);
  if (!chosen || sa->proposals.size() != 1 || chosen->transforms.key_exchange != group_ ||
      static_cast<uint16_t>(ke->group) != group_) {
    return FailWith("IKE_SA_INIT: responder chose a proposal we did not offer");
  }
  transforms_ = chosen->transforms;
  spi_r_ = message.header.responder_spi;
  nonce_r_ = nonce->data;
  init_response_.assign(datagram.begin(), datagram.end());
  absl::StatusOr<crypto::SecretBytes> shared = kex_->ComputeSharedSecret(ke->data);
  if (!shared.ok()) return FailWith("IKE_SA_INIT: bad KE from the responder");
  absl::StatusOr<ike::IkeSaKeys> keys =
      ike::DeriveIkeSaKeys(transforms_, nonce_i_, nonce_r_, shared->span(), spi_i_, spi_r_);
  if (!keys.ok()) return FailWith("IKE_SA_INIT: key derivation");
  keys_ = *std::move(keys);
  auto outbound = ike::SkProtector::Create(transforms_, keys_.sk_ei.span(), keys_.sk_ai.span());
  auto inbound = ike::SkProtector::Create(transforms_, keys_.sk_er.span(), keys_.sk_ar.span());
  if (!outbound.ok() || !inbound.ok()) return FailWith("IKE_SA_INIT: SK transforms");
  outbound_ = *std::move(outbound);
  inbound_ = *std::move(inbound);

  // NAT detection (RFC 7296 §2.23): either hash differing means a NAT.
  bool nat = config_->fake_nat;
  if (const auto* source = codec::FindNotify(payloads, NotifyType::kNatDetectionSourceIp)) {
    nat |= source->data != ike::NatDetectionHash(spi_i_, spi_r_, remote_);
  }
  if (const auto* destination = codec::FindNotify(payloads, NotifyType::kNatDetectionDestinationIp)) {
    nat |= destination->data != ike::NatDetectionHash(spi_i_, spi_r_, local_);
  }
  udp_encapsulation_ = nat;

  // The first IKE_AUTH: no AUTH, so the responder starts EAP (§2.16).
  std::vector<Payload> request;
  codec::IdiPayload idi;
  idi.id_type = local_.is_v6() ? codec::IdType::kIpv6Addr : codec::IdType::kIpv4Addr;
  idi.data.assign(local_.address_bytes().begin(), local_.address_bytes().end());
  idi_body_ = codec::IdPayloadBody(idi.id_type, idi.data);
  request.push_back(Payload{std::move(idi)});
  if (!config_->idr_fqdn.empty()) {
    codec::IdrPayload idr;
    idr.id_type = codec::IdType::kFqdn;
    idr.data.assign(config_->idr_fqdn.begin(), config_->idr_fqdn.end());
    request.push_back(Payload{std::move(idr)});
  }
  codec::ConfigPayload cp;
  cp.cfg_type = codec::CfgType::kRequest;
  for (auto type :
       {codec::ConfigAttributeType::kInternalIp4Address,
        codec::ConfigAttributeType::kInternalIp4Dns, codec::ConfigAttributeType::kInternalIp4Nbns,
        codec::ConfigAttributeType::kMsInternalIp4Server}) {
    cp.attributes.push_back({type, {}});
  }
  request.push_back(Payload{std::move(cp)});
  codec::SaPayload child;
  child.proposals = config_->esp.proposals;
  do {
    esp_spi_ = RandomBytes(4);
  } while (esp_spi_[0] == 0 && esp_spi_[1] == 0 && esp_spi_[2] == 0);  // 1-255 reserved
  for (codec::Proposal& proposal : child.proposals) proposal.spi = esp_spi_;
  request.push_back(Payload{std::move(child)});
  request.push_back(Payload{codec::TsiPayload{{AllIpv4()}}});
  request.push_back(Payload{codec::TsrPayload{{AllIpv4()}}});
  if (config_->mobike) request.push_back(codec::MakeNotify(NotifyType::kMobikeSupported));
  eap_ = std::make_unique<EapMsChapV2Peer>(config_->eap_identity, config_->password);
  state_ = State::kAuth;
  return SendRequest(codec::ExchangeType::kIkeAuth, request);
}

crypto::Bytes Initiator::HandleAuthResponse(const std::vector<Payload>& payloads) {
  const bool first = idr_body_.empty();
  const auto* auth = codec::FindPayload<codec::AuthPayload>(payloads);
  if (const codec::NotifyPayload* error = FirstError(payloads)) {
    return FailWith(absl::StrCat(sent_final_auth_ && auth != nullptr ? "CHILD_SA" : phase(), ": ",
                                 NotifyName(error->type)));
  }
  if (first) {
    const auto* idr = codec::FindPayload<codec::IdrPayload>(payloads);
    if (idr == nullptr || auth == nullptr) return FailWith(phase() + ": no IDr or AUTH");
    idr_body_ = codec::IdPayloadBody(idr->id_type, idr->data);
    if (config_->verify_signature) {
      if (absl::Status checked = CheckResponderSignature(payloads); !checked.ok()) {
        return FailWith(absl::StrCat(phase(), ": responder AUTH: ", checked.message()));
      }
    }
  }
  if (sent_final_auth_) {
    if (absl::Status checked = CheckFinalResponse(payloads); !checked.ok()) {
      return FailWith(absl::StrCat(phase(), ": ", checked.message()));
    }
    state_ = State::kEstablished;
    return {};
  }
  const auto* eap = codec::FindPayload<codec::EapPayload>(payloads);
  if (eap == nullptr) return FailWith(phase() + ": no EAP payload");
  absl::StatusOr<EapMsChapV2Peer::Step> step = eap_->Process(eap->message);
  if (!step.ok()) return FailWith(absl::StrCat(phase(), ": EAP: ", step.status().message()));
  switch (step->kind) {
    case EapMsChapV2Peer::Step::Kind::kRespond: {
      codec::EapPayload answer;
      answer.message = std::move(step->response);
      return SendRequest(codec::ExchangeType::kIkeAuth, {Payload{std::move(answer)}});
    }
    case EapMsChapV2Peer::Step::Kind::kSuccess: {
      // AUTH = prf(prf(MSK, "Key Pad for IKEv2"), InitiatorSignedOctets).
      absl::StatusOr<crypto::Bytes> octets = ike::SignedOctets(
          transforms_.prf, init_request_, nonce_r_, keys_.sk_pi.span(), idi_body_);
      if (!octets.ok()) return FailWith("AUTH octets");
      absl::StatusOr<crypto::Bytes> mac =
          ike::SharedKeyAuth(transforms_.prf, eap_->msk().span(), *octets);
      if (!mac.ok()) return FailWith("AUTH");
      codec::AuthPayload our_auth;
      our_auth.method = codec::AuthMethod::kSharedKeyMic;
      our_auth.data = *std::move(mac);
      sent_final_auth_ = true;
      return SendRequest(codec::ExchangeType::kIkeAuth, {Payload{std::move(our_auth)}});
    }
    case EapMsChapV2Peer::Step::Kind::kFailure:
      return FailWith(absl::StrCat(phase(), ": ", step->reason));
  }
  return {};
}

absl::Status Initiator::CheckResponderSignature(const std::vector<Payload>& payloads) {
  const crypto::Provider& provider = crypto::GetProvider();
  std::vector<std::unique_ptr<crypto::Certificate>> certs;
  for (const Payload& payload : payloads) {
    const auto* cert = payload.As<codec::CertPayload>();
    if (cert == nullptr || cert->encoding != codec::CertEncoding::kX509Signature) continue;
    absl::StatusOr<std::unique_ptr<crypto::Certificate>> parsed =
        provider.ParseCertificateDer(cert->data);
    if (!parsed.ok()) return parsed.status();
    certs.push_back(*std::move(parsed));
  }
  if (certs.empty()) return absl::InvalidArgumentError("no CERT");
  const auto* auth = codec::FindPayload<codec::AuthPayload>(payloads);
  crypto::SignatureScheme scheme;
  crypto::ByteSpan signature = auth->data;
  switch (auth->method) {
    case codec::AuthMethod::kRsaSignature: scheme = crypto::SignatureScheme::kRsaPkcs1Sha1; break;
    case codec::AuthMethod::kEcdsaSha256P256:
      scheme = crypto::SignatureScheme::kEcdsaP256Sha256Raw;
      break;
    case codec::AuthMethod::kEcdsaSha384P384:
      scheme = crypto::SignatureScheme::kEcdsaP384Sha384Raw;
      break;
    case codec::AuthMethod::kEcdsaSha512P521:
      scheme = crypto::SignatureScheme::kEcdsaP521Sha512Raw;
      break;
    case codec::AuthMethod::kDigitalSignature: {
      // RFC 7427 §3: length, AlgorithmIdentifier, signature.
      if (auth->data.empty() || auth->data.size() < 1 + size_t{auth->data[0]}) {
        return absl::InvalidArgumentError("short RFC 7427 AUTH");
      }
      const crypto::ByteSpan id(auth->data.data() + 1, auth->data[0]);
      absl::StatusOr<crypto::SignatureScheme> parsed =
          crypto::SignatureSchemeFromAlgorithmIdentifier(id);
      if (!parsed.ok()) return parsed.status();
      scheme = *parsed;
      signature = crypto::ByteSpan(auth->data).subspan(1 + auth->data[0]);
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("AUTH method ", static_cast<int>(auth->method)));
  }
  absl::StatusOr<crypto::Bytes> octets =
      ike::SignedOctets(transforms_.prf, init_response_, nonce_i_, keys_.sk_pr.span(), idr_body_);
  if (!octets.ok()) return octets.status();
  if (absl::Status ok = certs.front()->public_key()->Verify(scheme, *octets, signature); !ok.ok()) {
    return ok;
  }
  if (config_->trust != nullptr) {
    std::vector<const crypto::Certificate*> intermediates;
    for (size_t i = 1; i < certs.size(); ++i) intermediates.push_back(certs[i].get());
    return config_->trust->Verify(*certs.front(), intermediates, crypto::VerifyOptions());
  }
  return absl::OkStatus();
}

absl::Status Initiator::CheckFinalResponse(const std::vector<Payload>& payloads) {
  const auto* auth = codec::FindPayload<codec::AuthPayload>(payloads);
  if (auth == nullptr) return absl::InvalidArgumentError("no AUTH in the last response");
  absl::StatusOr<crypto::Bytes> octets =
      ike::SignedOctets(transforms_.prf, init_response_, nonce_i_, keys_.sk_pr.span(), idr_body_);
  if (!octets.ok()) return octets.status();
  absl::StatusOr<crypto::Bytes> expected =
      ike::SharedKeyAuth(transforms_.prf, eap_->msk().span(), *octets);
  if (!expected.ok()) return expected.status();
  if (auth->method != codec::AuthMethod::kSharedKeyMic ||
      !crypto::ConstantTimeEquals(*expected, auth->data)) {
    return absl::PermissionDeniedError("the responder's MSK AUTH does not verify");
  }
  const auto* cp = codec::FindPayload<codec::ConfigPayload>(payloads);
  if (cp == nullptr || cp->cfg_type != codec::CfgType::kReply) {
    return absl::InvalidArgumentError("no CP reply");
  }
  for (const codec::ConfigAttribute& attribute : cp->attributes) {
    if (attribute.type == codec::ConfigAttributeType::kInternalIp4Address &&
        attribute.value.size() == 4) {
      virtual_ip_ = absl::StrCat(attribute.value[0], ".", attribute.value[1], ".",
                                 attribute.value[2], ".", attribute.value[3]);
    }
  }
  if (virtual_ip_.empty()) return absl::InvalidArgumentError("no INTERNAL_IP4_ADDRESS");
  const auto* sa = codec::FindPayload<codec::SaPayload>(payloads);
  if (sa == nullptr || codec::FindPayload<codec::TsiPayload>(payloads) == nullptr ||
      codec::FindPayload<codec::TsrPayload>(payloads) == nullptr) {
    return absl::InvalidArgumentError("no CHILD SA (SA, TSi, TSr)");
  }
  absl::optional<ike::SelectedProposal> chosen =
      ike::SelectProposal(sa->proposals, config_->esp.policies, codec::ProtocolId::kEsp);
  if (!chosen || sa->proposals.size() != 1 || chosen->spi.size() != 4) {
    return absl::InvalidArgumentError("responder chose an ESP proposal we did not offer");
  }
  esp_transforms_ = chosen->transforms;
  absl::StatusOr<ike::ChildSaKeys> child = ike::DeriveChildSaKeys(
      transforms_.prf, keys_.sk_d.span(), esp_transforms_, {}, nonce_i_, nonce_r_);
  return child.status();
}

crypto::Bytes Initiator::HandlePeerRequest(const codec::Message& message,
                                           const std::vector<Payload>& payloads) {
  crypto::Bytes answer = Protect(message.header.exchange_type, true, message.header.message_id, {});
  for (const Payload& payload : payloads) {
    const auto* del = payload.As<codec::DeletePayload>();
    if (del == nullptr || del->protocol_id != codec::ProtocolId::kIke) continue;
    if (state_ == State::kDeleting) {
      state_ = State::kDone;
    } else if (state_ != State::kEstablished) {
      Fail(phase() + ": deleted by the responder");
    }
  }
  return answer;
}

crypto::Bytes Initiator::BeginDelete() {
  codec::DeletePayload del;
  del.protocol_id = codec::ProtocolId::kIke;
  state_ = State::kDeleting;
  return SendRequest(codec::ExchangeType::kInformational, {Payload{std::move(del)}});
}

crypto::Bytes Initiator::SendRequest(codec::ExchangeType exchange,
                                     const std::vector<Payload>& payloads) {
  awaiting_id_ = next_message_id_++;
  if (exchange == codec::ExchangeType::kIkeAuth) ++auth_round_;
  last_request_ = Protect(exchange, false, awaiting_id_, payloads);
  ++request_count_;
  if (last_request_.empty()) return FailWith(phase() + ": cannot encode the request");
  return last_request_;
}

crypto::Bytes Initiator::Protect(codec::ExchangeType exchange, bool response, uint32_t message_id,
                                 const std::vector<Payload>& payloads) {
  const crypto::Bytes inner =
      payloads.empty() ? crypto::Bytes() : codec::EncodePayloadChain(payloads);
  if (!payloads.empty() && inner.empty()) return {};
  codec::Header header;
  header.initiator_spi = spi_i_;
  header.responder_spi = spi_r_;
  header.exchange_type = exchange;
  header.initiator = true;
  header.response = response;
  header.message_id = message_id;
  codec::EncryptedSizes sizes;
  sizes.iv_size = outbound_->iv_size();
  sizes.icv_size = outbound_->icv_size();
  sizes.ciphertext_size = outbound_->SealedSize(inner.size()) - sizes.iv_size - sizes.icv_size;
  crypto::Bytes datagram = codec::EncodeSkPrefix(
      header, payloads.empty() ? codec::PayloadType::kNone : payloads.front().type(), sizes);
  if (datagram.empty()) return {};
  absl::StatusOr<crypto::Bytes> sealed = outbound_->Seal(datagram, inner);
  if (!sealed.ok()) return {};
  datagram.insert(datagram.end(), sealed->begin(), sealed->end());
  return datagram;
}

absl::StatusOr<absl::optional<std::vector<Payload>>> Initiator::Unprotect(
    const codec::Message& message, crypto::ByteSpan datagram) {
  const Payload& last = message.payloads.back();
  if (const auto* sk = last.As<codec::SkPayload>()) {
    const crypto::ByteSpan prefix = datagram.first(datagram.size() - sk->encrypted.size());
    absl::StatusOr<crypto::Bytes> plain = inbound_->Open(prefix, sk->encrypted);
    if (!plain.ok()) return absl::DataLossError("SK payload does not verify");
    codec::DecodeResult<std::vector<Payload>> inner =
        codec::DecodePayloadChain(sk->inner_first_payload, *plain);
    if (!inner.ok()) return absl::InvalidArgumentError("inner payloads: " + inner.failure().detail);
    return absl::optional<std::vector<Payload>>(*std::move(inner));
  }
  const auto* skf = last.As<codec::SkfPayload>();
  if (skf == nullptr) return absl::InvalidArgumentError("no SK payload");
  if (!config_->fragmentation) return absl::InvalidArgumentError("unannounced SKF fragment");
  if (!reassembly_.ValidNumbering(skf->fragment_number, skf->total_fragments)) {
    return absl::InvalidArgumentError("bad SKF numbering");
  }
  const crypto::ByteSpan prefix = datagram.first(datagram.size() - skf->encrypted.size());
  absl::StatusOr<crypto::Bytes> plain = inbound_->Open(prefix, skf->encrypted);
  if (!plain.ok()) return absl::DataLossError("SKF fragment does not verify");
  switch (reassembly_.Add(message.header.message_id, skf->fragment_number, skf->total_fragments,
                          skf->inner_first_payload, *std::move(plain))) {
    case ike::FragmentReassembly::Outcome::kStored:
    case ike::FragmentReassembly::Outcome::kIgnored:
      return absl::optional<std::vector<Payload>>();
    case ike::FragmentReassembly::Outcome::kTooLarge:
      return absl::InvalidArgumentError("fragmented response too large");
    case ike::FragmentReassembly::Outcome::kComplete:
      break;
  }
  codec::PayloadType first = codec::PayloadType::kNone;
  const crypto::Bytes whole = reassembly_.Take(&first);
  codec::DecodeResult<std::vector<Payload>> inner = codec::DecodePayloadChain(first, whole);
  if (!inner.ok()) return absl::InvalidArgumentError("reassembled: " + inner.failure().detail);
  return absl::optional<std::vector<Payload>>(*std::move(inner));
}

}  // namespace vpn::loadgen
