// The Mobility Manager against the embedded store with a fake clock.
#include "mobility-service/tracker/mobility_manager.h"

#include <atomic>
#include <functional>
#include <thread>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/store/forwarding_store.h"
#include "common/store/store_factory.h"
#include "common/testing/child_process.h"
#include "google/protobuf/util/time_util.h"
#include "mobility-service/tracker/path_record.pb.h"

namespace vpn::mobility {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAreArray;
using TimeUtil = google::protobuf::util::TimeUtil;

constexpr uint64_t kSpiI = 0x1111222233334444;
constexpr uint64_t kSpiR = 0xaaaabbbbccccdddd;

google::protobuf::Timestamp Ts(absl::Time time) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
}

v1::Endpoint Ep(const std::string& ip4, uint32_t port) {
  v1::Endpoint out;
  out.set_ip(ip4);
  out.set_port(port);
  return out;
}

const v1::Endpoint kGateway = Ep(std::string("\xcb\x00\x71\x01", 4), 4500);      // 203.0.113.1
const v1::Endpoint kClientHome = Ep(std::string("\xc6\x33\x64\x07", 4), 4500);   // 198.51.100.7
const v1::Endpoint kClientCafe = Ep(std::string("\xc0\x00\x02\x32", 4), 61000);  // 192.0.2.50

std::string Vip(uint8_t last) { return std::string("\x0a\x0a\x00", 3) + static_cast<char>(last); }
std::string LeaseKey(const std::string& vip) {
  return "pool/v4/" + absl::BytesToHexString(vip);
}

v1::ChildSa ChildFor(const v1::IkeSa& ike, uint32_t spi) {
  v1::ChildSa child;
  child.set_inbound_spi(spi);
  child.set_outbound_spi(spi ^ 0xffff0000);
  child.set_ike_initiator_spi(ike.initiator_spi());
  child.set_ike_responder_spi(ike.responder_spi());
  child.set_state(v1::CHILD_SA_STATE_INSTALLED);
  child.set_mode(v1::IPSEC_MODE_TUNNEL);
  child.set_encapsulation(v1::ENCAPSULATION_RAW);
  child.set_sealed_keys("sealed-" + std::to_string(spi));
  child.set_replay_window(1024);
  *child.mutable_local() = ike.local();
  *child.mutable_remote() = ike.remote();
  return child;
}

// A CHILD SA created the way ike-service must: the new record and the IKE
// record listing it in one Txn, compare-on-version on the IKE record.
absl::Status AddChildCas(store::Store& store, const std::string& ike_key, uint32_t spi) {
  for (int attempt = 0; attempt < 10000; ++attempt) {
    auto ike = store::GetProto<v1::IkeSa>(store, ike_key);
    if (!ike.ok()) return ike.status();
    v1::IkeSa next = ike->record;
    next.add_child_spis(spi);
    absl::StatusOr<store::TxnResult> done = store.Txn(
        {store::Op::Put(ike_key, next.SerializeAsString(),
                        store::Condition::VersionIs(ike->version)),
         store::Op::Put(MobilityManager::ChildKey(spi), ChildFor(next, spi).SerializeAsString(),
                        store::Condition::CreateOnly())});
    if (store::IsConflict(done.status())) continue;
    return done.status();
  }
  return absl::AbortedError("AddChildCas never committed");
}

// Runs `before_txn` once, just before the first Txn reaches the store: a
// writer that slips in between the manager's reads and its commit.
class InterferingStore : public store::ForwardingStore {
 public:
  InterferingStore(store::Store* inner, std::function<void()> before_txn)
      : ForwardingStore(inner), before_txn_(std::move(before_txn)) {}
  absl::StatusOr<store::TxnResult> Txn(const std::vector<store::Op>& ops) override {
    if (before_txn_) std::exchange(before_txn_, nullptr)();
    return ForwardingStore::Txn(ops);
  }

 private:
  std::function<void()> before_txn_;
};

double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::string& label_value = "") {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      if (!label_value.empty() &&
          (metric.label.empty() || metric.label[0].value != label_value)) {
        continue;
      }
      return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                            : metric.gauge.value;
    }
  }
  return -1;
}

class MobilityManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::OpenStore("embedded:" + testing::MakeTempDir("mobility"));
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
  }

  static ManagerOptions Options() {
    ManagerOptions options;
    options.outage.liveness_timeout = absl::Minutes(2);
    options.outage.outage_window = absl::Minutes(30);
    options.persist_interval = absl::Seconds(30);
    options.sweep_interval = absl::ZeroDuration();  // the test sweeps
    return options;
  }

  // A manager with its own registry; Start()ed and synced with the store.
  MobilityManager& NewManager(ManagerOptions options = Options(),
                              store::Store* store = nullptr) {
    registries_.push_back(std::make_unique<prometheus::Registry>());
    managers_.push_back(std::make_unique<MobilityManager>(
        store != nullptr ? store : store_.get(), &clock_, options, *registries_.back()));
    MobilityManager& manager = *managers_.back();
    manager.Start();
    EXPECT_TRUE(manager.WaitForRevision(Revision(), absl::Seconds(10)));
    return manager;
  }
  prometheus::Registry& registry() { return *registries_.back(); }

  int64_t Revision() {
    auto listed = store_->List("ike/");
    return listed.ok() ? listed->revision : 0;
  }

  // An established IKE SA with CHILD SAs and leased virtual IPs, as
  // ike-service records it.
  v1::IkeSa WriteSa(uint64_t spi_i, uint64_t spi_r, std::vector<uint32_t> children,
                    std::vector<std::string> vips = {}, bool behind_nat = false,
                    bool mobike = true) {
    v1::IkeSa ike;
    ike.mutable_meta()->set_owner_replica("ike-0");
    ike.set_initiator_spi(spi_i);
    ike.set_responder_spi(spi_r);
    ike.set_state(v1::IKE_SA_STATE_ESTABLISHED);
    ike.set_eap_identity("alice");
    *ike.mutable_local() = kGateway;
    *ike.mutable_remote() = kClientHome;
    ike.set_remote_behind_nat(behind_nat);
    ike.set_mobike(mobike);
    ike.set_sealed_keys("sealed-ike");
    *ike.mutable_established() = Ts(clock_.Now());
    *ike.mutable_last_seen() = Ts(clock_.Now());
    const std::string key = MobilityManager::IkeKey(spi_i, spi_r);
    std::vector<store::Op> ops;
    for (uint32_t spi : children) {
      ike.add_child_spis(spi);
      ops.push_back(store::Op::Put(MobilityManager::ChildKey(spi),
                                   ChildFor(ike, spi).SerializeAsString()));
    }
    for (const std::string& vip : vips) {
      ike.add_virtual_ips(vip);
      ops.push_back(store::Op::Put(LeaseKey(vip), key, store::Condition::CreateOnly()));
    }
    ops.push_back(store::Op::Put(key, ike.SerializeAsString()));
    auto done = store_->Txn(ops);
    EXPECT_TRUE(done.ok()) << done.status();
    return ike;
  }

  v1::IkeSa ReadIke(uint64_t spi_i = kSpiI, uint64_t spi_r = kSpiR, int64_t* version = nullptr) {
    auto got = store::GetProto<v1::IkeSa>(*store_, MobilityManager::IkeKey(spi_i, spi_r));
    EXPECT_TRUE(got.ok()) << got.status();
    if (version != nullptr) *version = got.ok() ? got->version : 0;
    return got.ok() ? got->record : v1::IkeSa();
  }
  v1::ChildSa ReadChild(uint32_t spi, int64_t* version = nullptr) {
    auto got = store::GetProto<v1::ChildSa>(*store_, MobilityManager::ChildKey(spi));
    EXPECT_TRUE(got.ok()) << got.status();
    if (version != nullptr) *version = got.ok() ? got->version : 0;
    return got.ok() ? got->record : v1::ChildSa();
  }
  bool Exists(const std::string& key) { return store_->Get(key).ok(); }

  static v1::EndpointUpdate Move(const v1::Endpoint& remote,
                                 v1::EndpointUpdate::Cause cause = v1::EndpointUpdate::MOBIKE,
                                 bool behind_nat = true, uint64_t spi_i = kSpiI,
                                 uint64_t spi_r = kSpiR) {
    v1::EndpointUpdate update;
    update.set_initiator_spi(spi_i);
    update.set_responder_spi(spi_r);
    *update.mutable_local() = kGateway;
    *update.mutable_remote() = remote;
    update.set_cause(cause);
    update.set_remote_behind_nat(behind_nat);
    return update;
  }

  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::vector<std::unique_ptr<prometheus::Registry>> registries_;
  std::vector<std::unique_ptr<MobilityManager>> managers_;
};

// ---- UpdateEndpoint ----------------------------------------------------------

TEST_F(MobilityManagerTest, UpdateCommitsIkeAndChildRecordsTogether) {
  WriteSa(kSpiI, kSpiR, {0xc0000001, 0xc0000002});
  MobilityManager& manager = NewManager();
  int64_t ike_before = 0, child_before = 0;
  ReadIke(kSpiI, kSpiR, &ike_before);
  ReadChild(0xc0000001, &child_before);
  const int64_t revision_before = Revision();

  clock_.Advance(absl::Seconds(5));
  absl::StatusOr<int64_t> version = manager.UpdateEndpoint(Move(kClientCafe));
  ASSERT_TRUE(version.ok()) << version.status();

  int64_t ike_after = 0;
  const v1::IkeSa ike = ReadIke(kSpiI, kSpiR, &ike_after);
  EXPECT_EQ(*version, ike_after);
  EXPECT_EQ(ike_after, ike_before + 1);
  EXPECT_EQ(ike.remote().SerializeAsString(), kClientCafe.SerializeAsString());
  EXPECT_TRUE(ike.remote_behind_nat());
  EXPECT_EQ(ike.sealed_keys(), "sealed-ike");  // untouched
  EXPECT_EQ(ike.meta().owner_replica(), "ike-0");
  for (uint32_t spi : {0xc0000001u, 0xc0000002u}) {
    int64_t child_after = 0;
    const v1::ChildSa child = ReadChild(spi, &child_after);
    EXPECT_EQ(child_after, child_before + 1);
    EXPECT_EQ(child.remote().SerializeAsString(), kClientCafe.SerializeAsString());
    EXPECT_EQ(child.encapsulation(), v1::ENCAPSULATION_UDP);  // behind a NAT now
    EXPECT_EQ(child.sealed_keys(), "sealed-" + std::to_string(spi));
    EXPECT_EQ(child.replay_window(), 1024u);
  }
  // One Txn: IKE record, both CHILD records and the path record at one revision.
  auto ike_kv = store_->Get(MobilityManager::IkeKey(kSpiI, kSpiR));
  auto child_kv = store_->Get(MobilityManager::ChildKey(0xc0000002));
  auto path_kv = store_->Get(MobilityManager::PathKey(kSpiI, kSpiR));
  ASSERT_TRUE(ike_kv.ok() && child_kv.ok() && path_kv.ok());
  EXPECT_EQ(ike_kv->mod_revision, revision_before + 1);
  EXPECT_EQ(child_kv->mod_revision, ike_kv->mod_revision);
  EXPECT_EQ(path_kv->mod_revision, ike_kv->mod_revision);

  absl::StatusOr<v1::PathReply> path = manager.GetPath(kSpiI, kSpiR);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(path->current().SerializeAsString(), kClientCafe.SerializeAsString());
  ASSERT_EQ(path->history_size(), 2);
  EXPECT_EQ(path->history(0).remote().SerializeAsString(), kClientHome.SerializeAsString());
  EXPECT_EQ(path->history(1).remote().SerializeAsString(), kClientCafe.SerializeAsString());
  EXPECT_EQ(path->history(1).cause(), v1::EndpointUpdate::MOBIKE);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(path->history(1).since()),
            absl::ToUnixSeconds(clock_.Now()));
  EXPECT_FALSE(path->dormant());
  EXPECT_EQ(MetricValue(registry(), "mobility_endpoint_updates_total", "mobike"), 1);
  EXPECT_EQ(MetricValue(registry(), "mobility_update_conflicts_total"), 0);

  // A retransmitted update changes nothing and writes nothing.
  const int64_t revision_after = Revision();
  absl::StatusOr<int64_t> again = manager.UpdateEndpoint(Move(kClientCafe));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, ike_after);
  EXPECT_EQ(Revision(), revision_after);
}

TEST_F(MobilityManagerTest, CopiesTheMoversPathTagIntoEveryRecord) {
  // mobility-service holds no key: the tag ike-service or esp-forwarder
  // computed goes into the IKE and CHILD records unchanged, beside the path.
  WriteSa(kSpiI, kSpiR, {0xc0000001, 0xc0000002});
  MobilityManager& manager = NewManager();
  v1::EndpointUpdate update = Move(kClientCafe);
  update.mutable_path_auth()->set_generation(42);
  update.mutable_path_auth()->set_tag(std::string("\x01\x02tag-bytes\xff", 12));
  ASSERT_TRUE(manager.UpdateEndpoint(update).ok());
  const v1::IkeSa ike = ReadIke(kSpiI, kSpiR);
  EXPECT_EQ(ike.path_auth().SerializeAsString(), update.path_auth().SerializeAsString());
  EXPECT_TRUE(ike.remote_behind_nat());
  for (uint32_t spi : {0xc0000001u, 0xc0000002u}) {
    const v1::ChildSa child = ReadChild(spi);
    EXPECT_EQ(child.path_auth().SerializeAsString(), update.path_auth().SerializeAsString());
    EXPECT_TRUE(child.remote_behind_nat());
    EXPECT_EQ(child.remote().SerializeAsString(), kClientCafe.SerializeAsString());
  }
  // A later move replaces the tag with its own.
  v1::EndpointUpdate next = Move(kClientHome);
  next.mutable_path_auth()->set_generation(43);
  next.mutable_path_auth()->set_tag("other-tag");
  ASSERT_TRUE(manager.UpdateEndpoint(next).ok());
  EXPECT_EQ(ReadIke(kSpiI, kSpiR).path_auth().generation(), 43u);
  EXPECT_EQ(ReadChild(0xc0000002).path_auth().tag(), "other-tag");
}

TEST_F(MobilityManagerTest, NatRebindingOnlyForClientsBehindANat) {
  WriteSa(kSpiI, kSpiR, {0xc0000001}, {}, /*behind_nat=*/false, /*mobike=*/false);
  WriteSa(2, 3, {0xc0000002}, {}, /*behind_nat=*/true, /*mobike=*/false);
  MobilityManager& manager = NewManager();

  EXPECT_TRUE(absl::IsFailedPrecondition(
      manager.UpdateEndpoint(Move(kClientCafe, v1::EndpointUpdate::NAT_REBINDING)).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      manager.UpdateEndpoint(Move(kClientCafe, v1::EndpointUpdate::MOBIKE)).status()))
      << "no N(MOBIKE_SUPPORTED) was exchanged";
  EXPECT_TRUE(absl::IsNotFound(
      manager.UpdateEndpoint(Move(kClientCafe, v1::EndpointUpdate::MOBIKE, true, 9, 9))
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      manager.UpdateEndpoint(Move(kClientCafe, v1::EndpointUpdate::CAUSE_UNSPECIFIED))
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      manager.UpdateEndpoint(Move(Ep("bad", 4500), v1::EndpointUpdate::MOBIKE)).status()));

  // The NATed one follows its new external port; local stays when unset.
  v1::EndpointUpdate rebinding =
      Move(Ep(kClientHome.ip(), 40001), v1::EndpointUpdate::NAT_REBINDING, true, 2, 3);
  rebinding.clear_local();
  ASSERT_TRUE(manager.UpdateEndpoint(rebinding).ok());
  const v1::IkeSa ike = ReadIke(2, 3);
  EXPECT_EQ(ike.remote().port(), 40001u);
  EXPECT_EQ(ike.local().SerializeAsString(), kGateway.SerializeAsString());
  EXPECT_EQ(ReadChild(0xc0000002).remote().port(), 40001u);
  EXPECT_EQ(MetricValue(registry(), "mobility_endpoint_updates_total", "nat_rebinding"), 1);
}

TEST_F(MobilityManagerTest, ConflictRereadsAndRetriesKeepingTheRekey) {
  WriteSa(kSpiI, kSpiR, {0xc0000001});
  const std::string ike_key = MobilityManager::IkeKey(kSpiI, kSpiR);
  // A CHILD rekey commits between the manager's reads and its Txn.
  InterferingStore interfering(store_.get(), [&] {
    ASSERT_TRUE(AddChildCas(*store_, ike_key, 0xc0000099).ok());
  });
  MobilityManager& manager = NewManager(Options(), &interfering);

  absl::StatusOr<int64_t> version = manager.UpdateEndpoint(Move(kClientCafe));
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(MetricValue(registry(), "mobility_update_conflicts_total"), 1);

  int64_t stored_version = 0;
  const v1::IkeSa ike = ReadIke(kSpiI, kSpiR, &stored_version);
  EXPECT_EQ(*version, stored_version);
  EXPECT_THAT(ike.child_spis(), ElementsAre(0xc0000001, 0xc0000099));  // the rekey survived
  EXPECT_EQ(ike.remote().SerializeAsString(), kClientCafe.SerializeAsString());
  // ... and the new CHILD SA moved with the rest.
  EXPECT_EQ(ReadChild(0xc0000099).remote().SerializeAsString(), kClientCafe.SerializeAsString());
  EXPECT_EQ(ReadChild(0xc0000001).remote().SerializeAsString(), kClientCafe.SerializeAsString());
}

TEST_F(MobilityManagerTest, GivesUpAfterBoundedAttempts) {
  WriteSa(kSpiI, kSpiR, {0xc0000001});
  const std::string ike_key = MobilityManager::IkeKey(kSpiI, kSpiR);
  // A writer that always wins: every Txn is preceded by a rekey.
  class AlwaysInterfering : public InterferingStore {
   public:
    AlwaysInterfering(store::Store* inner, std::function<void()> each)
        : InterferingStore(inner, nullptr), inner_(inner), each_(std::move(each)) {}
    absl::StatusOr<store::TxnResult> Txn(const std::vector<store::Op>& ops) override {
      each_();
      return inner_->Txn(ops);
    }

   private:
    store::Store* const inner_;
    std::function<void()> each_;
  };
  uint32_t next_spi = 0xd0000000;
  AlwaysInterfering interfering(store_.get(), [&] {
    ASSERT_TRUE(AddChildCas(*store_, ike_key, next_spi++).ok());
  });
  ManagerOptions options = Options();
  options.max_attempts = 3;
  MobilityManager& manager = NewManager(options, &interfering);
  EXPECT_TRUE(absl::IsAborted(manager.UpdateEndpoint(Move(kClientCafe)).status()));
  EXPECT_EQ(MetricValue(registry(), "mobility_update_conflicts_total"), 3);
  EXPECT_EQ(ReadIke().child_spis_size(), 4);  // every rekey committed
}

// A rekey racing address updates loses neither: every CHILD SPI added by
// the rekeying thread is listed, and every record ends at the last address.
TEST_F(MobilityManagerTest, RaceAgainstConcurrentRekeysLosesNeither) {
  WriteSa(kSpiI, kSpiR, {0xc0000001}, {}, /*behind_nat=*/true);
  const std::string ike_key = MobilityManager::IkeKey(kSpiI, kSpiR);
  ManagerOptions options = Options();
  options.max_attempts = 10000;
  MobilityManager& manager = NewManager(options);

  constexpr int kRounds = 60;
  std::atomic<bool> go{false};
  std::vector<uint32_t> added;
  std::thread rekeyer([&] {
    while (!go) std::this_thread::yield();
    for (int i = 0; i < kRounds; ++i) {
      const uint32_t spi = 0xe0000000 + i;
      ASSERT_TRUE(AddChildCas(*store_, ike_key, spi).ok());
      added.push_back(spi);
    }
  });
  std::thread mover([&] {
    while (!go) std::this_thread::yield();
    for (int i = 0; i < kRounds; ++i) {
      auto moved = manager.UpdateEndpoint(
          Move(Ep(kClientCafe.ip(), 20000 + i), v1::EndpointUpdate::NAT_REBINDING));
      ASSERT_TRUE(moved.ok()) << moved.status();
    }
  });
  go = true;
  rekeyer.join();
  mover.join();

  const v1::IkeSa ike = ReadIke();
  std::vector<uint32_t> expected = {0xc0000001};
  expected.insert(expected.end(), added.begin(), added.end());
  EXPECT_THAT(ike.child_spis(), UnorderedElementsAreArray(expected));
  EXPECT_EQ(ike.remote().port(), 20000u + kRounds - 1);
  for (uint32_t spi : expected) {
    const v1::ChildSa child = ReadChild(spi);
    EXPECT_EQ(child.remote().SerializeAsString(), ike.remote().SerializeAsString())
        << "child " << spi;
  }
  absl::StatusOr<v1::PathReply> path = manager.GetPath(kSpiI, kSpiR);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(path->history(path->history_size() - 1).remote().port(), 20000u + kRounds - 1);
  ::testing::Test::RecordProperty(
      "conflicts", static_cast<int>(MetricValue(registry(), "mobility_update_conflicts_total")));
}

TEST_F(MobilityManagerTest, HistoryKeepsTheLastEntries) {
  WriteSa(kSpiI, kSpiR, {0xc0000001});
  ManagerOptions options = Options();
  options.history_limit = 4;
  MobilityManager& manager = NewManager(options);
  for (uint32_t port = 1; port <= 10; ++port) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(manager.UpdateEndpoint(Move(Ep(kClientCafe.ip(), port))).ok());
  }
  absl::StatusOr<v1::PathReply> path = manager.GetPath(kSpiI, kSpiR);
  ASSERT_TRUE(path.ok());
  ASSERT_EQ(path->history_size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(path->history(i).remote().port(), 7u + i);
  auto stored = store::GetProto<PathRecord>(*store_, MobilityManager::PathKey(kSpiI, kSpiR));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->record.history_size(), 4);
}

// ---- Liveness and the outage window -----------------------------------------

TEST_F(MobilityManagerTest, LivenessStaysInMemoryUntilPersisted) {
  WriteSa(kSpiI, kSpiR, {0xc0000001});
  WriteSa(2, 3, {0xc0000002});
  MobilityManager& manager = NewManager();
  const int64_t revision = Revision();
  for (int i = 0; i < 20; ++i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(manager.ReportLiveness(kSpiI, kSpiR, clock_.Now()).ok());
    ASSERT_TRUE(manager.ReportLiveness(2, 3, absl::InfinitePast()).ok());
  }
  EXPECT_EQ(Revision(), revision) << "no store write per report";
  EXPECT_TRUE(absl::IsNotFound(manager.ReportLiveness(7, 7, clock_.Now())));

  clock_.Advance(absl::Seconds(30));
  manager.Sweep();  // persist_interval has passed: one batched write
  EXPECT_EQ(Revision(), revision + 1);
  for (auto [i, r] : {std::pair<uint64_t, uint64_t>{kSpiI, kSpiR}, {2, 3}}) {
    auto stored = store::GetProto<PathRecord>(*store_, MobilityManager::PathKey(i, r));
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(TimeUtil::TimestampToSeconds(stored->record.last_seen()),
              absl::ToUnixSeconds(clock_.Now() - absl::Seconds(30)));
  }
  // A report from the future is taken as now.
  ASSERT_TRUE(manager.ReportLiveness(kSpiI, kSpiR, clock_.Now() + absl::Hours(1)).ok());
  auto path = manager.GetPath(kSpiI, kSpiR);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(TimeUtil::TimestampToSeconds(path->last_seen()), absl::ToUnixSeconds(clock_.Now()));
}

TEST_F(MobilityManagerTest, SilentClientTurnsDormantAndReturns) {
  WriteSa(kSpiI, kSpiR, {0xc0000001}, {Vip(5)});
  MobilityManager& manager = NewManager();
  EXPECT_EQ(manager.tracked(), 1u);

  clock_.Advance(absl::Minutes(1));
  manager.Sweep();
  EXPECT_EQ(ReadIke().state(), v1::IKE_SA_STATE_ESTABLISHED);

  clock_.Advance(absl::Minutes(1) + absl::Seconds(1));  // silent past liveness_timeout
  manager.Sweep();
  EXPECT_EQ(ReadIke().state(), v1::IKE_SA_STATE_DORMANT);
  EXPECT_EQ(manager.dormant(), 1u);
  EXPECT_EQ(MetricValue(registry(), "mobility_sas_dormant"), 1);
  EXPECT_EQ(MetricValue(registry(), "mobility_sas_tracked"), 1);
  auto path = manager.GetPath(kSpiI, kSpiR);
  ASSERT_TRUE(path.ok());
  EXPECT_TRUE(path->dormant());
  EXPECT_TRUE(Exists(MobilityManager::ChildKey(0xc0000001))) << "kept, not deleted";
  EXPECT_TRUE(Exists(LeaseKey(Vip(5))));

  // Ten minutes later the client is back (a liveness report): DORMANT clears
  // at once, and the last_seen is stored with it.
  clock_.Advance(absl::Minutes(10));
  ASSERT_TRUE(manager.ReportLiveness(kSpiI, kSpiR, clock_.Now()).ok());
  EXPECT_EQ(ReadIke().state(), v1::IKE_SA_STATE_ESTABLISHED);
  EXPECT_EQ(manager.dormant(), 0u);
  auto stored = store::GetProto<PathRecord>(*store_, MobilityManager::PathKey(kSpiI, kSpiR));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(TimeUtil::TimestampToSeconds(stored->record.last_seen()),
            absl::ToUnixSeconds(clock_.Now()));

  // Silent again; this time it comes back from a new address (MOBIKE): the
  // update clears DORMANT in the same Txn.
  clock_.Advance(absl::Minutes(3));
  manager.Sweep();
  ASSERT_EQ(ReadIke().state(), v1::IKE_SA_STATE_DORMANT);
  ASSERT_TRUE(manager.UpdateEndpoint(Move(kClientCafe)).ok());
  const v1::IkeSa ike = ReadIke();
  EXPECT_EQ(ike.state(), v1::IKE_SA_STATE_ESTABLISHED);
  EXPECT_EQ(ike.remote().SerializeAsString(), kClientCafe.SerializeAsString());
  EXPECT_EQ(manager.dormant(), 0u);
}

TEST_F(MobilityManagerTest, OutageWindowEndCleansUpAndReleasesTheAddress) {
  const v1::IkeSa gone = WriteSa(kSpiI, kSpiR, {0xc0000001, 0xc0000002}, {Vip(5)});
  WriteSa(2, 3, {0xc0000003}, {Vip(6)});  // a client that stays
  // A lease listed by the silent SA but held by another SA is left alone.
  ASSERT_TRUE(store_->Put(LeaseKey(Vip(9)), MobilityManager::IkeKey(2, 3)).ok());
  {
    v1::IkeSa odd = ReadIke();
    odd.add_virtual_ips(Vip(9));
    ASSERT_TRUE(store_->Put(MobilityManager::IkeKey(kSpiI, kSpiR), odd.SerializeAsString()).ok());
  }
  MobilityManager& manager = NewManager();
  ASSERT_TRUE(manager.UpdateEndpoint(Move(kClientCafe)).ok());  // a path record to delete

  for (int minute = 1; minute <= 30; ++minute) {
    clock_.Advance(absl::Minutes(1));
    ASSERT_TRUE(manager.ReportLiveness(2, 3, clock_.Now()).ok());
    manager.Sweep();
    ASSERT_TRUE(Exists(MobilityManager::IkeKey(kSpiI, kSpiR))) << "minute " << minute;
  }
  EXPECT_EQ(ReadIke().state(), v1::IKE_SA_STATE_DORMANT);
  clock_.Advance(absl::Seconds(1));  // silent past outage_window
  manager.Sweep();

  EXPECT_FALSE(Exists(MobilityManager::IkeKey(kSpiI, kSpiR)));
  EXPECT_FALSE(Exists(MobilityManager::ChildKey(0xc0000001)));
  EXPECT_FALSE(Exists(MobilityManager::ChildKey(0xc0000002)));
  EXPECT_FALSE(Exists(MobilityManager::PathKey(kSpiI, kSpiR)));
  EXPECT_FALSE(Exists(LeaseKey(Vip(5))));
  // The address is back in the pool: a create-only lease (what ike-service's
  // AddressPool::Acquire writes) succeeds.
  store::PutOptions create_only;
  create_only.condition = store::Condition::CreateOnly();
  EXPECT_TRUE(store_->Put(LeaseKey(Vip(5)), "ike/new-owner", create_only).ok());
  EXPECT_TRUE(Exists(LeaseKey(Vip(9))));
  EXPECT_TRUE(Exists(MobilityManager::IkeKey(2, 3)));
  EXPECT_TRUE(Exists(MobilityManager::ChildKey(0xc0000003)));
  EXPECT_TRUE(Exists(LeaseKey(Vip(6))));
  EXPECT_EQ(MetricValue(registry(), "mobility_sas_expired_total"), 1);
  EXPECT_EQ(manager.tracked(), 1u);
  EXPECT_EQ(manager.dormant(), 0u);
  EXPECT_TRUE(absl::IsNotFound(manager.GetPath(kSpiI, kSpiR).status()));
  (void)gone;
}

// After an IKE rekey ike-service rewrites the CHILD records for the new IKE
// SA; an old IKE record left behind neither moves nor deletes them.
TEST_F(MobilityManagerTest, LeavesChildSasOfARekeyedIkeSaAlone) {
  WriteSa(kSpiI, kSpiR, {0xc0000001});  // the old IKE SA
  WriteSa(5, 6, {0xc0000001});          // the new one; child/c0000001 is now its
  MobilityManager& manager = NewManager();
  ASSERT_TRUE(manager.UpdateEndpoint(Move(kClientCafe)).ok());
  EXPECT_EQ(ReadChild(0xc0000001).remote().SerializeAsString(), kClientHome.SerializeAsString());
  for (int minute = 1; minute <= 31; ++minute) {
    clock_.Advance(absl::Minutes(1));
    ASSERT_TRUE(manager.ReportLiveness(5, 6, clock_.Now()).ok());
    manager.Sweep();
  }
  EXPECT_FALSE(Exists(MobilityManager::IkeKey(kSpiI, kSpiR)));
  EXPECT_TRUE(Exists(MobilityManager::ChildKey(0xc0000001)));
  EXPECT_EQ(ReadChild(0xc0000001).ike_responder_spi(), 6u);
}

TEST_F(MobilityManagerTest, NoVerdictsUntilReportersHadTimeAfterAStart) {
  WriteSa(kSpiI, kSpiR, {0xc0000001});
  clock_.Advance(absl::Hours(1));  // the store's last_seen is an hour old
  MobilityManager& manager = NewManager();
  manager.Sweep();
  EXPECT_EQ(ReadIke().state(), v1::IKE_SA_STATE_ESTABLISHED);
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(manager.ReportLiveness(kSpiI, kSpiR, clock_.Now()).ok());  // it is alive
  clock_.Advance(absl::Minutes(1));
  manager.Sweep();
  EXPECT_EQ(ReadIke().state(), v1::IKE_SA_STATE_ESTABLISHED);
  EXPECT_TRUE(Exists(MobilityManager::IkeKey(kSpiI, kSpiR)));
}

// ---- The view of the store ---------------------------------------------------

TEST_F(MobilityManagerTest, WatchFollowsNewAndDeletedSas) {
  MobilityManager& manager = NewManager();
  EXPECT_EQ(manager.tracked(), 0u);
  WriteSa(kSpiI, kSpiR, {0xc0000001});
  WriteSa(2, 3, {0xc0000002});
  ASSERT_TRUE(manager.WaitForRevision(Revision(), absl::Seconds(10)));
  EXPECT_EQ(manager.tracked(), 2u);
  EXPECT_EQ(MetricValue(registry(), "mobility_sas_tracked"), 2);
  ASSERT_TRUE(manager.UpdateEndpoint(Move(kClientCafe)).ok());
  ASSERT_TRUE(Exists(MobilityManager::PathKey(kSpiI, kSpiR)));

  // ike-service deletes the SA (client DELETE): untracked, path record gone.
  auto deleted = store_->Txn({store::Op::Delete(MobilityManager::IkeKey(kSpiI, kSpiR)),
                              store::Op::Delete(MobilityManager::ChildKey(0xc0000001))});
  ASSERT_TRUE(deleted.ok());
  // (Not Revision(): the manager's own "mobility/" delete may follow it.)
  ASSERT_TRUE(manager.WaitForRevision(deleted->revision, absl::Seconds(10)));
  EXPECT_EQ(manager.tracked(), 1u);
  for (int i = 0; i < 200 && Exists(MobilityManager::PathKey(kSpiI, kSpiR)); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_FALSE(Exists(MobilityManager::PathKey(kSpiI, kSpiR)));
}

TEST_F(MobilityManagerTest, RestartRebuildsEverythingFromTheStore) {
  const absl::Time established = clock_.Now();
  WriteSa(kSpiI, kSpiR, {0xc0000001}, {Vip(5)});  // reported, then silent
  WriteSa(2, 3, {0xc0000002});                      // silent from the start
  // An orphan path record (its SA vanished while no tracker ran).
  ASSERT_TRUE(store_->Put(MobilityManager::PathKey(8, 8), PathRecord().SerializeAsString()).ok());
  {
    MobilityManager& first = NewManager();
    clock_.Advance(absl::Minutes(20));
    ASSERT_TRUE(first.ReportLiveness(kSpiI, kSpiR, clock_.Now()).ok());
    ASSERT_TRUE(first.UpdateEndpoint(Move(kClientCafe)).ok());
    first.Sweep();  // marks 2-3 DORMANT, persists 1-2's last_seen
    EXPECT_EQ(first.dormant(), 1u);
    first.Stop();  // "crash": nothing but the store survives
    managers_.clear();
  }
  clock_.Advance(absl::Minutes(1));
  MobilityManager& second = NewManager();
  EXPECT_EQ(second.tracked(), 2u);
  EXPECT_EQ(second.dormant(), 1u);
  EXPECT_EQ(MetricValue(registry(), "mobility_sas_dormant"), 1);
  EXPECT_FALSE(Exists(MobilityManager::PathKey(8, 8))) << "orphan removed";
  auto path = second.GetPath(kSpiI, kSpiR);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(path->history_size(), 2);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(path->last_seen()),
            absl::ToUnixSeconds(established + absl::Minutes(20)));

  // 2-3 expires 30 min after its establishment; 1-2 30 min after it was
  // last seen (minute 20, from the stored record), not before.
  clock_.Advance(absl::Minutes(10));  // minute 31
  second.Sweep();
  EXPECT_FALSE(Exists(MobilityManager::IkeKey(2, 3)));
  EXPECT_TRUE(Exists(MobilityManager::IkeKey(kSpiI, kSpiR)));
  EXPECT_EQ(ReadIke().state(), v1::IKE_SA_STATE_DORMANT);
  clock_.Advance(absl::Minutes(19) + absl::Seconds(30));  // minute 50:30
  second.Sweep();
  EXPECT_FALSE(Exists(MobilityManager::IkeKey(kSpiI, kSpiR)));
  EXPECT_FALSE(Exists(LeaseKey(Vip(5))));
  EXPECT_EQ(second.tracked(), 0u);
  EXPECT_EQ(MetricValue(registry(), "mobility_sas_expired_total"), 2);
}

}  // namespace
}  // namespace vpn::mobility
