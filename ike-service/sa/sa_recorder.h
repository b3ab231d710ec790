// Writes IKE and CHILD SA records to the versioned store, keys sealed, so
// the forwarder can install CHILD SAs and other replicas can take over.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/store/sealer.h"
#include "common/store/store.h"
#include "ike-service/exchange/responder_policy.h"
#include "ike-service/sa/ike_sa.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn::ike {

class SaRecorder {
 public:
  SaRecorder(store::Store* store, const store::Sealer* sealer, std::string replica,
             const ResponderPolicy* policy)
      : store_(store), sealer_(sealer), replica_(std::move(replica)), policy_(policy) {}

  // The IKE SA and every CHILD SA, in one transaction. After an IKE rekey
  // the CHILD SA records exist already and are rewritten for the new SA.
  absl::Status RecordEstablished(const IkeSa& sa, bool children_exist = false);
  // The IKE SA's record alone (message IDs of the gateway's own requests,
  // which a restarted replica must continue from).
  absl::Status RecordIke(const IkeSa& sa);
  // One new CHILD SA of an established IKE SA (CREATE_CHILD_SA).
  absl::Status RecordChild(const IkeSa& sa, const ChildSaState& child);
  // Deletes the IKE SA's record and its CHILD SAs'.
  absl::Status RemoveSa(const IkeSa& sa);
  absl::Status RemoveChild(const ChildSaState& child);

  static std::string ChildKey(uint32_t inbound_spi);

  // Rebuilds the established IKE SAs this replica owns from their records
  // and sealed keys, after a restart. Records that do not open are skipped
  // and counted in `skipped`.
  absl::StatusOr<std::vector<std::unique_ptr<IkeSa>>> LoadOwned(size_t* skipped) const;

  // The records as they are written (exposed for tests).
  absl::StatusOr<v1::IkeSa> IkeRecord(const IkeSa& sa) const;
  absl::StatusOr<v1::ChildSa> ChildRecord(const IkeSa& sa, const ChildSaState& child) const;

 private:
  store::Store* const store_;
  const store::Sealer* const sealer_;
  const std::string replica_;
  const ResponderPolicy* const policy_;
};

}  // namespace vpn::ike
