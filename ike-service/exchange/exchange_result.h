// What an exchange handler returns to the engine.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ike-service/codec/payloads.h"
#include "ike-service/sa/ike_sa.h"

namespace vpn::ike {

enum class ExchangeOutcome {
  kContinue,     // more rounds follow (EAP)
  kEstablished,  // the IKE SA is up (with or without a CHILD SA)
  kFailed,       // send the response, then delete the SA
  kDone,         // an exchange on an established SA completed
  kDeleteSa,     // the peer deleted the IKE SA
};

struct ExchangeResult {
  std::vector<codec::Payload> payloads;  // the response's inner payloads
  ExchangeOutcome outcome = ExchangeOutcome::kContinue;
  std::string note;  // why, for the log
  std::vector<ChildSaState> removed_children;  // CHILD SAs the peer deleted
  std::vector<uint32_t> added_children;        // inbound SPIs of new CHILD SAs
  std::unique_ptr<IkeSa> rekeyed;              // the new IKE SA of an IKE rekey
  bool addresses_updated = false;              // MOBIKE moved the IKE SA
};

}  // namespace vpn::ike
