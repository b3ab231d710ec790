// The in-process link between ike-service and the forwarder's relay.
#include "gateway/local_forwarder_link.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace vpn::gateway {
namespace {

struct Seen {
  absl::Mutex mu;
  std::vector<std::string> sent ABSL_GUARDED_BY(mu);      // payloads out to clients
  std::vector<uint64_t> moved ABSL_GUARDED_BY(mu);        // path updates (spi_r)
  std::vector<std::string> delivered ABSL_GUARDED_BY(mu);  // payloads up to ike-service
};

v1::IkeDatagram Datagram(uint64_t spi_i, const std::string& payload) {
  v1::IkeDatagram datagram;
  datagram.set_initiator_spi(spi_i);
  datagram.set_payload(payload);
  return datagram;
}

TEST(LocalForwarderLinkTest, CarriesBothWaysAndDetachesOnStop) {
  Seen seen;
  prometheus::Registry registry;
  forwarder::IkeRelay relay(
      [&](const v1::IkeDatagram& d) {
        absl::MutexLock lock(&seen.mu);
        seen.sent.push_back(d.payload());
        return absl::OkStatus();
      },
      [&](const v1::SaPathUpdate& u) {
        absl::MutexLock lock(&seen.mu);
        seen.moved.push_back(u.responder_spi());
      },
      [&](const v1::ChildSa& c) {
        absl::MutexLock lock(&seen.mu);
        seen.moved.push_back(c.inbound_spi());
      },
      registry);
  EXPECT_FALSE(relay.Deliver(Datagram(1, "before")));  // no replica yet

  LocalForwarderLink link(&relay, "replica-a", [&](size_t forwarder, const v1::IkeDatagram& d) {
    EXPECT_EQ(forwarder, 0u);
    absl::MutexLock lock(&seen.mu);
    seen.delivered.push_back(d.payload());
  });
  EXPECT_FALSE(link.Send(0, Datagram(1, "not started")));
  link.Start();
  EXPECT_EQ(relay.replica_count(), 1u);
  EXPECT_TRUE(relay.Deliver(Datagram(1, "sa-init")));
  EXPECT_TRUE(link.Send(0, Datagram(1, "response")));
  EXPECT_FALSE(link.Send(1, Datagram(1, "no such forwarder")));
  v1::SaPathUpdate update;
  update.set_responder_spi(42);
  EXPECT_EQ(link.SendPathUpdate(update), 1u);
  v1::ChildSa child;
  child.set_inbound_spi(7);
  EXPECT_TRUE(link.SendChildSa(0, child));
  {
    absl::MutexLock lock(&seen.mu);
    EXPECT_EQ(seen.delivered, std::vector<std::string>{"sa-init"});
    EXPECT_EQ(seen.sent, std::vector<std::string>{"response"});
    EXPECT_EQ(seen.moved, (std::vector<uint64_t>{42, 7}));
  }

  link.Stop();
  EXPECT_EQ(relay.replica_count(), 0u);
  EXPECT_FALSE(relay.Deliver(Datagram(1, "after")));
  EXPECT_FALSE(link.Send(0, Datagram(1, "after")));
  EXPECT_EQ(link.SendPathUpdate(update), 0u);
}

// A second replica under a connected replica's name is refused, never a
// replacement; once the first detaches, the name is free again.
TEST(LocalForwarderLinkTest, KeepsTheFirstReplicaOfAName) {
  prometheus::Registry registry;
  forwarder::IkeRelay relay([](const v1::IkeDatagram&) { return absl::OkStatus(); }, nullptr,
                            nullptr, registry);
  int first = 0, second = 0;
  LocalForwarderLink a(&relay, "same", [&](size_t, const v1::IkeDatagram&) { ++first; });
  LocalForwarderLink b(&relay, "same", [&](size_t, const v1::IkeDatagram&) { ++second; });
  a.Start();
  b.Start();
  EXPECT_EQ(relay.replica_count(), 1u);
  EXPECT_TRUE(relay.Deliver(Datagram(7, "x")));
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 0);
  a.Stop();
  b.Start();
  EXPECT_TRUE(relay.Deliver(Datagram(7, "y")));
  EXPECT_EQ(second, 1);
}

}  // namespace
}  // namespace vpn::gateway
