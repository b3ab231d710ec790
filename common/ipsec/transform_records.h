// A TransformSet as the SA records in the store carry it (vpn.v1.Proposal).
// ike-service writes these records and esp-forwarder reads them.
#pragma once

#include "common/ipsec/transforms.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn::ipsec {

// Appends ENCR (with its key length), INTEG and KE when set, and PRF for an
// IKE SA or ESN for a CHILD SA.
void AddToProposal(const TransformSet& transforms, bool ike, v1::Proposal* out);

// The reverse; types it does not know are ignored.
TransformSet FromProposal(const v1::Proposal& proposal);

}  // namespace vpn::ipsec
