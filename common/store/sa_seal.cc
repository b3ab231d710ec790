#include "common/store/sa_seal.h"

#include <algorithm>
#include <array>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/store/sa_keys.h"
#include "common/wire/reader.h"

namespace vpn::store {
namespace {

using crypto::AsBytes;

constexpr absl::string_view kPathLabel = "vpn-path-v1";
constexpr size_t kMaxIp = 16;

void WriteEndpoint(const v1::Endpoint& e, wire::Writer* out) {
  out->WriteCountU8(e.ip().size());
  out->WriteBytes(AsBytes(e.ip()));
  out->WriteU32(e.port());
}

// The explicit, field-by-field message a path tag covers; false for an
// endpoint that cannot be a real one.
bool PathMessage(uint64_t spi_i, uint64_t spi_r, const v1::Endpoint& local,
                 const v1::Endpoint& remote, bool nat, uint64_t generation,
                 std::vector<uint8_t>* message) {
  if (local.ip().size() > kMaxIp || remote.ip().size() > kMaxIp) return false;
  wire::Writer out(message);
  out.WriteBytes(AsBytes(kPathLabel));
  out.WriteU64(spi_i);
  out.WriteU64(spi_r);
  WriteEndpoint(local, &out);
  WriteEndpoint(remote, &out);
  out.WriteU8(nat ? 1 : 0);
  out.WriteU64(generation);
  return out.ok();
}

}  // namespace

std::string SealedFields(const v1::IkeSa& record) {
  return BoundEncoding(record, [](v1::IkeSa* r) {
    r->clear_meta();  // versions and times of the store; owner moves on takeover
    r->clear_local();
    r->clear_remote();
    r->clear_remote_behind_nat();
    r->clear_path_auth();
    r->clear_last_seen();
    // mobility-service marks a silent SA DORMANT and revives it; nothing
    // else about the state may change without the key.
    if (r->state() == v1::IKE_SA_STATE_DORMANT) r->set_state(v1::IKE_SA_STATE_ESTABLISHED);
  });
}

std::string SealedFields(const v1::ChildSa& record) {
  return BoundEncoding(record, [](v1::ChildSa* r) {
    r->clear_meta();
    r->clear_local();
    r->clear_remote();
    r->clear_remote_behind_nat();
    // Set to UDP by a move behind a NAT; the forwarder requires UDP when the
    // (tagged) NAT flag says so.
    r->clear_encapsulation();
    r->clear_path_auth();
  });
}

absl::Status SealIkeSa(const Sealer& sealer, const v1::IkeSaKeys& keys, v1::IkeSa* record) {
  return SealInto(sealer, IkeSaKey(record->initiator_spi(), record->responder_spi()), keys,
                  record, SealedFields(*record));
}

absl::Status SealChildSa(const Sealer& sealer, const v1::ChildSaKeys& keys,
                         v1::ChildSa* record) {
  return SealInto(sealer, ChildSaKey(record->inbound_spi()), keys, record,
                  SealedFields(*record));
}

absl::StatusOr<v1::IkeSaKeys> OpenIkeSa(const Sealer& sealer, absl::string_view key,
                                        const v1::IkeSa& record) {
  return OpenFrom<v1::IkeSaKeys>(sealer, key, record, SealedFields(record));
}

absl::StatusOr<v1::ChildSaKeys> OpenChildSa(const Sealer& sealer, absl::string_view key,
                                            const v1::ChildSa& record) {
  return OpenFrom<v1::ChildSaKeys>(sealer, key, record, SealedFields(record));
}

absl::StatusOr<v1::PathAuth> TagPath(const Sealer& sealer, uint64_t spi_i, uint64_t spi_r,
                                     const v1::Endpoint& local, const v1::Endpoint& remote,
                                     bool remote_behind_nat, uint64_t generation) {
  std::vector<uint8_t> message;
  if (!PathMessage(spi_i, spi_r, local, remote, remote_behind_nat, generation, &message)) {
    return absl::InvalidArgumentError("path tag: endpoint ip longer than 16 bytes");
  }
  std::array<uint8_t, Sealer::kPathTagSize> tag{};
  const crypto::ByteSpan parts[] = {message};
  if (absl::Status s = sealer.PathTag(parts, absl::MakeSpan(tag)); !s.ok()) return s;
  v1::PathAuth auth;
  auth.set_generation(generation);
  auth.set_tag(std::string(tag.begin(), tag.end()));
  return auth;
}

absl::Status TagIkePath(const Sealer& sealer, uint64_t generation, v1::IkeSa* record) {
  absl::StatusOr<v1::PathAuth> auth =
      TagPath(sealer, record->initiator_spi(), record->responder_spi(), record->local(),
              record->remote(), record->remote_behind_nat(), generation);
  if (!auth.ok()) return auth.status();
  *record->mutable_path_auth() = *std::move(auth);
  return absl::OkStatus();
}

absl::Status TagChildPath(const Sealer& sealer, uint64_t generation, v1::ChildSa* record) {
  absl::StatusOr<v1::PathAuth> auth =
      TagPath(sealer, record->ike_initiator_spi(), record->ike_responder_spi(),
              record->local(), record->remote(), record->remote_behind_nat(), generation);
  if (!auth.ok()) return auth.status();
  *record->mutable_path_auth() = *std::move(auth);
  return absl::OkStatus();
}

const char* PathVerdictName(PathVerdict verdict) {
  switch (verdict) {
    case PathVerdict::kValid:
      return "valid";
    case PathVerdict::kMissing:
      return "path_tag_missing";
    case PathVerdict::kForged:
      return "path_tag_invalid";
    case PathVerdict::kStale:
      return "path_generation_stale";
  }
  return "unknown";
}

PathVerdict CheckPath(const Sealer& sealer, uint64_t spi_i, uint64_t spi_r,
                      const v1::Endpoint& local, const v1::Endpoint& remote,
                      bool remote_behind_nat, const v1::PathAuth& auth,
                      uint64_t min_generation) {
  if (auth.tag().empty()) return PathVerdict::kMissing;
  std::vector<uint8_t> message;
  if (!PathMessage(spi_i, spi_r, local, remote, remote_behind_nat, auth.generation(),
                   &message)) {
    return PathVerdict::kForged;
  }
  const crypto::ByteSpan parts[] = {message};
  if (!sealer.VerifyPathTag(parts, AsBytes(auth.tag()))) return PathVerdict::kForged;
  // Checked after the tag: only an authentic generation says "stale".
  if (auth.generation() < min_generation) return PathVerdict::kStale;
  return PathVerdict::kValid;
}

PathVerdict CheckIkePath(const Sealer& sealer, const v1::IkeSa& record,
                         uint64_t min_generation) {
  return CheckPath(sealer, record.initiator_spi(), record.responder_spi(), record.local(),
                   record.remote(), record.remote_behind_nat(), record.path_auth(),
                   min_generation);
}

PathVerdict CheckChildPath(const Sealer& sealer, const v1::ChildSa& record,
                           uint64_t min_generation) {
  return CheckPath(sealer, record.ike_initiator_spi(), record.ike_responder_spi(),
                   record.local(), record.remote(), record.remote_behind_nat(),
                   record.path_auth(), min_generation);
}

uint64_t NextPathGeneration(uint64_t known, absl::Time now) {
  const int64_t micros = absl::ToUnixMicros(now);
  return std::max<uint64_t>(known + 1, micros > 0 ? static_cast<uint64_t>(micros) : 0);
}

}  // namespace vpn::store
