#include "common/store/sa_seal.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/store/sa_keys.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace vpn::store {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::unique_ptr<Sealer> MakeSealer(char fill = '\x07') {
  const std::string key(32, fill);
  return *Sealer::FromKey(
      crypto::ByteSpan(reinterpret_cast<const uint8_t*>(key.data()), key.size()));
}

v1::Endpoint Ep(const std::string& ip, uint32_t port) {
  v1::Endpoint e;
  e.set_ip(ip);
  e.set_port(port);
  return e;
}

// Changes one field of `m` (a value other than the current one), so the
// tests below cover every field of the schema, also fields added later.
void Change(Message* m, const FieldDescriptor* f) {
  const google::protobuf::Reflection* r = m->GetReflection();
  if (f->is_repeated()) {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        r->AddMessage(m, f);
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        r->AddString(m, f, "x");
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        r->AddUInt32(m, f, 77);
        break;
      default:
        FAIL() << "unhandled repeated field " << f->name();
    }
    return;
  }
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      // Change the first field of the sub-message.
      Message* sub = r->MutableMessage(m, f);
      Change(sub, sub->GetDescriptor()->field(0));
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING:
      r->SetString(m, f, r->GetString(*m, f) + "x");
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      r->SetUInt32(m, f, r->GetUInt32(*m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      r->SetUInt64(m, f, r->GetUInt64(*m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      r->SetInt64(m, f, r->GetInt64(*m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      r->SetInt32(m, f, r->GetInt32(*m, f) + 1);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      r->SetBool(m, f, !r->GetBool(*m, f));
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int next = (r->GetEnumValue(*m, f) + 1) % f->enum_type()->value_count();
      r->SetEnumValue(m, f, f->enum_type()->value(next)->number());
      break;
    }
    default:
      FAIL() << "unhandled field " << f->name();
  }
}

v1::IkeSa SampleIke() {
  v1::IkeSa r;
  r.set_initiator_spi(0x1111);
  r.set_responder_spi(0x2222);
  r.set_state(v1::IKE_SA_STATE_ESTABLISHED);
  r.mutable_proposal()->add_transforms()->set_id(20);
  r.mutable_initiator_id()->set_type(1);
  r.set_eap_identity("alice");
  *r.mutable_local() = Ep(std::string("\x0a\0\0\x01", 4), 4500);
  *r.mutable_remote() = Ep(std::string("\xc0\xa8\x01\x02", 4), 4500);
  r.set_remote_behind_nat(true);
  r.add_virtual_ips(std::string("\x0a\x0a\0\x02", 4));
  r.add_child_spis(0xc0de);
  return r;
}

v1::ChildSa SampleChild() {
  v1::ChildSa r;
  r.set_inbound_spi(0xc0de);
  r.set_outbound_spi(0xbeef);
  r.set_ike_initiator_spi(0x1111);
  r.set_ike_responder_spi(0x2222);
  r.set_state(v1::CHILD_SA_STATE_INSTALLED);
  r.set_mode(v1::IPSEC_MODE_TUNNEL);
  r.set_encapsulation(v1::ENCAPSULATION_UDP);
  r.mutable_proposal()->add_transforms()->set_id(20);
  r.add_remote_ts()->set_ts_type(7);
  r.add_local_ts()->set_ts_type(7);
  *r.mutable_local() = Ep(std::string("\x0a\0\0\x01", 4), 4500);
  *r.mutable_remote() = Ep(std::string("\xc0\xa8\x01\x02", 4), 4500);
  return r;
}

template <typename Record, typename Keys>
void ExpectEveryFieldBoundBut(const Record& sealed, const std::string& key,
                              const std::set<std::string>& excluded,
                              absl::StatusOr<Keys> (*open)(const Sealer&, absl::string_view,
                                                           const Record&),
                              const Sealer& sealer) {
  ASSERT_TRUE(open(sealer, key, sealed).ok());
  const google::protobuf::Descriptor* d = Record::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->name() == "sealed_keys") continue;
    Record changed = sealed;
    Change(&changed, f);
    absl::StatusOr<Keys> opened = open(sealer, key, changed);
    if (excluded.count(f->name()) > 0) {
      EXPECT_TRUE(opened.ok()) << f->name() << " is excluded but breaks the seal: "
                               << opened.status();
    } else {
      EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss)
          << f->name() << " is not covered by the seal";
    }
  }
}

TEST(SaSeal, IkeRecordSealCoversEveryFieldButThePathAndLiveness) {
  auto sealer = MakeSealer();
  v1::IkeSa record = SampleIke();
  v1::IkeSaKeys keys;
  keys.set_sk_d("d");
  ASSERT_TRUE(SealIkeSa(*sealer, keys, &record).ok());
  ExpectEveryFieldBoundBut<v1::IkeSa, v1::IkeSaKeys>(
      record, IkeSaKey(0x1111, 0x2222),
      {"meta", "local", "remote", "remote_behind_nat", "path_auth", "last_seen"}, &OpenIkeSa,
      *sealer);
  // mobility-service marks DORMANT and revives; no other state change opens.
  v1::IkeSa dormant = record;
  dormant.set_state(v1::IKE_SA_STATE_DORMANT);
  EXPECT_TRUE(OpenIkeSa(*sealer, IkeSaKey(0x1111, 0x2222), dormant).ok());
  for (v1::IkeSaState state : {v1::IKE_SA_STATE_HALF_OPEN, v1::IKE_SA_STATE_DELETING,
                               v1::IKE_SA_STATE_REKEYING}) {
    v1::IkeSa other = record;
    other.set_state(state);
    EXPECT_EQ(OpenIkeSa(*sealer, IkeSaKey(0x1111, 0x2222), other).status().code(),
              absl::StatusCode::kDataLoss);
  }
  auto opened = OpenIkeSa(*sealer, IkeSaKey(0x1111, 0x2222), record);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->sk_d(), "d");
}

TEST(SaSeal, ChildRecordSealCoversEveryFieldButThePath) {
  auto sealer = MakeSealer();
  v1::ChildSa record = SampleChild();
  v1::ChildSaKeys keys;
  keys.set_inbound_encryption("k");
  ASSERT_TRUE(SealChildSa(*sealer, keys, &record).ok());
  ExpectEveryFieldBoundBut<v1::ChildSa, v1::ChildSaKeys>(
      record, ChildSaKey(0xc0de),
      {"meta", "local", "remote", "remote_behind_nat", "encapsulation", "path_auth"},
      &OpenChildSa, *sealer);
  // Bound to its key, and to the sealing key.
  EXPECT_EQ(OpenChildSa(*sealer, ChildSaKey(0xc0df), record).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(OpenChildSa(*MakeSealer('\x08'), ChildSaKey(0xc0de), record).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SaSeal, SealedFieldsAreDeterministic) {
  v1::ChildSa a = SampleChild();
  v1::ChildSa b;
  ASSERT_TRUE(b.ParseFromString(a.SerializeAsString()));
  EXPECT_EQ(SealedFields(a), SealedFields(b));
}

TEST(PathTag, ValidTagVerifiesAndAnyChangeIsForged) {
  auto sealer = MakeSealer();
  v1::ChildSa record = SampleChild();
  record.set_remote_behind_nat(true);
  ASSERT_TRUE(TagChildPath(*sealer, 5, &record).ok());
  EXPECT_EQ(record.path_auth().generation(), 5u);
  EXPECT_EQ(record.path_auth().tag().size(), Sealer::kPathTagSize);
  EXPECT_EQ(CheckChildPath(*sealer, record, 0), PathVerdict::kValid);
  EXPECT_EQ(CheckChildPath(*sealer, record, 5), PathVerdict::kValid);

  auto expect = [&](v1::ChildSa r, PathVerdict verdict, const char* what) {
    EXPECT_EQ(CheckChildPath(*sealer, r, 0), verdict) << what;
  };
  v1::ChildSa r = record;
  r.set_ike_responder_spi(0x2223);
  expect(r, PathVerdict::kForged, "other IKE SPIs");
  r = record;
  r.set_ike_initiator_spi(0x1112);
  expect(r, PathVerdict::kForged, "other initiator SPI");
  r = record;
  r.mutable_remote()->set_port(4501);
  expect(r, PathVerdict::kForged, "other remote port");
  r = record;
  r.mutable_remote()->set_ip(std::string("\xc0\xa8\x01\x03", 4));
  expect(r, PathVerdict::kForged, "other remote address");
  r = record;
  r.mutable_local()->set_ip(std::string("\x0a\0\0\x02", 4));
  expect(r, PathVerdict::kForged, "other local address");
  r = record;
  r.set_remote_behind_nat(false);
  expect(r, PathVerdict::kForged, "NAT flag");
  r = record;
  r.mutable_path_auth()->set_generation(6);
  expect(r, PathVerdict::kForged, "raised generation");
  r = record;
  r.mutable_path_auth()->mutable_tag()->back() ^= 1;
  expect(r, PathVerdict::kForged, "flipped bit");
  r = record;
  r.mutable_path_auth()->mutable_tag()->pop_back();
  expect(r, PathVerdict::kForged, "short tag");
  r = record;
  r.clear_path_auth();
  expect(r, PathVerdict::kMissing, "no tag");
  r = record;
  r.mutable_remote()->set_ip(std::string(17, 'x'));
  expect(r, PathVerdict::kForged, "oversized ip");
  EXPECT_EQ(CheckChildPath(*MakeSealer('\x09'), record, 0), PathVerdict::kForged);
  // Authentic but older than what was applied.
  EXPECT_EQ(CheckChildPath(*sealer, record, 6), PathVerdict::kStale);
}

TEST(PathTag, OneTagServesTheIkeAndChildRecordsOfASa) {
  // mobility-service copies one EndpointUpdate's tag into both.
  auto sealer = MakeSealer();
  v1::IkeSa ike = SampleIke();
  v1::ChildSa child = SampleChild();
  child.set_remote_behind_nat(ike.remote_behind_nat());
  auto auth = TagPath(*sealer, 0x1111, 0x2222, ike.local(), ike.remote(), true, 9);
  ASSERT_TRUE(auth.ok());
  *ike.mutable_path_auth() = *auth;
  *child.mutable_path_auth() = *auth;
  EXPECT_EQ(CheckIkePath(*sealer, ike, 9), PathVerdict::kValid);
  EXPECT_EQ(CheckChildPath(*sealer, child, 9), PathVerdict::kValid);
}

TEST(PathTag, GenerationsOnlyIncrease) {
  const absl::Time t = absl::FromUnixMicros(1000);
  EXPECT_EQ(NextPathGeneration(0, t), 1000u);
  EXPECT_EQ(NextPathGeneration(5000, t), 5001u);
  EXPECT_GT(NextPathGeneration(NextPathGeneration(0)), NextPathGeneration(0) - 1);
}

}  // namespace
}  // namespace vpn::store
