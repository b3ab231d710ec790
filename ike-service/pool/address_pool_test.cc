#include "ike-service/pool/address_pool.h"

#include <set>

#include <gtest/gtest.h>

#include "common/store/store_factory.h"
#include "common/testing/child_process.h"
#include "prometheus/registry.h"

namespace vpn::ike {
namespace {

class AddressPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::OpenStore("embedded:" + testing::MakeTempDir("pool"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  std::unique_ptr<store::Store> store_;
};

TEST_F(AddressPoolTest, HandsOutEachAddressOnceAndTakesItBack) {
  auto pool = AddressPool::Create("10.10.0.0/29", store_.get());
  ASSERT_TRUE(pool.ok()) << pool.status();
  // /29: 8 addresses less network, gateway (.1) and broadcast = 5.
  std::set<std::string> leased;
  for (int i = 0; i < 5; ++i) {
    auto lease = (*pool)->Acquire("ike/sa" + std::to_string(i));
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_EQ(lease->address.size(), 4u);
    EXPECT_GT(lease->revision, 0);
    EXPECT_TRUE(leased.insert(lease->address).second);
    EXPECT_GE(static_cast<uint8_t>(lease->address[3]), 2);
    EXPECT_LE(static_cast<uint8_t>(lease->address[3]), 6);
  }
  EXPECT_EQ((*pool)->Acquire("ike/late").status().code(),
            absl::StatusCode::kResourceExhausted);
  const std::string first = *leased.begin();
  EXPECT_FALSE((*pool)->Release(first, "ike/someone-else").ok());
  // Which SA holds `first` is whatever Acquire gave; find it by trying all.
  bool released = false;
  for (int i = 0; i < 5 && !released; ++i) {
    released = (*pool)->Release(first, "ike/sa" + std::to_string(i)).ok();
  }
  ASSERT_TRUE(released);
  auto again = (*pool)->Acquire("ike/late");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->address, first);
}

// ReleaseOp gives back the lease Acquire wrote, and nothing once the
// address went to someone else.
TEST_F(AddressPoolTest, ReleaseOpOnlyDeletesTheLeaseAsWritten) {
  auto pool = AddressPool::Create("10.30.0.0/30", store_.get());  // one address
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto lease = (*pool)->Acquire("ike/first");
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(store_->Txn({(*pool)->ReleaseOp(*lease)}).ok());
  auto second = (*pool)->Acquire("ike/second");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->address, lease->address);
  // The first SA's op again (e.g. retried): a conflict, the lease stays.
  EXPECT_FALSE(store_->Txn({(*pool)->ReleaseOp(*lease)}).ok());
  EXPECT_EQ((*pool)->Acquire("ike/third").status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(AddressPoolTest, TwoReplicasNeverShareAnAddress) {
  auto a = AddressPool::Create("10.20.0.0/28", store_.get());
  auto b = AddressPool::Create("10.20.0.0/28", store_.get());
  ASSERT_TRUE(a.ok() && b.ok());
  std::set<std::string> leased;
  for (int i = 0; i < 6; ++i) {
    auto from_a = (*a)->Acquire("a" + std::to_string(i));
    auto from_b = (*b)->Acquire("b" + std::to_string(i));
    ASSERT_TRUE(from_a.ok() && from_b.ok());
    EXPECT_TRUE(leased.insert(from_a->address).second);
    EXPECT_TRUE(leased.insert(from_b->address).second);
  }
}

TEST_F(AddressPoolTest, Ipv6AndBadCidrs) {
  auto pool = AddressPool::Create("fd00:10::/120", store_.get());
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto lease = (*pool)->Acquire("x");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->address.size(), 16u);
  EXPECT_EQ(static_cast<uint8_t>(lease->address[15]), 2);
  EXPECT_FALSE(AddressPool::Create("10.0.0.1/24", store_.get()).ok());
  EXPECT_FALSE(AddressPool::Create("10.0.0.0", store_.get()).ok());
  EXPECT_FALSE(AddressPool::Create("10.0.0.0/8", store_.get()).ok());
  EXPECT_FALSE(AddressPool::Create("10.0.0.0/31", store_.get()).ok());
}

// The value of `name`{pool=`pool`} in `registry`, or -1 if absent.
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::string& pool) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      if (metric.label.size() == 1 && metric.label[0].name == "pool" &&
          metric.label[0].value == pool) {
        return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                              : metric.gauge.value;
      }
    }
  }
  return -1;
}

TEST_F(AddressPoolTest, ExportsItsSizeAndCountsExhaustion) {
  prometheus::Registry registry;
  auto v4 = AddressPool::Create("10.10.0.0/29", store_.get());
  auto v6 = AddressPool::Create("fd00:10::/124", store_.get());
  ASSERT_TRUE(v4.ok() && v6.ok());
  (*v4)->ExportMetricsIn(registry);
  (*v6)->ExportMetricsIn(registry);
  EXPECT_EQ(MetricValue(registry, "ike_address_pool_addresses", "10.10.0.0/29"), 5);
  EXPECT_EQ(MetricValue(registry, "ike_address_pool_addresses", "fd00:10::/124"), 14);
  EXPECT_EQ(MetricValue(registry, "ike_address_pool_exhausted_total", "10.10.0.0/29"), 0);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*v4)->Acquire("ike/sa" + std::to_string(i)).ok());
  EXPECT_EQ(MetricValue(registry, "ike_address_pool_exhausted_total", "10.10.0.0/29"), 0);
  EXPECT_FALSE((*v4)->Acquire("ike/late").ok());
  EXPECT_FALSE((*v4)->Acquire("ike/later").ok());
  EXPECT_EQ(MetricValue(registry, "ike_address_pool_exhausted_total", "10.10.0.0/29"), 2);
  EXPECT_EQ(MetricValue(registry, "ike_address_pool_exhausted_total", "fd00:10::/124"), 0);
}

}  // namespace
}  // namespace vpn::ike
