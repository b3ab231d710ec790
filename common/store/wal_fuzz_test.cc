// Runs the WAL fuzz target over generated seeds and a deterministic set of
// mutations of them (truncations, bit flips, byte overwrites, splices).
#include <gtest/gtest.h>

#include <random>

#include "common/store/wal_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace vpn::store::wal {
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

void RunTarget(const std::string& s) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(WalFuzz, SeedsAndMutationsDoNotCrash) {
  std::mt19937 rng(1234);
  int runs = 0;
  for (const std::string& seed : Seeds()) {
    RunTarget(seed);
    ++runs;
    for (size_t n = 0; n <= seed.size() && n < 200; ++n) {
      RunTarget(seed.substr(0, n));
      ++runs;
    }
    if (seed.empty()) continue;
    for (int i = 0; i < 3000; ++i) {
      std::string m = seed;
      int edits = 1 + rng() % 4;
      for (int e = 0; e < edits; ++e) {
        size_t pos = rng() % m.size();
        switch (rng() % 4) {
          case 0:
            m[pos] ^= static_cast<char>(1 << (rng() % 8));
            break;
          case 1:
            m[pos] = static_cast<char>(rng() % 2 ? 0xff : 0x00);
            break;
          case 2:
            m.resize(pos + 1);
            break;
          case 3:
            m.insert(pos, m.substr(rng() % m.size(), 1 + rng() % 8));
            break;
        }
      }
      RunTarget(m);
      ++runs;
    }
  }
  EXPECT_GT(runs, 10000);
}

}  // namespace
}  // namespace vpn::store::wal
