#include "ike-service/exchange/informational.h"

#include <algorithm>

namespace vpn::ike {

ExchangeResult HandleInformational(IkeSa& sa, const std::vector<codec::Payload>& request) {
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
    }
  }
  if (!deleted_here.spis.empty()) {
    result.payloads.push_back(codec::Payload{std::move(deleted_here)});
  }
  return result;
}

}  // namespace vpn::ike
