// The forwarder's reports to mobility-service through the real data plane:
// ESP in UDP sent from loopback sockets to a Dataplane (no TUN: decrypted,
// then dropped as no_tun, after the observer saw it), with a fake
// vpn.v1.Mobility behind the reporter.
#include "esp-forwarder/path_reports/mobility_reporter.h"
#include "common/store/sa_seal.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "absl/synchronization/mutex.h"
#include "esp-forwarder/esp/esp_codec.h"
#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/esp/suites.h"
#include "esp-forwarder/io/udp_socket.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

// Counts allocations on threads that asked for it (the no-allocation check).
namespace {
thread_local bool g_counting = false;
thread_local int g_allocations = 0;
}  // namespace
void* operator new(size_t size) {
  if (g_counting) ++g_allocations;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace vpn::forwarder {
namespace {

using esp::testing::Ipv4Packet;
using esp::testing::kClientVip;
using esp::testing::kLanHost;

constexpr uint64_t kSpiI = 0x1111222233334444ull;
constexpr uint64_t kSpiR = 0x5555666677778888ull;

class FakeMobility : public MobilityApi {
 public:
  absl::StatusOr<int64_t> UpdateEndpoint(const v1::EndpointUpdate& update) override {
    absl::MutexLock lock(&mu_);
    updates_.push_back(update);
    if (!update_results_.empty()) {
      absl::Status next = update_results_.front();
      update_results_.erase(update_results_.begin());
      if (!next.ok()) return next;
    }
    return 42;
  }
  absl::Status ReportLiveness(uint64_t spi_i, uint64_t spi_r, absl::Time seen) override {
    absl::MutexLock lock(&mu_);
    liveness_.push_back({spi_i, spi_r, seen});
    return absl::OkStatus();
  }

  struct Liveness {
    uint64_t spi_i, spi_r;
    absl::Time seen;
  };
  std::vector<v1::EndpointUpdate> updates() {
    absl::MutexLock lock(&mu_);
    return updates_;
  }
  std::vector<Liveness> liveness() {
    absl::MutexLock lock(&mu_);
    return liveness_;
  }
  void FailNextUpdates(std::vector<absl::Status> results) {
    absl::MutexLock lock(&mu_);
    update_results_ = std::move(results);
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::EndpointUpdate> updates_;
  std::vector<Liveness> liveness_;
  std::vector<absl::Status> update_results_;
};

double Metric(prometheus::Registry& registry, const std::string& name,
              const std::string& result) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "result" && label.value == result) return metric.counter.value;
      }
    }
  }
  return -1;
}

class ReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pair_ = esp::testing::MakeSaPair(esp::SuiteByName("aes128gcm16")->algorithms, 64);
    auto entry = std::make_shared<SaEntry>();
    entry->sa = pair_.gateway;
    entry->local = *net::IpEndpoint::Parse("127.0.0.1:4500");
    entry->remote = *net::IpEndpoint::Parse("127.0.0.1:9");  // where the record says
    entry->encap = Encap::kUdp;
    entry->ike_spi_i = kSpiI;
    entry->ike_spi_r = kSpiR;
    table_.Put(entry);
    table_.Publish();
  }

  void Start(MobilityReporterOptions options = {}) {
    auto fake = std::make_unique<FakeMobility>();
    fake_ = fake.get();
    const uint8_t key[32] = {9};
    sealer_ = *store::Sealer::FromKey(crypto::ByteSpan(key, sizeof(key)));
    reporter_ = std::make_unique<MobilityReporter>(std::move(fake), &table_, registry_, options,
                                                   sealer_);
    reporter_->Start();
    DataplaneOptions dp;
    dp.natt_listen = "127.0.0.1:0";
    dp.workers = 1;
    dp.raw_esp = false;
    dp.observer = reporter_.get();
    auto plane = Dataplane::Create(dp, &table_, registry_, nullptr);
    ASSERT_TRUE(plane.ok()) << plane.status();
    plane_ = std::move(*plane);
    plane_->Start();
    gateway_ = plane_->natt_socket().bound();
    for (auto* s : {&client_a_, &client_b_, &attacker_}) {
      auto socket = UdpSocket::Bind(*net::IpEndpoint::Parse("127.0.0.1:0"));
      ASSERT_TRUE(socket.ok());
      *s = std::move(*socket);
    }
  }

  void TearDown() override {
    if (plane_) plane_->Stop();
    if (reporter_) reporter_->Stop();
  }

  std::vector<uint8_t> NextEsp() {
    return esp::testing::Protect(*pair_.client, Ipv4Packet(kClientVip, kLanHost, 100));
  }
  // Sends and waits until the data plane has counted it (decrypted or dropped).
  void Send(UdpSocket& from, const std::vector<uint8_t>& esp) {
    const DataplaneStats before = plane_->stats();
    ASSERT_TRUE(from.Send(esp, net::IpEndpoint(), gateway_).ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      const DataplaneStats now = plane_->stats();
      uint64_t drops_before = 0, drops_now = 0;
      for (uint64_t c : before.drops.counts) drops_before += c;
      for (uint64_t c : now.drops.counts) drops_now += c;
      if (drops_now > drops_before) break;
      absl::SleepFor(absl::Microseconds(200));
    }
    ASSERT_TRUE(reporter_->WaitIdle(absl::Seconds(5)));
  }
  net::IpEndpoint Remote() { return table_.Current()->Inbound(pair_.gateway->inbound_spi())->remote; }
  uint64_t Drops(esp::DropReason reason) {
    return plane_->stats().drops.counts[static_cast<size_t>(reason)];
  }

  esp::testing::SaPair pair_;
  SaTable table_;
  prometheus::Registry registry_;
  FakeMobility* fake_ = nullptr;
  std::shared_ptr<const store::Sealer> sealer_;
  std::unique_ptr<MobilityReporter> reporter_;
  std::unique_ptr<Dataplane> plane_;
  net::IpEndpoint gateway_;
  std::unique_ptr<UdpSocket> client_a_, client_b_, attacker_;
};

TEST_F(ReporterTest, NatRebindingMovesTheSaAtOnceAndReportsIt) {
  Start();
  const esp::EspSa* sa = pair_.gateway.get();
  Send(*client_a_, NextEsp());
  // The first authenticated packet comes from elsewhere than the record's
  // 127.0.0.1:9: moved to the client's socket.
  EXPECT_EQ(Remote(), client_a_->bound());
  ASSERT_EQ(fake_->updates().size(), 1u);
  v1::EndpointUpdate update = fake_->updates()[0];
  EXPECT_EQ(update.initiator_spi(), kSpiI);
  EXPECT_EQ(update.responder_spi(), kSpiR);
  EXPECT_EQ(update.cause(), v1::EndpointUpdate::NAT_REBINDING);
  EXPECT_TRUE(update.remote_behind_nat());
  EXPECT_EQ(*net::IpEndpoint::FromProto(update.remote()), client_a_->bound());
  // Tagged by this forwarder (it holds the key and saw authenticated ESP),
  // for its own local address, so every reader accepts mobility-service's
  // copy of the move.
  EXPECT_EQ(net::IpEndpoint::FromProto(update.local())->ToString(), "127.0.0.1:4500");
  EXPECT_GT(update.path_auth().generation(), 0u);
  EXPECT_EQ(store::CheckPath(*sealer_, kSpiI, kSpiR, update.local(), update.remote(), true,
                             update.path_auth(), 0),
            store::PathVerdict::kValid);
  EXPECT_EQ(store::CheckPath(*sealer_, kSpiI, kSpiR + 1, update.local(), update.remote(), true,
                             update.path_auth(), 0),
            store::PathVerdict::kForged);

  // More from the same place: nothing to move.
  for (int i = 0; i < 3; ++i) Send(*client_a_, NextEsp());
  EXPECT_EQ(fake_->updates().size(), 1u);

  // The NAT gives the client a new port: followed, SA state kept.
  Send(*client_b_, NextEsp());
  EXPECT_EQ(Remote(), client_b_->bound());
  ASSERT_EQ(fake_->updates().size(), 2u);
  EXPECT_EQ(*net::IpEndpoint::FromProto(fake_->updates()[1].remote()), client_b_->bound());
  const SaEntry* entry = table_.Current()->Inbound(sa->inbound_spi());
  EXPECT_EQ(entry->sa.get(), sa);
  EXPECT_EQ(entry->sa->replay_top(), 5u);
  EXPECT_EQ(entry->ike_spi_r, kSpiR);
  EXPECT_EQ(Metric(registry_, "forwarder_nat_rebindings_total", "moved"), 2);
}

TEST_F(ReporterTest, ForgedReplayedOrOlderPacketsMoveNothing) {
  Start();
  std::vector<uint8_t> first = NextEsp();
  std::vector<uint8_t> held = NextEsp();  // seq 2, sent later (out of order)
  std::vector<uint8_t> third = NextEsp();
  Send(*client_a_, first);
  Send(*client_a_, third);
  ASSERT_EQ(Remote(), client_a_->bound());
  ASSERT_EQ(fake_->updates().size(), 1u);

  // A spoofed source with a flipped ICV byte: fails integrity.
  std::vector<uint8_t> forged = NextEsp();
  forged.back() ^= 0x01;
  Send(*attacker_, forged);
  EXPECT_EQ(Drops(esp::DropReason::kAuthFailed), 1u);
  // A captured packet replayed from elsewhere: fails the replay check.
  Send(*attacker_, third);
  EXPECT_EQ(Drops(esp::DropReason::kReplay), 1u);
  // Authentic and fresh, but not the highest (reordered): accepted, but it
  // must not move the SA (RFC 4555 §3.5).
  Send(*attacker_, held);
  EXPECT_EQ(pair_.gateway->counters().packets_in, 3u);
  EXPECT_EQ(Remote(), client_a_->bound());
  EXPECT_EQ(fake_->updates().size(), 1u);
  EXPECT_EQ(Metric(registry_, "forwarder_nat_rebindings_total", "moved"), 1);
}

// ike-service just moved the SA (MOBIKE): ESP the client still sends from
// its old address must not pull the SA back there; after the hold-off a
// real NAT rebinding is followed again.
TEST_F(ReporterTest, NoRebindingBackRightAfterAMobikeMove) {
  MobilityReporterOptions options;
  options.move_holdoff = absl::Milliseconds(300);
  Start(options);
  Send(*client_a_, NextEsp());
  ASSERT_EQ(Remote(), client_a_->bound());
  ASSERT_EQ(fake_->updates().size(), 1u);

  // The move to path B, as announced by ike-service.
  const auto left = table_.MovePath(kSpiI, kSpiR, *net::IpEndpoint::Parse("127.0.0.1:4500"),
                                    client_b_->bound(), nullptr);
  ASSERT_EQ(left.size(), 1u);
  reporter_->HoldOffAfterMove(left);
  Send(*client_a_, NextEsp());  // late, from the old path
  EXPECT_EQ(Remote(), client_b_->bound());
  EXPECT_EQ(fake_->updates().size(), 1u);
  // A NAT rebinding to a third address is followed even now.
  Send(*attacker_, NextEsp());
  EXPECT_EQ(Remote(), attacker_->bound());
  EXPECT_EQ(fake_->updates().size(), 2u);

  absl::SleepFor(absl::Milliseconds(350));
  Send(*client_a_, NextEsp());
  EXPECT_EQ(Remote(), client_a_->bound());
  EXPECT_EQ(fake_->updates().size(), 3u);
}

TEST_F(ReporterTest, RefusedMoveGoesBackAndIsNotRetried) {
  MobilityReporterOptions options;
  options.refused_holdoff = absl::Seconds(30);
  Start(options);
  fake_->FailNextUpdates({absl::FailedPreconditionError("not behind a NAT")});
  const net::IpEndpoint before = Remote();
  Send(*client_a_, NextEsp());
  EXPECT_EQ(Remote(), before);  // moved back
  EXPECT_EQ(fake_->updates().size(), 1u);
  // Held off: further packets from the new source ask nothing.
  for (int i = 0; i < 3; ++i) Send(*client_a_, NextEsp());
  EXPECT_EQ(fake_->updates().size(), 1u);
  EXPECT_EQ(Remote(), before);
  EXPECT_EQ(Metric(registry_, "forwarder_nat_rebindings_total", "refused"), 1);
}

TEST_F(ReporterTest, UnavailableIsRetriedAndTheMoveStands) {
  MobilityReporterOptions options;
  options.retry_backoff = absl::Milliseconds(5);
  options.update_attempts = 3;
  Start(options);
  fake_->FailNextUpdates({absl::UnavailableError("down"), absl::UnavailableError("down")});
  Send(*client_a_, NextEsp());
  EXPECT_EQ(fake_->updates().size(), 3u);
  EXPECT_EQ(Remote(), client_a_->bound());
  EXPECT_EQ(Metric(registry_, "forwarder_nat_rebindings_total", "moved"), 1);
}

TEST_F(ReporterTest, LivenessOncePerIntervalAndAtOnceAfterQuiet) {
  MobilityReporterOptions options;
  options.liveness_interval = absl::Milliseconds(300);
  Start(options);
  for (int i = 0; i < 5; ++i) Send(*client_a_, NextEsp());
  ASSERT_EQ(fake_->liveness().size(), 1u);
  EXPECT_EQ(fake_->liveness()[0].spi_i, kSpiI);
  EXPECT_EQ(fake_->liveness()[0].spi_r, kSpiR);
  EXPECT_LT(absl::Now() - fake_->liveness()[0].seen, absl::Seconds(2));
  // Quiet for longer than the interval: the next packet reports at once.
  absl::SleepFor(absl::Milliseconds(350));
  const absl::Time sent = absl::Now();
  Send(*client_a_, NextEsp());
  ASSERT_EQ(fake_->liveness().size(), 2u);
  EXPECT_GE(fake_->liveness()[1].seen, sent - absl::Milliseconds(1));
  // A forged packet is no sign of life.
  absl::SleepFor(absl::Milliseconds(350));
  std::vector<uint8_t> forged = NextEsp();
  forged.back() ^= 0x01;
  Send(*client_a_, forged);
  EXPECT_EQ(fake_->liveness().size(), 2u);
  EXPECT_EQ(Metric(registry_, "forwarder_liveness_reports_total", "sent"), 2);
}

// Two CHILD SAs of one IKE SA: one report per interval for the IKE SA.
TEST_F(ReporterTest, LivenessIsPerIkeSa) {
  MobilityReporterOptions options;
  options.liveness_interval = absl::Seconds(30);
  auto other = esp::testing::MakeSaPair(esp::SuiteByName("aes128gcm16")->algorithms, 64, 9);
  auto entry = std::make_shared<SaEntry>();
  entry->sa = other.gateway;
  entry->remote = *net::IpEndpoint::Parse("127.0.0.1:9");
  entry->ike_spi_i = kSpiI;
  entry->ike_spi_r = kSpiR;
  table_.Put(entry);
  table_.Publish();
  Start(options);
  Send(*client_a_, NextEsp());
  Send(*client_a_, esp::testing::Protect(*other.client, Ipv4Packet(kClientVip, kLanHost, 100)));
  EXPECT_EQ(fake_->liveness().size(), 1u);
}

// The data-plane side allocates nothing (the hot path's rule): liveness
// and move events go into preallocated rings.
TEST_F(ReporterTest, OnAuthenticatedDoesNotAllocate) {
  MobilityReporterOptions options;
  options.liveness_interval = absl::Milliseconds(1);
  auto fake = std::make_unique<FakeMobility>();
  MobilityReporter reporter(std::move(fake), &table_, registry_, options);  // not started
  const SaEntry& entry = *table_.Current()->Inbound(pair_.gateway->inbound_spi());
  const net::IpEndpoint source = *net::IpEndpoint::Parse("127.0.0.1:40000");
  reporter.OnAuthenticated(entry, &source, true, 1'000'000'000);  // warm-up (thread identity)
  // The counter works: one allocation is seen.
  g_counting = true;
  g_allocations = 0;
  delete new int(1);
  g_counting = false;
  ASSERT_EQ(g_allocations, 1);
  g_counting = true;
  g_allocations = 0;
  for (int i = 0; i < 100; ++i) {
    entry.sa->mobility().move_pending.store(false);
    reporter.OnAuthenticated(entry, &source, true, 2'000'000'000 + i * 2'000'000);
  }
  g_counting = false;
  EXPECT_EQ(g_allocations, 0);
}

}  // namespace
}  // namespace vpn::forwarder
