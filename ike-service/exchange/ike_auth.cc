#include "ike-service/exchange/ike_auth.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ike-service/exchange/create_child_sa.h"
#include "ike-service/exchange/proposals.h"
#include "ike-service/exchange/traffic_selectors.h"

namespace vpn::ike {
namespace {

using codec::NotifyType;


ExchangeResult Fail(NotifyType type, std::string note) {
  ExchangeResult result;
  result.payloads.push_back(codec::MakeNotify(type));
  result.outcome = ExchangeOutcome::kFailed;
  result.note = std::move(note);
  return result;
}


// IDr and AUTH from auth-service's signature over ResponderSignedOctets,
// with the gateway's certificate chain.
absl::Status AppendGatewayAuth(IkeSa& sa, const ResponderPolicy& policy,
                               const AuthServices& services,
                               std::vector<codec::Payload>* out) {
  codec::IdrPayload idr;
  idr.id_type = policy.id_type;
  idr.data = policy.id_data;
  if (idr.data.empty()) {
    idr.id_type = sa.local.is_v6() ? codec::IdType::kIpv6Addr : codec::IdType::kIpv4Addr;
    idr.data.assign(sa.local.address_bytes().begin(), sa.local.address_bytes().end());
  }
  sa.idr_body = codec::IdPayloadBody(idr.id_type, idr.data);
  absl::StatusOr<crypto::SecretBytes> maced_id =
      MacedId(sa.transforms.prf, sa.keys.sk_pr.span(), sa.idr_body);
  if (!maced_id.ok()) return maced_id.status();
  v1::SignRequest sign;
  sign.set_ike_sa_init_response(sa.init_response.data(), sa.init_response.size());
  sign.set_initiator_nonce(sa.nonce_i.data(), sa.nonce_i.size());
  sign.set_maced_id(maced_id->span().data(), maced_id->span().size());
  for (uint16_t hash : sa.peer_hash_algorithms) sign.add_peer_hash_algorithms(hash);
  absl::StatusOr<v1::SignReply> signature = services.authenticator->Sign(sign);
  if (!signature.ok()) return signature.status();

  out->push_back(codec::Payload{std::move(idr)});
  for (const std::string& der : signature->certificate_chain_der()) {
    codec::CertPayload cert;
    cert.encoding = codec::CertEncoding::kX509Signature;
    cert.data.assign(der.begin(), der.end());
    out->push_back(codec::Payload{std::move(cert)});
  }
  codec::AuthPayload auth;
  auth.method = static_cast<codec::AuthMethod>(signature->auth_method());
  auth.data.assign(signature->auth_data().begin(), signature->auth_data().end());
  out->push_back(codec::Payload{std::move(auth)});
  return absl::OkStatus();
}

// CP reply, the first CHILD SA and MOBIKE, appended to `out`.
void AppendFirstChild(IkeSa& sa, const ResponderPolicy& policy,
                      const AuthServices& services, std::vector<codec::Payload>* out,
                      std::string* note) {
  const PendingChild& pending = sa.pending_child;
  std::vector<codec::TrafficSelector> client_side;
  if (pending.has_config_request) {
    codec::ConfigPayload reply;
    reply.cfg_type = codec::CfgType::kReply;
    bool wants_v4 = false, wants_v6 = false, wants_server = false;
    for (const codec::ConfigAttribute& attribute : pending.config_request.attributes) {
      switch (attribute.type) {
        case codec::ConfigAttributeType::kInternalIp4Address:
          wants_v4 = true;
          break;
        case codec::ConfigAttributeType::kInternalIp6Address:
          wants_v6 = true;
          break;
        case codec::ConfigAttributeType::kMsInternalIp4Server:
        case codec::ConfigAttributeType::kMsInternalIp6Server:
          wants_server = true;
          break;
        default:
          break;
      }
    }
    bool assigned_any = false;
    for (auto [wanted, pool, v6] : {std::make_tuple(wants_v4, services.pool_v4, false),
                                    std::make_tuple(wants_v6, services.pool_v6, true)}) {
      if (!wanted || pool == nullptr) continue;
      absl::StatusOr<AddressPool::Lease> lease = pool->Acquire(sa.record_key());
      if (!lease.ok()) {
        absl::StrAppend(note, "no virtual IP: ", lease.status().message(), "; ");
        continue;
      }
      assigned_any = true;
      const std::string& address = lease->address;
      sa.virtual_ips.push_back(address);
      sa.virtual_ip_leases.push_back(lease->revision);
      client_side.push_back(HostSelector(address));
      codec::ConfigAttribute attribute;
      attribute.type = v6 ? codec::ConfigAttributeType::kInternalIp6Address
                          : codec::ConfigAttributeType::kInternalIp4Address;
      attribute.value.assign(address.begin(), address.end());
      if (v6) attribute.value.push_back(128);  // prefix length (§3.15.1)
      reply.attributes.push_back(std::move(attribute));
      for (const std::string& dns : policy.dns_servers) {
        if ((dns.size() == 16) != v6) continue;
        reply.attributes.push_back(
            {v6 ? codec::ConfigAttributeType::kInternalIp6Dns
                : codec::ConfigAttributeType::kInternalIp4Dns,
             codec::Bytes(dns.begin(), dns.end())});
      }
      if (wants_server) {
        // Windows asks where the gateway is inside the tunnel: the pool's
        // first host address, kept for the gateway.
        codec::Bytes server(address.begin(), address.end());
        const size_t host_bytes = v6 ? 2 : 1;
        for (size_t i = 0; i < host_bytes; ++i) server[server.size() - 1 - i] = 0;
        server.back() = 1;
        if (v6) server.push_back(128);
        reply.attributes.push_back({v6 ? codec::ConfigAttributeType::kMsInternalIp6Server
                                       : codec::ConfigAttributeType::kMsInternalIp4Server,
                                    std::move(server)});
      }
    }
    if ((wants_v4 || wants_v6) && !assigned_any) {
      out->push_back(codec::MakeNotify(NotifyType::kInternalAddressFailure));
      absl::StrAppend(note, "INTERNAL_ADDRESS_FAILURE");
      return;
    }
    out->push_back(codec::Payload{std::move(reply)});
  }
  if (client_side.empty()) {
    client_side.push_back(HostSelector(std::string(
        reinterpret_cast<const char*>(sa.remote.address_bytes().data()),
        sa.remote.address_bytes().size())));
  }

  absl::optional<SelectedProposal> selected =
      SelectProposal(pending.proposals, policy.esp_proposals, codec::ProtocolId::kEsp);
  if (!selected || selected->spi.size() != 4) {
    out->push_back(codec::MakeNotify(NotifyType::kNoProposalChosen));
    absl::StrAppend(note, "no acceptable ESP proposal");
    return;
  }
  std::vector<codec::TrafficSelector> tsi = Narrow(pending.tsi, client_side);
  std::vector<codec::TrafficSelector> tsr = Narrow(pending.tsr, policy.local_ts);
  if (tsi.empty() || tsr.empty()) {
    out->push_back(codec::MakeNotify(NotifyType::kTsUnacceptable));
    absl::StrAppend(note, "TS_UNACCEPTABLE");
    return;
  }
  absl::StatusOr<ChildSaKeys> keys =
      DeriveChildSaKeys(sa.transforms.prf, sa.keys.sk_d.span(), selected->transforms, {},
                        sa.nonce_i, sa.nonce_r);
  if (!keys.ok()) {
    out->push_back(codec::MakeNotify(NotifyType::kNoProposalChosen));
    absl::StrAppend(note, keys.status().message());
    return;
  }
  ChildSaState child;
  child.inbound_spi = RandomChildSpi();
  child.outbound_spi = (uint32_t{selected->spi[0]} << 24) |
                       (uint32_t{selected->spi[1]} << 16) |
                       (uint32_t{selected->spi[2]} << 8) | selected->spi[3];
  child.transforms = selected->transforms;
  child.keys = std::move(*keys);
  child.remote_ts = tsi;
  child.local_ts = tsr;
  child.created = absl::Now();
  const codec::Bytes our_spi = {static_cast<uint8_t>(child.inbound_spi >> 24),
                                static_cast<uint8_t>(child.inbound_spi >> 16),
                                static_cast<uint8_t>(child.inbound_spi >> 8),
                                static_cast<uint8_t>(child.inbound_spi)};
  codec::SaPayload sa_reply;
  sa_reply.proposals.push_back(
      ToResponseProposal(*selected, codec::ProtocolId::kEsp, our_spi));
  out->push_back(codec::Payload{std::move(sa_reply)});
  codec::TsiPayload tsi_reply;
  tsi_reply.selectors = std::move(tsi);
  out->push_back(codec::Payload{std::move(tsi_reply)});
  codec::TsrPayload tsr_reply;
  tsr_reply.selectors = std::move(tsr);
  out->push_back(codec::Payload{std::move(tsr_reply)});
  sa.children.push_back(std::move(child));
}

ExchangeResult Establish(IkeSa& sa, std::vector<codec::Payload> payloads,
                         const ResponderPolicy& policy, const AuthServices& services) {
  ExchangeResult result;
  result.payloads = std::move(payloads);
  AppendFirstChild(sa, policy, services, &result.payloads, &result.note);
  if (sa.mobike) {
    // RFC 4555 §3.1, §3.4: the gateway's other addresses, or none.
    result.payloads.push_back(codec::MakeNotify(NotifyType::kMobikeSupported));
    for (const std::string& address : policy.additional_addresses) {
      result.payloads.push_back(codec::MakeNotify(address.size() == 16 ? NotifyType::kAdditionalIp6Address
                                                             : NotifyType::kAdditionalIp4Address,
                                       codec::Bytes(address.begin(), address.end())));
    }
    if (policy.additional_addresses.empty()) {
      result.payloads.push_back(codec::MakeNotify(NotifyType::kNoAdditionalAddresses));
    }
  }
  sa.phase = IkeSa::Phase::kEstablished;
  sa.pending_child = PendingChild();
  result.outcome = ExchangeOutcome::kEstablished;
  return result;
}

ExchangeResult FirstRound(IkeSa& sa, const std::vector<codec::Payload>& request,
                          const ResponderPolicy& policy, const AuthServices& services) {
  const codec::IdiPayload* idi = codec::FindPayload<codec::IdiPayload>(request);
  if (idi == nullptr) return Fail(NotifyType::kAuthenticationFailed, "IKE_AUTH without IDi");
  sa.idi = *idi;
  PendingChild& pending = sa.pending_child;
  if (const auto* child_sa = codec::FindPayload<codec::SaPayload>(request)) {
    pending.proposals = child_sa->proposals;
  }
  if (const auto* tsi = codec::FindPayload<codec::TsiPayload>(request)) pending.tsi = tsi->selectors;
  if (const auto* tsr = codec::FindPayload<codec::TsrPayload>(request)) pending.tsr = tsr->selectors;
  if (const auto* config = codec::FindPayload<codec::ConfigPayload>(request);
      config != nullptr && config->cfg_type == codec::CfgType::kRequest) {
    pending.has_config_request = true;
    pending.config_request = *config;
  }
  sa.mobike = codec::FindNotify(request, NotifyType::kMobikeSupported) != nullptr;

  std::vector<codec::Payload> response;
  if (absl::Status signed_ok = AppendGatewayAuth(sa, policy, services, &response);
      !signed_ok.ok()) {
    return Fail(NotifyType::kAuthenticationFailed,
                absl::StrCat("cannot sign as the gateway: ", signed_ok.message()));
  }

  const codec::AuthPayload* auth = codec::FindPayload<codec::AuthPayload>(request);
  if (auth == nullptr) {
    // No AUTH: the client authenticates with EAP (§2.16).
    v1::EapStartRequest start;
    start.set_initiator_spi(sa.spi_i);
    start.set_responder_spi(sa.spi_r);
    start.set_peer_identity(std::string(idi->data.begin(), idi->data.end()));
    start.set_peer_address(std::string(
        reinterpret_cast<const char*>(sa.remote.address_bytes().data()),
        sa.remote.address_bytes().size()));
    absl::StatusOr<v1::EapReply> reply = services.authenticator->EapStart(start);
    if (!reply.ok() || reply->outcome() != v1::EapReply::CONTINUE) {
      return Fail(NotifyType::kAuthenticationFailed,
                  reply.ok() ? "EAP did not start" : std::string(reply.status().message()));
    }
    sa.uses_eap = true;
    sa.eap_session = reply->session();
    codec::EapPayload eap;
    eap.message.assign(reply->eap_message().begin(), reply->eap_message().end());
    response.push_back(codec::Payload{std::move(eap)});
    sa.phase = IkeSa::Phase::kAuthenticating;
    ExchangeResult result;
    result.payloads = std::move(response);
    result.outcome = ExchangeOutcome::kContinue;
    return result;
  }

  // A machine certificate: auth-service checks the chain and the signature.
  if (auth->method == codec::AuthMethod::kSharedKeyMic) {
    return Fail(NotifyType::kAuthenticationFailed, "pre-shared keys are not accepted");
  }
  absl::StatusOr<crypto::Bytes> octets =
      SignedOctets(sa.transforms.prf, sa.init_request, sa.nonce_r, sa.keys.sk_pi.span(),
                   codec::IdPayloadBody(idi->id_type, idi->data));
  if (!octets.ok()) return Fail(NotifyType::kAuthenticationFailed, "signed octets");
  v1::ValidateCertificateRequest validate;
  for (const codec::Payload& payload : request) {
    const auto* cert = payload.As<codec::CertPayload>();
    if (cert != nullptr && cert->encoding == codec::CertEncoding::kX509Signature) {
      validate.add_chain_der(std::string(cert->data.begin(), cert->data.end()));
    }
  }
  if (validate.chain_der_size() == 0) {
    return Fail(NotifyType::kAuthenticationFailed, "certificate AUTH without a CERT");
  }
  validate.set_identity(std::string(idi->data.begin(), idi->data.end()));
  validate.set_identity_type(static_cast<uint32_t>(idi->id_type));
  validate.set_auth_method(static_cast<uint32_t>(auth->method));
  validate.set_signed_octets(octets->data(), octets->size());
  validate.set_auth_data(std::string(auth->data.begin(), auth->data.end()));
  absl::StatusOr<v1::ValidateCertificateReply> verdict =
      services.authenticator->ValidateCertificate(validate);
  if (!verdict.ok() || !verdict->valid()) {
    return Fail(NotifyType::kAuthenticationFailed,
                verdict.ok() ? verdict->reason() : std::string(verdict.status().message()));
  }
  sa.certificate_subject = verdict->subject();
  return Establish(sa, std::move(response), policy, services);
}

ExchangeResult EapRound(IkeSa& sa, const std::vector<codec::Payload>& request,
                        const ResponderPolicy& policy, const AuthServices& services) {
  if (const auto* eap = codec::FindPayload<codec::EapPayload>(request)) {
    if (!sa.msk.empty()) {
      return Fail(NotifyType::kAuthenticationFailed, "EAP after EAP-Success");
    }
    v1::EapRoundRequest round;
    round.set_session(sa.eap_session);
    round.set_eap_message(std::string(eap->message.begin(), eap->message.end()));
    absl::StatusOr<v1::EapReply> reply = services.authenticator->EapRound(round);
    if (!reply.ok()) {
      return Fail(NotifyType::kAuthenticationFailed, std::string(reply.status().message()));
    }
    ExchangeResult result;
    codec::EapPayload answer;
    answer.message.assign(reply->eap_message().begin(), reply->eap_message().end());
    result.payloads.push_back(codec::Payload{std::move(answer)});
    switch (reply->outcome()) {
      case v1::EapReply::CONTINUE:
        result.outcome = ExchangeOutcome::kContinue;
        break;
      case v1::EapReply::SUCCESS:
        sa.msk = crypto::SecretBytes(crypto::ByteSpan(
            reinterpret_cast<const uint8_t*>(reply->msk().data()), reply->msk().size()));
        sa.eap_identity = reply->eap_identity();
        result.outcome = ExchangeOutcome::kContinue;
        break;
      default:
        result.outcome = ExchangeOutcome::kFailed;
        result.note = "EAP authentication failed";
    }
    return result;
  }

  const codec::AuthPayload* auth = codec::FindPayload<codec::AuthPayload>(request);
  if (auth == nullptr || sa.msk.empty()) {
    return Fail(NotifyType::kAuthenticationFailed, "IKE_AUTH without EAP or AUTH");
  }
  // The client's AUTH over InitiatorSignedOctets, keyed by the MSK.
  absl::StatusOr<crypto::Bytes> initiator_octets =
      SignedOctets(sa.transforms.prf, sa.init_request, sa.nonce_r, sa.keys.sk_pi.span(),
                   codec::IdPayloadBody(sa.idi.id_type, sa.idi.data));
  if (!initiator_octets.ok()) return Fail(NotifyType::kAuthenticationFailed, "octets");
  absl::StatusOr<crypto::Bytes> expected =
      SharedKeyAuth(sa.transforms.prf, sa.msk.span(), *initiator_octets);
  if (!expected.ok() || auth->method != codec::AuthMethod::kSharedKeyMic ||
      !crypto::ConstantTimeEquals(*expected, auth->data)) {
    return Fail(NotifyType::kAuthenticationFailed, "the client's MSK AUTH does not verify");
  }
  absl::StatusOr<crypto::Bytes> responder_octets =
      SignedOctets(sa.transforms.prf, sa.init_response, sa.nonce_i, sa.keys.sk_pr.span(),
                   sa.idr_body);
  if (!responder_octets.ok()) return Fail(NotifyType::kAuthenticationFailed, "octets");
  absl::StatusOr<crypto::Bytes> ours =
      SharedKeyAuth(sa.transforms.prf, sa.msk.span(), *responder_octets);
  if (!ours.ok()) return Fail(NotifyType::kAuthenticationFailed, "AUTH");
  std::vector<codec::Payload> response;
  codec::AuthPayload our_auth;
  our_auth.method = codec::AuthMethod::kSharedKeyMic;
  our_auth.data = std::move(*ours);
  response.push_back(codec::Payload{std::move(our_auth)});
  return Establish(sa, std::move(response), policy, services);
}

}  // namespace

ExchangeResult HandleIkeAuth(IkeSa& sa, const std::vector<codec::Payload>& request,
                             const ResponderPolicy& policy, const AuthServices& services) {
  switch (sa.phase) {
    case IkeSa::Phase::kHalfOpen:
      return FirstRound(sa, request, policy, services);
    case IkeSa::Phase::kAuthenticating:
      return EapRound(sa, request, policy, services);
    default:
      return Fail(NotifyType::kInvalidSyntax, "IKE_AUTH on an established SA");
  }
}

}  // namespace vpn::ike
