#include "ike-service/exchange/informational.h"

#include <algorithm>

#include "ike-service/exchange/nat_detection.h"

namespace vpn::ike {
namespace {

using codec::NotifyType;

// RFC 4555 §3.5: the client moved. The IKE SA follows the request's
// addresses at once; the CHILD SAs follow once the new path is known to
// work (the engine's return routability check).
void UpdateAddresses(IkeSa& sa, const std::vector<codec::Payload>& request,
                     const RequestPath& path, ExchangeResult* result) {
  bool nat_payloads = false, source_matches = false, destination_matches = false;
  bool no_nats_allowed = false;
  for (const codec::Payload& payload : request) {
    const auto* notify = payload.As<codec::NotifyPayload>();
    if (notify == nullptr) continue;
    switch (notify->type) {
      case NotifyType::kNatDetectionSourceIp:
        nat_payloads = true;
        source_matches |= notify->data == NatDetectionHash(sa.spi_i, sa.spi_r, path.remote);
        break;
      case NotifyType::kNatDetectionDestinationIp:
        nat_payloads = true;
        destination_matches |= notify->data == NatDetectionHash(sa.spi_i, sa.spi_r, path.local);
        break;
      case NotifyType::kNoNatsAllowed:
        no_nats_allowed = true;
        break;
      default:
        break;
    }
  }
  const bool nat = nat_payloads && (!source_matches || !destination_matches);
  if (no_nats_allowed && nat) {
    // §3.9: the client forbids NATs on the path and one is there.
    result->payloads.push_back(codec::MakeNotify(NotifyType::kUnexpectedNatDetected));
    result->note = "UPDATE_SA_ADDRESSES through a NAT with NO_NATS_ALLOWED";
    return;
  }
  const bool moved = sa.remote != path.remote || sa.local != path.local;
  sa.remote = path.remote;
  sa.local = path.local;
  sa.udp_encapsulated = path.udp_encapsulated;
  sa.forwarder = path.forwarder;
  if (nat_payloads) {
    sa.initiator_behind_nat = !source_matches;
    sa.responder_behind_nat = !destination_matches;
    result->payloads.push_back(codec::MakeNotify(NotifyType::kNatDetectionSourceIp,
                                      NatDetectionHash(sa.spi_i, sa.spi_r, path.local)));
    result->payloads.push_back(codec::MakeNotify(NotifyType::kNatDetectionDestinationIp,
                                      NatDetectionHash(sa.spi_i, sa.spi_r, path.remote)));
  }
  result->addresses_updated = moved;
  result->note = moved ? "MOBIKE address update" : "MOBIKE update to the same addresses";
}

}  // namespace

ExchangeResult HandleInformational(IkeSa& sa, const std::vector<codec::Payload>& request,
                                   const RequestPath& path) {
  ExchangeResult result;
  result.outcome = ExchangeOutcome::kDone;
  codec::DeletePayload deleted_here;
  deleted_here.protocol_id = codec::ProtocolId::kEsp;
  for (const codec::Payload& payload : request) {
    if (const auto* del = payload.As<codec::DeletePayload>()) {
      if (del->protocol_id == codec::ProtocolId::kIke) {
        // Deleting the IKE SA deletes its CHILD SAs; the reply is empty.
        result.payloads.clear();
        result.outcome = ExchangeOutcome::kDeleteSa;
        result.note = "the client deleted the IKE SA";
        return result;
      }
      for (uint32_t spi : del->spis) {
        auto child = std::find_if(sa.children.begin(), sa.children.end(),
                                  [&](const ChildSaState& c) { return c.outbound_spi == spi; });
        if (child == sa.children.end()) continue;
        deleted_here.spis.push_back(child->inbound_spi);
        result.removed_children.push_back(std::move(*child));
        sa.children.erase(child);
      }
    } else if (const auto* notify = payload.As<codec::NotifyPayload>()) {
      // An error notify in a request means the peer gave up on the SA, e.g.
      // AUTHENTICATION_FAILED after our AUTH (§2.21.2).
      if (notify->is_error() && sa.phase != IkeSa::Phase::kEstablished) {
        result.outcome = ExchangeOutcome::kDeleteSa;
        result.note = "the client reported an error";
        return result;
      }
      // COOKIE2 is echoed back (RFC 4555 §3.7).
      if (notify->type == NotifyType::kCookie2) {
        result.payloads.push_back(codec::MakeNotify(NotifyType::kCookie2, notify->data));
      }
    }
  }
  const bool update = codec::FindNotify(request, NotifyType::kUpdateSaAddresses) != nullptr;
  if (update && sa.mobike && sa.phase == IkeSa::Phase::kEstablished) {
    UpdateAddresses(sa, request, path, &result);
  }
  if (!deleted_here.spis.empty()) {
    result.payloads.push_back(codec::Payload{std::move(deleted_here)});
  }
  return result;
}

}  // namespace vpn::ike
