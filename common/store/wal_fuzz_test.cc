// Runs the WAL fuzz target over generated seeds and a deterministic set of
// mutations of them (truncations, bit flips, byte overwrites, splices).
#include <gtest/gtest.h>

#include "common/store/wal_format.h"
#include "common/testing/fuzz_corpus.h"

namespace vpn::store::wal {
namespace testing = ::vpn::testing;
namespace {

std::vector<std::string> Seeds() {
  std::vector<std::string> seeds;
  Record txn;
  txn.type = Record::Type::kTxn;
  txn.lsn = 1;
  txn.revision = 2;
  txn.ops.push_back({KvOp::Type::kPut, "sa/abc", std::string(600, 'x'), 3});
  txn.ops.push_back({KvOp::Type::kDelete, "sa/def", "", 0});
  txn.revoked_leases = {3};
  Record snap;
  snap.type = Record::Type::kSnapshotKv;
  snap.kv = {"key", "value", 1, 2, 3, 0};
  Record grant;
  grant.type = Record::Type::kLeaseGrant;
  grant.lease_id = 4;
  grant.ttl_ms = 1000;
  Record end;
  end.type = Record::Type::kSnapshotEnd;
  end.count = 2;
  std::string log;
  for (const Record* r : {&txn, &snap, &grant, &end}) {
    std::string one;
    AppendFrame(*r, &one);
    seeds.push_back(one);
    seeds.push_back(one.substr(kFrameHeaderSize));  // bare payload
    log += one;
  }
  seeds.push_back(log);
  seeds.push_back("");
  return seeds;
}

TEST(WalFuzz, SeedsAndMutationsDoNotCrash) {
  EXPECT_GT(testing::RunSeedsAndMutations(Seeds(), 3000, 1234), 10000u);
}

}  // namespace
}  // namespace vpn::store::wal
