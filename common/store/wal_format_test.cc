#include "common/store/wal_format.h"

#include <gtest/gtest.h>

namespace vpn::store::wal {
namespace {

Record TxnRecord() {
  Record r;
  r.type = Record::Type::kTxn;
  r.lsn = 7;
  r.revision = 42;
  r.ops.push_back({KvOp::Type::kPut, "sa/1", std::string("v\0x", 3), 5});
  r.ops.push_back({KvOp::Type::kDelete, "sa/2", "", 0});
  r.revoked_leases = {5, 6};
  return r;
}

TEST(WalFormat, Crc32cKnownAnswer) {
  // RFC 3720 B.4: CRC-32C of "123456789".
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
}

TEST(WalFormat, RoundTripsEveryRecordType) {
  std::string buf;
  AppendFrame(TxnRecord(), &buf);
  Record kv;
  kv.type = Record::Type::kSnapshotKv;
  kv.lsn = 9;
  kv.kv = {"k", "value", 1, 2, 3, 4};
  AppendFrame(kv, &buf);
  Record grant;
  grant.type = Record::Type::kLeaseGrant;
  grant.lsn = 10;
  grant.lease_id = 77;
  grant.ttl_ms = 5000;
  AppendFrame(grant, &buf);

  absl::string_view rest = buf;
  auto f1 = DecodeFrame(rest);
  ASSERT_TRUE(f1.ok()) << f1.status();
  EXPECT_EQ(f1->record.revision, 42);
  ASSERT_EQ(f1->record.ops.size(), 2u);
  EXPECT_EQ(f1->record.ops[0].value, std::string("v\0x", 3));
  EXPECT_EQ(f1->record.ops[0].lease, 5);
  EXPECT_EQ(f1->record.ops[1].type, KvOp::Type::kDelete);
  EXPECT_EQ(f1->record.revoked_leases, (std::vector<LeaseId>{5, 6}));
  rest.remove_prefix(f1->size);
  auto f2 = DecodeFrame(rest);
  ASSERT_TRUE(f2.ok()) << f2.status();
  EXPECT_EQ(f2->record.kv.key, "k");
  EXPECT_EQ(f2->record.kv.version, 3);
  EXPECT_EQ(f2->record.kv.lease, 4);
  rest.remove_prefix(f2->size);
  auto f3 = DecodeFrame(rest);
  ASSERT_TRUE(f3.ok()) << f3.status();
  EXPECT_EQ(f3->record.lease_id, 77);
  EXPECT_EQ(f3->record.ttl_ms, 5000);
  EXPECT_EQ(f3->size, rest.size());
}

TEST(WalFormat, EveryTruncationIsDetectedAsTorn) {
  std::string buf;
  AppendFrame(TxnRecord(), &buf);
  for (size_t n = 0; n < buf.size(); ++n) {
    bool truncated = false;
    auto f = DecodeFrame(absl::string_view(buf).substr(0, n), &truncated);
    ASSERT_FALSE(f.ok()) << n;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(truncated) << n;
  }
}

TEST(WalFormat, EveryBitFlipIsDetected) {
  std::string buf;
  AppendFrame(TxnRecord(), &buf);
  for (size_t i = 0; i < buf.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = buf;
      bad[i] ^= static_cast<char>(1 << bit);
      auto f = DecodeFrame(bad);
      EXPECT_FALSE(f.ok()) << "byte " << i << " bit " << bit;
      if (!f.ok()) EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss);
    }
  }
}

TEST(WalFormat, MalformedPayloadsAreDataLoss) {
  // Valid type and LSN, then a txn claiming 2^20 ops with no bytes behind it.
  std::string p;
  p.push_back(1);
  p.append(8, '\0');
  p.append(8, '\0');
  p.append("\x00\x00\x10\x00", 4);
  auto r = ParsePayload(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(ParsePayload("").ok());
  EXPECT_FALSE(ParsePayload(std::string("\x63", 1) + std::string(8, '\0')).ok());
  // A string length past the end.
  std::string q;
  q.push_back(11);
  q.append(8, '\0');
  q.append("\xff\xff\xff\x7f", 4);
  EXPECT_EQ(ParsePayload(q).status().code(), absl::StatusCode::kDataLoss);
}

TEST(WalFormat, OversizedLengthIsRejectedWithoutAllocating) {
  std::string buf("\xff\xff\xff\xff\0\0\0\0", 8);
  auto f = DecodeFrame(buf);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("exceeds"), std::string::npos);
}

}  // namespace
}  // namespace vpn::store::wal
