// What the seal of an SA record covers, and the path tags that let a writer
// without the sealing key (mobility-service) move an SA verifiably.
//
// Seal: the AAD of an IkeSa's or ChildSa's sealed_keys binds the record key
// and every field but those a writer without the key legitimately changes:
//   IkeSa:   meta, local, remote, remote_behind_nat, path_auth, last_seen,
//            and DORMANT vs ESTABLISHED (encoded alike);
//   ChildSa: meta, local, remote, remote_behind_nat, encapsulation,
//            path_auth.
// Path: local, remote and remote_behind_nat are checked instead by
// path_auth, a MAC under a key derived from the sealing key over
//   "vpn-path-v1" || spi_i (8) || spi_r (8) || local || remote ||
//   remote_behind_nat (1) || generation (8)
// (an endpoint: ip length (1) || ip || port (4); all big endian). The IKE
// SPIs come from the (sealed) record, so a tag does not move to another SA.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/store/sealer.h"
#include "proto/vpn/v1/sa.pb.h"

namespace vpn::store {

// The canonical encodings the seal's AAD covers (see above).
std::string SealedFields(const v1::IkeSa& record);
std::string SealedFields(const v1::ChildSa& record);

// Seal `keys` into the record under its key (IkeSaKey / ChildSaKey of its
// SPIs). Call after the record's last change of a sealed field.
absl::Status SealIkeSa(const Sealer& sealer, const v1::IkeSaKeys& keys, v1::IkeSa* record);
absl::Status SealChildSa(const Sealer& sealer, const v1::ChildSaKeys& keys,
                         v1::ChildSa* record);
// kDataLoss when the record was changed outside its path fields (or the
// blob does not open); kFailedPrecondition for another key id or format.
absl::StatusOr<v1::IkeSaKeys> OpenIkeSa(const Sealer& sealer, absl::string_view key,
                                        const v1::IkeSa& record);
absl::StatusOr<v1::ChildSaKeys> OpenChildSa(const Sealer& sealer, absl::string_view key,
                                            const v1::ChildSa& record);

// The tag of a path. kInvalidArgument for an endpoint whose ip is longer
// than 16 bytes.
absl::StatusOr<v1::PathAuth> TagPath(const Sealer& sealer, uint64_t spi_i, uint64_t spi_r,
                                     const v1::Endpoint& local, const v1::Endpoint& remote,
                                     bool remote_behind_nat, uint64_t generation);
// Sets record->path_auth for the record's own SPIs and path fields.
absl::Status TagIkePath(const Sealer& sealer, uint64_t generation, v1::IkeSa* record);
absl::Status TagChildPath(const Sealer& sealer, uint64_t generation, v1::ChildSa* record);

enum class PathVerdict {
  kValid,
  kMissing,  // no tag
  kForged,   // the tag does not verify for these SPIs and path fields
  kStale,    // valid, but older than a generation already applied
};
const char* PathVerdictName(PathVerdict verdict);

// Checks a record's path against its tag; `min_generation`: the highest
// generation the reader has applied for this SA (0: none).
PathVerdict CheckPath(const Sealer& sealer, uint64_t spi_i, uint64_t spi_r,
                      const v1::Endpoint& local, const v1::Endpoint& remote,
                      bool remote_behind_nat, const v1::PathAuth& auth,
                      uint64_t min_generation);
PathVerdict CheckIkePath(const Sealer& sealer, const v1::IkeSa& record,
                         uint64_t min_generation);
PathVerdict CheckChildPath(const Sealer& sealer, const v1::ChildSa& record,
                           uint64_t min_generation);

// The generation of a new path after `known`: above it, and otherwise the
// time in microseconds, so the two parties that tag moves (ike-service,
// esp-forwarder) order theirs without talking to each other.
uint64_t NextPathGeneration(uint64_t known, absl::Time now = absl::Now());

}  // namespace vpn::store
