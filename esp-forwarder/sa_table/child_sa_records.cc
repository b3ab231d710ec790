#include "esp-forwarder/sa_table/child_sa_records.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/ipsec/transform_records.h"
#include "common/store/sa_keys.h"
#include "common/store/sa_seal.h"
#include "google/protobuf/util/time_util.h"

namespace vpn::forwarder {
namespace {

absl::Status AddCidr(const std::string& cidr,
                     google::protobuf::RepeatedPtrField<v1::TrafficSelector>* out) {
  std::vector<std::string> parts = absl::StrSplit(cidr, '/');
  int prefix = -1;
  uint8_t address[16] = {};
  bool v6 = parts[0].find(':') != std::string::npos;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &prefix) ||
      inet_pton(v6 ? AF_INET6 : AF_INET, parts[0].c_str(), address) != 1 || prefix < 0 ||
      prefix > (v6 ? 128 : 32)) {
    return absl::InvalidArgumentError(absl::StrCat("bad CIDR '", cidr, "'"));
  }
  const esp::AddressRange range = esp::AddressRange::Prefix(address, v6, prefix);
  v1::TrafficSelector* ts = out->Add();
  ts->set_ts_type(v6 ? 8 : 7);
  ts->set_start_port(0);
  ts->set_end_port(65535);
  const size_t n = v6 ? 16 : 4;
  ts->set_start_address(std::string(reinterpret_cast<const char*>(range.start.data()), n));
  ts->set_end_address(std::string(reinterpret_cast<const char*>(range.end.data()), n));
  return absl::OkStatus();
}

std::string Str(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

}  // namespace

absl::StatusOr<v1::ChildSa> MakeChildSaRecord(const store::Sealer& sealer,
                                              const ChildSaSpec& spec) {
  v1::ChildSa record;
  record.set_inbound_spi(spec.inbound_spi);
  record.set_outbound_spi(spec.outbound_spi);
  record.set_ike_initiator_spi(spec.ike_spi_i);
  record.set_ike_responder_spi(spec.ike_spi_r);
  record.set_state(v1::CHILD_SA_STATE_INSTALLED);
  record.set_mode(v1::IPSEC_MODE_TUNNEL);
  record.set_encapsulation(spec.udp ? v1::ENCAPSULATION_UDP : v1::ENCAPSULATION_RAW);
  ipsec::AddToProposal(spec.algorithms.ToTransformSet(), /*ike=*/false,
                       record.mutable_proposal());
  for (const std::string& cidr : spec.local_cidrs) {
    if (absl::Status s = AddCidr(cidr, record.mutable_local_ts()); !s.ok()) return s;
  }
  for (const std::string& cidr : spec.remote_cidrs) {
    if (absl::Status s = AddCidr(cidr, record.mutable_remote_ts()); !s.ok()) return s;
  }
  record.mutable_lifetime()->set_soft_bytes(spec.soft_bytes);
  record.mutable_lifetime()->set_hard_bytes(spec.hard_bytes);
  record.mutable_lifetime()->set_soft_seconds(spec.soft_seconds);
  record.mutable_lifetime()->set_hard_seconds(spec.hard_seconds);
  *record.mutable_local() = spec.local.ToProto();
  *record.mutable_remote() = spec.remote.ToProto();
  record.set_remote_behind_nat(spec.remote_behind_nat);
  record.set_replay_window(spec.replay_window);
  *record.mutable_created() = google::protobuf::util::TimeUtil::GetCurrentTime();
  v1::ChildSaKeys keys;
  keys.set_inbound_encryption(Str(spec.keys.in_enc));
  keys.set_inbound_integrity(Str(spec.keys.in_int));
  keys.set_outbound_encryption(Str(spec.keys.out_enc));
  keys.set_outbound_integrity(Str(spec.keys.out_int));
  if (absl::Status s = store::TagChildPath(sealer, spec.path_generation, &record); !s.ok()) {
    return s;
  }
  absl::Status sealed = store::SealChildSa(sealer, keys, &record);
  keys.Clear();
  if (!sealed.ok()) return sealed;
  return record;
}

absl::Status PutChildSa(store::Store& store, const store::Sealer& sealer,
                        const ChildSaSpec& spec) {
  absl::StatusOr<v1::ChildSa> record = MakeChildSaRecord(sealer, spec);
  if (!record.ok()) return record.status();
  return store::PutProto(store, store::ChildSaKey(spec.inbound_spi), *record).status();
}

}  // namespace vpn::forwarder
