// BruteForceGuard on a fake clock: limits per user and per address, the
// sliding window, lockouts that end on time, resets, attempts in flight,
// address keys and the memory bound.
#include "auth-service/eap/brute_force_guard.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "auth-service/eap/eap_session.h"
#include "auth-service/eap/shared_failures.h"
#include "common/store/embedded_store.h"
#include "common/store/etcd_launcher.h"
#include "common/store/etcd_store.h"
#include "common/store/forwarding_store.h"
#include "gtest/gtest.h"

namespace vpn::auth::eap {
namespace {

using Outcome = AttemptLimiter::Outcome;

const Bytes kAddressA = {192, 0, 2, 1};
const Bytes kAddressB = {198, 51, 100, 7};

Bytes V6(uint8_t last, uint8_t subnet = 0) {
  Bytes address = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, subnet,
                   0,    0,    0,    0,    0, 0, 0, last};
  return address;
}

class BruteForceGuardTest : public ::testing::Test {
 protected:
  void Make() {
    options_.clock = [this] { return now_; };
    BruteForceObserver observer;
    observer.on_refused = [this](absl::string_view s) {
      ++refused_[std::string(s)];
    };
    observer.on_lockout = [this](absl::string_view s) {
      ++lockouts_[std::string(s)];
    };
    observer.on_locked = [this](absl::string_view s, size_t n) {
      locked_[std::string(s)] = n;
    };
    guard_ = std::make_unique<BruteForceGuard>(options_, observer);
  }

  // One whole attempt; false when refused.
  bool Attempt(absl::string_view user, ByteSpan address, Outcome outcome) {
    if (!guard_->Begin(user, address)) return false;
    guard_->Finish(user, address, outcome);
    return true;
  }
  bool Fail(absl::string_view user, ByteSpan address = kAddressA) {
    return Attempt(user, address, Outcome::kFailure);
  }
  bool Succeed(absl::string_view user, ByteSpan address = kAddressA) {
    return Attempt(user, address, Outcome::kSuccess);
  }

  BruteForceOptions options_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::unique_ptr<BruteForceGuard> guard_;
  std::map<std::string, int> refused_;
  std::map<std::string, int> lockouts_;
  std::map<std::string, size_t> locked_;
};

TEST_F(BruteForceGuardTest, DefaultsAreFiveAndTwentyInFifteenMinutes) {
  const BruteForceOptions defaults;
  EXPECT_EQ(defaults.max_failures_per_user, 5u);
  EXPECT_EQ(defaults.max_failures_per_address, 20u);
  EXPECT_EQ(defaults.failure_window, absl::Minutes(15));
  EXPECT_EQ(defaults.lockout, absl::Minutes(15));
}

TEST_F(BruteForceGuardTest, UserIsLockedFromEveryAddressUntilTheLockoutEnds) {
  options_.max_failures_per_user = 3;
  Make();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Fail("alice")) << i;
  EXPECT_EQ(lockouts_["user"], 1);
  EXPECT_EQ(guard_->locked_users(), 1u);
  // Even the right password, from anywhere, is refused.
  EXPECT_FALSE(Succeed("alice"));
  EXPECT_FALSE(Succeed("alice", kAddressB));
  EXPECT_EQ(refused_["user"], 2);
  // Others are not affected.
  EXPECT_TRUE(Succeed("bob"));

  // Refusals do not extend the lockout.
  now_ += absl::Minutes(14);
  EXPECT_FALSE(Succeed("alice"));
  now_ += absl::Minutes(1);
  EXPECT_TRUE(Succeed("alice"));
  EXPECT_EQ(guard_->locked_users(), 0u);
  EXPECT_EQ(lockouts_["user"], 1);
}

TEST_F(BruteForceGuardTest, OnlyFailuresWithinTheWindowCount) {
  options_.max_failures_per_user = 3;
  Make();
  EXPECT_TRUE(Fail("alice"));  // t=0
  now_ += absl::Minutes(10);
  EXPECT_TRUE(Fail("alice"));  // t=10m
  now_ += absl::Minutes(10);
  EXPECT_TRUE(Fail("alice"));  // t=20m: the first one left the window
  EXPECT_EQ(guard_->locked_users(), 0u);
  EXPECT_TRUE(Fail("alice"));  // three within 15 minutes
  EXPECT_EQ(guard_->locked_users(), 1u);
  EXPECT_FALSE(Fail("alice"));
}

TEST_F(BruteForceGuardTest, SuccessResetsTheUserButNotTheAddress) {
  options_.max_failures_per_user = 3;
  options_.max_failures_per_address = 5;
  Make();
  EXPECT_TRUE(Fail("alice"));
  EXPECT_TRUE(Fail("alice"));
  EXPECT_TRUE(Succeed("alice"));
  EXPECT_TRUE(Fail("alice"));
  EXPECT_TRUE(Fail("alice"));
  EXPECT_EQ(guard_->locked_users(), 0u);  // 2 since the success, not 4
  // The address has seen 4 failures; a 5th (any user) locks it.
  EXPECT_TRUE(Fail("carol"));
  EXPECT_EQ(lockouts_["address"], 1);
  EXPECT_FALSE(Succeed("dave"));
  EXPECT_EQ(refused_["address"], 1);
  EXPECT_TRUE(Succeed("dave", kAddressB));
}

TEST_F(BruteForceGuardTest, SprayingManyUsersFromOneAddressIsLimited) {
  Make();  // defaults: 5 per user, 20 per address
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(Fail(absl::StrCat("user", i)));
  EXPECT_FALSE(Fail("user20"));
  EXPECT_EQ(guard_->locked_addresses(), 1u);
  EXPECT_EQ(guard_->locked_users(), 0u);
}

TEST_F(BruteForceGuardTest, AttemptsInFlightCountAgainstTheLimit) {
  options_.max_failures_per_user = 2;
  Make();
  ASSERT_TRUE(guard_->Begin("alice", kAddressA));
  ASSERT_TRUE(guard_->Begin("alice", kAddressB));
  EXPECT_FALSE(guard_->Begin("alice", kAddressA));  // would pass the limit
  guard_->Finish("alice", kAddressA, Outcome::kNotChecked);
  ASSERT_TRUE(guard_->Begin("alice", kAddressA));
  guard_->Finish("alice", kAddressA, Outcome::kFailure);
  guard_->Finish("alice", kAddressB, Outcome::kFailure);
  EXPECT_EQ(guard_->locked_users(), 1u);
  EXPECT_EQ(lockouts_["user"], 1);
}

TEST_F(BruteForceGuardTest, AddressKeys) {
  const Bytes mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
  EXPECT_EQ(ClientAddressKey(mapped),
            ClientAddressKey(kAddressA));
  EXPECT_EQ(ClientAddressKey(V6(1)), ClientAddressKey(V6(2)));
  EXPECT_NE(ClientAddressKey(V6(1)),
            ClientAddressKey(V6(1, 1)));
  EXPECT_EQ(ClientAddressKey({}), "");
  EXPECT_EQ(ClientAddressKey(Bytes(5)), "");
}

TEST_F(BruteForceGuardTest, Ipv6IsCountedPerSlash64) {
  options_.max_failures_per_address = 2;
  Make();
  EXPECT_TRUE(Fail("u1", V6(1)));
  EXPECT_TRUE(Fail("u2", V6(2)));  // same /64
  EXPECT_FALSE(Fail("u3", V6(3)));
  EXPECT_TRUE(Fail("u3", V6(3, 1)));  // another /64
}

TEST_F(BruteForceGuardTest, NoAddressMeansOnlyTheUserLimit) {
  options_.max_failures_per_address = 1;
  Make();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(Fail(absl::StrCat("u", i), {}));
  EXPECT_EQ(guard_->tracked_addresses(), 0u);
}

TEST_F(BruteForceGuardTest, ZeroDisablesALimit) {
  options_.max_failures_per_user = 0;
  options_.max_failures_per_address = 0;
  Make();
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(Fail("alice"));
  EXPECT_EQ(guard_->tracked_users(), 0u);
  EXPECT_EQ(guard_->tracked_addresses(), 0u);
}

TEST_F(BruteForceGuardTest, MemoryIsBoundedAndTheOldestIsForgotten) {
  options_.max_failures_per_user = 2;
  options_.max_tracked = 100;
  Make();
  EXPECT_TRUE(Fail("first", Bytes{}));
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(Fail(absl::StrCat("user", i), Bytes{}));
    EXPECT_LE(guard_->tracked_users(), 100u);
  }
  // "first" was evicted, so its failure is forgotten; the newest are kept.
  EXPECT_TRUE(Fail("first", Bytes{}));
  EXPECT_EQ(guard_->locked_users(), 0u);
  EXPECT_TRUE(Fail("user999", Bytes{}));
  EXPECT_EQ(guard_->locked_users(), 1u);
}

TEST_F(BruteForceGuardTest, SweepDropsStaleEntriesAndReportsLockedCounts) {
  options_.max_failures_per_user = 2;
  options_.max_failures_per_address = 3;
  Make();
  EXPECT_TRUE(Fail("alice"));
  EXPECT_TRUE(Fail("alice"));
  EXPECT_TRUE(Fail("bob"));
  guard_->Sweep();
  EXPECT_EQ(locked_["user"], 1u);
  EXPECT_EQ(locked_["address"], 1u);
  EXPECT_EQ(guard_->tracked_users(), 2u);

  now_ += absl::Minutes(15);  // window and lockout over
  guard_->Sweep();
  EXPECT_EQ(locked_["user"], 0u);
  EXPECT_EQ(locked_["address"], 0u);
  EXPECT_EQ(guard_->tracked_users(), 0u);
  EXPECT_EQ(guard_->tracked_addresses(), 0u);
}

TEST_F(BruteForceGuardTest, SuccessesLeaveNothingBehind) {
  Make();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Succeed(absl::StrCat("u", i)));
  EXPECT_EQ(guard_->tracked_users(), 0u);
  EXPECT_EQ(guard_->tracked_addresses(), 0u);
}

// ---- Shared mode: two auth-service replicas, one real (embedded) store.

// A store whose writes can be made to fail, as when etcd is unreachable.
class FlakyStore : public store::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<store::WriteResult> Put(absl::string_view key, absl::string_view value,
                                         const store::PutOptions& options) override {
    if (fail_writes) return absl::UnavailableError("store down (test)");
    return ForwardingStore::Put(key, value, options);
  }
  std::atomic<bool> fail_writes{false};
};

// The replicas share the embedded store, or etcd as when they run on
// several machines.
class SharedBruteForceTest : public ::testing::TestWithParam<std::string> {
 protected:
  struct Replica {
    std::unique_ptr<SharedFailures> shared;
    std::unique_ptr<BruteForceGuard> guard;
    std::map<std::string, int> lockouts;
  };

  void SetUp() override {
    if (GetParam() == "etcd") {
      store::EtcdOptions options;
      options.endpoints = {store::SharedTestEtcd().endpoint()};
      store_ = *store::EtcdStore::Connect(options);
      for (const store::KeyValue& kv : Records()) ASSERT_TRUE(store_->Delete(kv.key).ok());
    } else {
      std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      std::replace(test.begin(), test.end(), '/', '_');
      store::EmbeddedOptions options;
      options.dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + test;
      store_ = *store::EmbeddedStore::Open(options);
    }
    flaky_ = std::make_unique<FlakyStore>(store_.get());
    for (Replica* r : {&a_, &b_}) {
      r->shared = SharedFailures::Start(
          r == &a_ ? static_cast<store::Store*>(flaky_.get()) : store_.get(), 1000);
      BruteForceOptions options;
      options.max_failures_per_user = 5;
      options.max_failures_per_address = 8;
      options.clock = [this] { return now_; };
      options.shared = r->shared.get();
      BruteForceObserver observer;
      observer.on_lockout = [r](absl::string_view scope) { ++r->lockouts[std::string(scope)]; };
      r->guard = std::make_unique<BruteForceGuard>(options, observer);
    }
  }

  static bool Attempt(Replica& r, absl::string_view user, ByteSpan address, Outcome outcome) {
    if (!r.guard->Begin(user, address)) return false;
    r.guard->Finish(user, address, outcome);
    return true;
  }
  // Waits (real time) until `r` refuses the user: its watch brought the record.
  static bool RefusesSoon(Replica& r, absl::string_view user, ByteSpan address) {
    for (int i = 0; i < 200; ++i) {
      if (!r.guard->Begin(user, address)) return true;
      r.guard->Finish(user, address, Outcome::kNotChecked);
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  std::vector<store::KeyValue> Records() { return store_->List("auth/failures/")->kvs; }

  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FlakyStore> flaky_;
  Replica a_, b_;
};

INSTANTIATE_TEST_SUITE_P(Stores, SharedBruteForceTest, ::testing::Values("embedded", "etcd"));

TEST_P(SharedBruteForceTest, FailuresOnEveryReplicaCountTowardsOneLimit) {
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Attempt(a_, "mallory", kAddressA, Outcome::kFailure));
  EXPECT_TRUE(Attempt(b_, "mallory", kAddressB, Outcome::kFailure));
  EXPECT_TRUE(Attempt(b_, "mallory", kAddressB, Outcome::kFailure));  // the 5th: locks
  EXPECT_EQ(b_.lockouts["user"], 1);
  EXPECT_FALSE(b_.guard->Begin("mallory", kAddressB));
  EXPECT_TRUE(RefusesSoon(a_, "mallory", kAddressA));
  // Another user from the same addresses is not locked (8 per address).
  EXPECT_TRUE(Attempt(a_, "alice", kAddressA, Outcome::kSuccess));
  // The lockout ends on time everywhere.
  now_ += absl::Minutes(15) + absl::Seconds(1);
  EXPECT_TRUE(Attempt(a_, "mallory", kAddressA, Outcome::kSuccess));
  EXPECT_TRUE(Attempt(b_, "mallory", kAddressB, Outcome::kSuccess));
}

TEST_P(SharedBruteForceTest, AddressLimitHoldsAcrossReplicasAndUsers) {
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(Attempt(a_, absl::StrCat("user", i), kAddressA, Outcome::kFailure));
    EXPECT_TRUE(Attempt(b_, absl::StrCat("other", i), kAddressA, Outcome::kFailure));
  }
  EXPECT_TRUE(RefusesSoon(a_, "someone-new", kAddressA));
  EXPECT_TRUE(RefusesSoon(b_, "someone-new", kAddressA));
  EXPECT_TRUE(Attempt(b_, "someone-new", kAddressB, Outcome::kSuccess));
}

TEST_P(SharedBruteForceTest, ASuccessResetsTheUserForEveryReplica) {
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(Attempt(a_, "bob", kAddressA, Outcome::kFailure));
  EXPECT_TRUE(Attempt(b_, "bob", kAddressB, Outcome::kSuccess));
  // Four more failures do not lock: the success cleared the first four.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(Attempt(a_, "bob", kAddressB, Outcome::kFailure));
  EXPECT_TRUE(Attempt(a_, "bob", kAddressB, Outcome::kSuccess));
  EXPECT_EQ(a_.lockouts["user"] + b_.lockouts["user"], 0);
}

TEST_P(SharedBruteForceTest, TheStoreHoldsNoNamesOrAddressesAndIsSwept) {
  EXPECT_TRUE(Attempt(a_, "mallory", kAddressA, Outcome::kFailure));
  const std::vector<store::KeyValue> records = Records();
  ASSERT_EQ(records.size(), 2u);  // one user, one address
  const std::string address(kAddressA.begin(), kAddressA.end());
  for (const store::KeyValue& kv : records) {
    EXPECT_EQ(kv.key.find("mallory"), std::string::npos) << kv.key;
    EXPECT_EQ(kv.value.find("mallory"), std::string::npos);
    EXPECT_EQ(kv.key.find(address), std::string::npos);
    EXPECT_EQ(kv.value.find(address), std::string::npos);
  }
  now_ += absl::Minutes(15) + absl::Seconds(1);  // past the failure window
  // Replica B sweeps them once its watch has brought them.
  for (int i = 0; i < 200 && !Records().empty(); ++i) {
    b_.guard->Sweep();
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(Records().empty());
}

TEST_P(SharedBruteForceTest, WithoutTheStoreFailuresAreCountedLocally) {
  flaky_->fail_writes = true;  // replica A's store writes fail
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Attempt(a_, "mallory", kAddressA, Outcome::kFailure));
  EXPECT_EQ(a_.lockouts["user"], 1);
  EXPECT_FALSE(a_.guard->Begin("mallory", kAddressA));
  EXPECT_TRUE(Records().empty());
}

TEST_P(SharedBruteForceTest, TheSharedTableIsBoundedAndLocalCountingTakesOver) {
  std::unique_ptr<SharedFailures> small = SharedFailures::Start(store_.get(), 2);
  BruteForceOptions options;
  options.max_failures_per_user = 3;
  options.max_failures_per_address = 0;
  options.clock = [this] { return now_; };
  options.shared = small.get();
  BruteForceGuard guard(options);
  for (const char* user : {"u1", "u2", "u3"}) {
    ASSERT_TRUE(guard.Begin(user, kAddressA));
    guard.Finish(user, kAddressA, Outcome::kFailure);
  }
  EXPECT_EQ(Records().size(), 2u);  // u3 did not fit
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(guard.Begin("u3", kAddressA));
    guard.Finish("u3", kAddressA, Outcome::kFailure);
  }
  EXPECT_FALSE(guard.Begin("u3", kAddressA));  // locked, counted here
}

}  // namespace
}  // namespace vpn::auth::eap
