// The store -> SA table path against a real embedded store: records written
// the way ike-service writes them, with sealed keys.
#include "esp-forwarder/sa_table/store_sync.h"

#include <stdlib.h>

#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "common/store/embedded_store.h"
#include "common/store/forwarding_store.h"
#include "common/store/sa_keys.h"
#include "common/store/sa_seal.h"
#include "esp-forwarder/esp/esp_codec.h"
#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/sa_table/child_sa_records.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace vpn::forwarder {
namespace {

TEST(SeqRecordTest, DecodesExactlyWhatItEncodes) {
  const SeqMarks marks{1u << 20, 1040000};
  ASSERT_EQ(EncodeSeqMarks(marks), "out=1048576 in=1040000");
  absl::optional<SeqMarks> back = DecodeSeqMarks(EncodeSeqMarks(marks));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->outbound_reserved, marks.outbound_reserved);
  EXPECT_EQ(back->inbound_highest, marks.inbound_highest);
  // Anything else is damage, not a mark to trust.
  for (const char* value : {"out=01 in=2", "out=+1 in=2", "in=2 out=1", "out=1 in=2 x",
                            "out=1  in=2", "out=1", "out=18446744073709551616 in=0", ""}) {
    EXPECT_FALSE(DecodeSeqMarks(value).has_value()) << value;
  }
  uint32_t spi = 0;
  EXPECT_TRUE(SpiFromSeqKey(SeqKey(0xc00004ff), &spi));
  EXPECT_EQ(spi, 0xc00004ffu);
  for (const char* key : {"seq/C00004FF", "seq/0xc0004f", "seq/+c00004f", "seq/c00004ff0", "sa/c00004ff"}) {
    EXPECT_FALSE(SpiFromSeqKey(key, &spi)) << key;
  }
}

using esp::testing::Ipv4Packet;
using esp::testing::kClientVip;
using esp::testing::kLanHost;

class StoreSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/store_sync_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    store::EmbeddedOptions options;
    options.dir = dir_;
    auto store = store::EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    uint8_t key[32] = {1, 2, 3};
    sealer_ = std::shared_ptr<store::Sealer>(std::move(*store::Sealer::FromKey(key)));
  }

  ChildSaSpec Spec(uint32_t spi_in, uint32_t spi_out, const char* suite = "aes128gcm16") {
    ChildSaSpec spec;
    spec.inbound_spi = spi_in;
    spec.outbound_spi = spi_out;
    spec.algorithms = esp::SuiteByName(suite)->algorithms;
    spec.keys = *esp::MakeTestKeys(spec.algorithms, spi_in);
    spec.local = *net::IpEndpoint::Parse("192.0.2.1:4500");
    spec.remote = *net::IpEndpoint::Parse("192.0.2.2:4500");
    spec.replay_window = 128;
    return spec;
  }

  // The client's SA for a spec.
  std::shared_ptr<esp::EspSa> Client(const ChildSaSpec& spec) {
    esp::SaParams params;
    params.inbound_spi = spec.outbound_spi;
    params.outbound_spi = spec.inbound_spi;
    params.algorithms = spec.algorithms;
    const uint8_t zero[16] = {};
    params.local_ts = {esp::AddressRange::Prefix(kClientVip, false, 32)};
    params.remote_ts = {esp::AddressRange::Prefix(zero, false, 0)};
    return *esp::EspSa::Create(params, spec.keys.mirrored());
  }

  // Waits until `predicate` holds for the published table; returns the time.
  template <typename P>
  absl::Duration WaitFor(SaTable& table, P predicate) {
    const absl::Time start = absl::Now();
    while (!predicate(*table.Current())) {
      if (absl::Now() - start > absl::Seconds(5)) {
        ADD_FAILURE() << "timed out";
        break;
      }
      absl::SleepFor(absl::Microseconds(100));
    }
    return absl::Now() - start;
  }

  std::string dir_;
  std::shared_ptr<store::Store> store_;
  std::shared_ptr<store::Sealer> sealer_;
  prometheus::Registry registry_;
};

TEST_F(StoreSyncTest, InstallUpdateDeleteAndRestart) {
  SaTable table;
  StoreSync sync(store_, sealer_, &table, registry_);
  sync.Start();
  ChildSaSpec spec = Spec(0xc0000001, 0xd0000001);
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
  const absl::Duration install = WaitFor(table, [](const SaSnapshot& s) {
    return s.Inbound(0xc0000001) != nullptr;
  });
  EXPECT_LT(install, absl::Milliseconds(50)) << "install took " << install;

  // The installed SA decrypts the client's packets and is the outbound SA
  // for the client's virtual IP.
  auto client = Client(spec);
  std::shared_ptr<const SaEntry> entry = table.Current()->All().front();
  EXPECT_EQ(table.Current()->Outbound(kClientVip, false), entry.get());
  const uint8_t other[4] = {10, 10, 0, 3};
  EXPECT_EQ(table.Current()->Outbound(other, false), nullptr);
  EXPECT_EQ(entry->remote.ToString(), "192.0.2.2:4500");
  EXPECT_EQ(entry->encap, Encap::kUdp);
  for (int i = 0; i < 5; ++i) {
    std::vector<uint8_t> esp = esp::testing::Protect(*client, Ipv4Packet(kClientVip, kLanHost, 100));
    esp::Decapsulated out;
    ASSERT_EQ(esp::Decapsulate(*entry->sa, esp.data(), esp.size(), &out), esp::DropReason::kNone);
  }
  std::vector<uint8_t> replayed = esp::testing::Protect(*client, Ipv4Packet(kClientVip, kLanHost, 100));
  {
    std::vector<uint8_t> copy = replayed;
    esp::Decapsulated out;
    ASSERT_EQ(esp::Decapsulate(*entry->sa, copy.data(), copy.size(), &out), esp::DropReason::kNone);
  }
  entry->sa->SetNextSequence(77);

  // Endpoint change (NAT rebinding): same EspSa, so sequence numbers, the
  // replay window and counters carry over.
  spec.remote = *net::IpEndpoint::Parse("198.51.100.2:31000");
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
  WaitFor(table, [](const SaSnapshot& s) {
    const SaEntry* e = s.Inbound(0xc0000001);
    return e != nullptr && e->remote.port() == 31000;
  });
  const SaEntry* moved = table.Current()->Inbound(0xc0000001);
  EXPECT_EQ(moved->sa, entry->sa);
  EXPECT_EQ(moved->sa->replay_top(), 6u);
  EXPECT_EQ(moved->sa->counters().packets_in, 6u);
  EXPECT_EQ(moved->sa->NextSequence(), 77u);
  esp::Decapsulated out;
  EXPECT_EQ(esp::Decapsulate(*moved->sa, replayed.data(), replayed.size(), &out),
            esp::DropReason::kReplay);

  // Make-before-break: a rekeyed SA for the same VIP is installed at once
  // and decrypts, but outbound stays on the old SA until the client sends on
  // the new one (proof it has installed it)...
  ChildSaSpec rekeyed = Spec(0xc0000002, 0xd0000002, "aes256-sha1");
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, rekeyed).ok());
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000002) != nullptr; });
  EXPECT_EQ(table.Current()->Outbound(kClientVip, false)->sa->inbound_spi(), 0xc0000001u);
  EXPECT_NE(table.Current()->Inbound(0xc0000001), nullptr);
  auto rekeyed_client = Client(rekeyed);
  {
    std::vector<uint8_t> esp =
        esp::testing::Protect(*rekeyed_client, Ipv4Packet(kClientVip, kLanHost, 100));
    esp::Decapsulated decap;
    ASSERT_EQ(esp::Decapsulate(*table.Current()->Inbound(0xc0000002)->sa, esp.data(), esp.size(),
                               &decap),
              esp::DropReason::kNone);
  }
  EXPECT_EQ(table.Current()->Outbound(kClientVip, false)->sa->inbound_spi(), 0xc0000002u);

  // ... or until the old one is deleted, whichever comes first (below).
  // Delete: gone from the table at once.
  ASSERT_TRUE(store_->Delete(store::ChildSaKey(0xc0000001)).ok());
  const absl::Duration removal = WaitFor(table, [](const SaSnapshot& s) {
    return s.Inbound(0xc0000001) == nullptr;
  });
  EXPECT_LT(removal, absl::Milliseconds(50));
  EXPECT_EQ(table.Current()->Outbound(kClientVip, false)->sa->inbound_spi(), 0xc0000002u);
  sync.Stop();

  // Restart: a new table is rebuilt from the store before Start() returns.
  SaTable rebuilt;
  prometheus::Registry registry2;
  StoreSync sync2(store_, sealer_, &rebuilt, registry2);
  sync2.Start();
  EXPECT_EQ(rebuilt.Current()->size(), 1u);
  EXPECT_NE(rebuilt.Current()->Inbound(0xc0000002), nullptr);
}

// ike-service announces a CHILD SA before its record is written: it is
// installed at once, and the record, when it comes, keeps the same EspSa.
TEST_F(StoreSyncTest, AnAnnouncedSaIsInstalledBeforeItsRecord) {
  SaTable table;
  StoreSync sync(store_, sealer_, &table, registry_);
  sync.Start();
  const ChildSaSpec spec = Spec(0xc0000071, 0xd0000071);
  absl::StatusOr<v1::ChildSa> record = MakeChildSaRecord(*sealer_, spec);
  ASSERT_TRUE(record.ok());
  sync.Offer(*record);
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000071) != nullptr; });
  std::shared_ptr<esp::EspSa> announced = table.Current()->Inbound(0xc0000071)->sa;
  EXPECT_TRUE(absl::IsNotFound(store_->Get(store::ChildSaKey(0xc0000071)).status()));
  // It works both ways before the record exists: a packet from the client
  // decrypts, and one to the client has a sequence number (lease granted).
  std::vector<uint8_t> packet =
      esp::testing::Protect(*Client(spec), Ipv4Packet(kClientVip, kLanHost, 80));
  esp::Decapsulated out;
  EXPECT_EQ(esp::Decapsulate(*announced, packet.data(), packet.size(), &out),
            esp::DropReason::kNone);
  EXPECT_GT(announced->NextSequence(), 0u);

  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
  const int64_t written = store_->Get(store::ChildSaKey(0xc0000071))->mod_revision;
  WaitFor(table, [&](const SaSnapshot&) { return sync.revision() >= written; });
  EXPECT_EQ(table.Current()->Inbound(0xc0000071)->sa, announced);
  // Offered again after the watch installed it: nothing changes.
  sync.Offer(*record);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(table.Current()->Inbound(0xc0000071)->sa, announced);
  // Deleting the record removes it as usual.
  ASSERT_TRUE(store_->Delete(store::ChildSaKey(0xc0000071)).ok());
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000071) == nullptr; });
  sync.Stop();
}

TEST_F(StoreSyncTest, BadRecordsAreRejectedNotInstalled) {
  SaTable table;
  StoreSync sync(store_, sealer_, &table, registry_);
  sync.Start();
  // Sealed for another key: the blob does not open.
  ChildSaSpec spec = Spec(0xc0000010, 0xd0000010);
  auto record = MakeChildSaRecord(*sealer_, spec);
  ASSERT_TRUE(record.ok());
  ASSERT_TRUE(store::PutProto(*store_, store::ChildSaKey(0xc0000011), *record).ok());
  // Garbage.
  ASSERT_TRUE(store_->Put(store::ChildSaKey(0xc0000012), "\xff\xff garbage").ok());
  // Then a good one, to know the watch got past the bad ones.
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, Spec(0xc0000013, 0xd0000013)).ok());
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000013) != nullptr; });
  EXPECT_EQ(table.Current()->size(), 1u);
}

// forwarder_sa_records_rejected_total{reason}.
double Rejected(prometheus::Registry& registry, const std::string& reason) {
  for (const auto& family : registry.Collect()) {
    if (family.name != "forwarder_sa_records_rejected_total") continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "reason" && label.value == reason) return metric.counter.value;
      }
    }
  }
  return 0;
}

// Record integrity (docs/architecture.md): a store writer without the key
// cannot change what a CHILD SA protects, nor move it without a tag.
TEST_F(StoreSyncTest, ForgedRecordsKeepTheSaAndTaggedMovesApply) {
  SaTable table;
  StoreSync sync(store_, sealer_, &table, registry_);
  sync.Start();
  ChildSaSpec spec = Spec(0xc0000090, 0xd0000090);
  spec.ike_spi_i = 0x1111;
  spec.ike_spi_r = 0x2222;
  spec.remote_behind_nat = true;
  spec.path_generation = 10;
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000090) != nullptr; });
  const std::shared_ptr<esp::EspSa> installed = table.Current()->Inbound(0xc0000090)->sa;
  const std::string key = store::ChildSaKey(0xc0000090);
  auto rewrite = [&](const std::function<void(v1::ChildSa*)>& edit) {
    absl::StatusOr<store::Versioned<v1::ChildSa>> stored =
        store::GetProto<v1::ChildSa>(*store_, key);
    ASSERT_TRUE(stored.ok());
    v1::ChildSa record = stored->record;
    edit(&record);
    absl::StatusOr<store::WriteResult> written = store::PutProto(*store_, key, record);
    ASSERT_TRUE(written.ok());
    WaitFor(table, [&](const SaSnapshot&) { return sync.revision() >= written->revision; });
  };

  // 1. Wider traffic selectors, written without the key: ignored.
  rewrite([](v1::ChildSa* r) {
    r->mutable_remote_ts(0)->set_start_address(std::string(4, '\0'));
    r->mutable_remote_ts(0)->set_end_address(std::string(4, '\xff'));
  });
  EXPECT_EQ(table.Current()->Inbound(0xc0000090)->sa, installed);
  EXPECT_EQ(table.Current()->Inbound(0xc0000090)->remote.ToString(), "192.0.2.2:4500");
  const uint8_t elsewhere[4] = {10, 10, 0, 99};
  EXPECT_EQ(table.Current()->Outbound(elsewhere, false), nullptr);
  EXPECT_EQ(Rejected(registry_, "seal"), 1);

  // 2. A move as mobility-service writes it, with the mover's valid tag
  //    (a later generation): applied, same EspSa.
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());  // the good record back
  const v1::Endpoint moved = net::IpEndpoint::Parse("203.0.113.5:40000")->ToProto();
  absl::StatusOr<v1::PathAuth> tag =
      store::TagPath(*sealer_, 0x1111, 0x2222, spec.local.ToProto(), moved, true, 11);
  ASSERT_TRUE(tag.ok());
  rewrite([&](v1::ChildSa* r) {
    *r->mutable_remote() = moved;
    *r->mutable_path_auth() = *tag;
  });
  WaitFor(table, [](const SaSnapshot& s) {
    return s.Inbound(0xc0000090)->remote.ToString() == "203.0.113.5:40000";
  });
  std::shared_ptr<const SaSnapshot> snapshot = table.Current();
  const SaEntry* now = snapshot->Inbound(0xc0000090);
  EXPECT_EQ(now->sa, installed);
  EXPECT_EQ(now->remote.ToString(), "203.0.113.5:40000");
  EXPECT_EQ(now->path_generation, 11u);

  // 3. A move with a forged tag (or another SA's tag, or none): the SA
  //    stays where it is.
  const v1::Endpoint attacker = net::IpEndpoint::Parse("192.0.2.66:4500")->ToProto();
  rewrite([&](v1::ChildSa* r) {
    *r->mutable_remote() = attacker;
    r->mutable_path_auth()->set_generation(12);
    r->mutable_path_auth()->set_tag(std::string(store::Sealer::kPathTagSize, 'x'));
  });
  EXPECT_EQ(table.Current()->Inbound(0xc0000090)->remote.ToString(), "203.0.113.5:40000");
  EXPECT_EQ(Rejected(registry_, "path_tag_invalid"), 1);
  absl::StatusOr<v1::PathAuth> other_sa =
      store::TagPath(*sealer_, 0x1111, 0x3333, spec.local.ToProto(), attacker, true, 13);
  rewrite([&](v1::ChildSa* r) {
    *r->mutable_remote() = attacker;
    *r->mutable_path_auth() = *other_sa;
  });
  EXPECT_EQ(table.Current()->Inbound(0xc0000090)->remote.ToString(), "203.0.113.5:40000");
  EXPECT_EQ(Rejected(registry_, "path_tag_invalid"), 2);
  rewrite([&](v1::ChildSa* r) {
    *r->mutable_remote() = attacker;
    r->clear_path_auth();
  });
  EXPECT_EQ(Rejected(registry_, "path_tag_missing"), 1);

  // 4. A replay of the older, validly tagged path: not back to it.
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());  // generation 10
  WaitFor(table, [&](const SaSnapshot&) { return Rejected(registry_, "path_generation_stale") >= 1; });
  EXPECT_EQ(table.Current()->Inbound(0xc0000090)->remote.ToString(), "203.0.113.5:40000");
  EXPECT_EQ(table.Current()->Inbound(0xc0000090)->sa, installed);
  sync.Stop();
}

TEST_F(StoreSyncTest, SoftLifetimeCallsTheRekeyHook) {
  SaTable table;
  std::atomic<uint32_t> rekey{0};
  StoreSyncOptions options;
  options.sweep_interval = absl::Milliseconds(10);
  options.on_soft_expire = [&](const SaEntry& e) { rekey = e.sa->inbound_spi(); };
  StoreSync sync(store_, sealer_, &table, registry_, options);
  sync.Start();
  ChildSaSpec spec = Spec(0xc0000020, 0xd0000020);
  spec.soft_bytes = 100;
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000020) != nullptr; });
  auto client = Client(spec);
  std::vector<uint8_t> esp = esp::testing::Protect(*client, Ipv4Packet(kClientVip, kLanHost, 200));
  esp::Decapsulated out;
  ASSERT_EQ(esp::Decapsulate(*table.Current()->Inbound(0xc0000020)->sa, esp.data(), esp.size(), &out),
            esp::DropReason::kNone);
  const absl::Time start = absl::Now();
  while (rekey.load() == 0 && absl::Now() - start < absl::Seconds(5)) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(rekey.load(), 0xc0000020u);
}

// ---- Sequence-number checkpoints ("seq/" keys): a restart is a new
// SaTable + StoreSync over the same store.

// A crash: nothing is flushed on stop; short intervals for the test.
StoreSyncOptions CrashOptions() {
  StoreSyncOptions options;
  options.checkpoint.flush_on_stop = false;
  options.checkpoint.tick = absl::Milliseconds(5);
  options.checkpoint.inbound_interval = absl::Milliseconds(20);
  return options;
}

// Counts the restored SAs of a registry.
double Restored(prometheus::Registry& registry) {
  for (const auto& family : registry.Collect()) {
    if (family.name == "forwarder_seq_checkpoint_restored_total") {
      return family.metric.empty() ? 0 : family.metric[0].counter.value;
    }
  }
  return -1;
}

TEST_F(StoreSyncTest, RestartResumesOutboundAboveEveryNumberUsed) {
  constexpr uint64_t kStep = SeqCheckpointOptions().outbound_step;
  constexpr int kSas = 10;  // > 8: the restart reads them with one List
  uint64_t last = 0;
  uint64_t last_other = 0;
  {
    SaTable table;
    StoreSync sync(store_, sealer_, &table, registry_, CrashOptions());
    sync.Start();
    for (int i = 0; i < kSas; ++i) {
      ASSERT_TRUE(PutChildSa(*store_, *sealer_, Spec(0xc0000100 + i, 0xd0000100 + i)).ok());
    }
    WaitFor(table, [](const SaSnapshot& s) { return s.size() == kSas; });
    esp::EspSa& sa = *table.Current()->Inbound(0xc0000100)->sa;
    // Three lease blocks' worth, as fast as the CPU goes: the writer must
    // keep up (or the data plane waits), and no number may repeat.
    int waits = 0;
    while (last < 3 * kStep + 100) {
      bool unreserved = false;
      const uint64_t seq = sa.NextSequence(&unreserved);
      if (seq == 0) {
        ASSERT_TRUE(unreserved);
        ++waits;
        absl::SleepFor(absl::Microseconds(50));
        continue;
      }
      ASSERT_GT(seq, last);
      last = seq;
    }
    std::printf("outbound: %llu numbers, %d waits for a lease\n",
                static_cast<unsigned long long>(last), waits);
    absl::optional<SeqMarks> persisted = sync.checkpointer()->Persisted(0xc0000100);
    ASSERT_TRUE(persisted.has_value());
    EXPECT_GT(persisted->outbound_reserved, last);
    esp::EspSa& other = *table.Current()->Inbound(0xc0000105)->sa;
    for (int i = 0; i < 5; ++i) last_other = other.NextSequence();
    sync.Stop();  // crash: no final write
  }
  SaTable table;
  prometheus::Registry registry;
  StoreSync sync(store_, sealer_, &table, registry, CrashOptions());
  sync.Start();
  ASSERT_EQ(table.Current()->size(), static_cast<size_t>(kSas));
  EXPECT_EQ(Restored(registry), kSas);
  const uint64_t resumed = table.Current()->Inbound(0xc0000100)->sa->NextSequence();
  EXPECT_GT(resumed, last);
  EXPECT_LE(resumed, last + 2 * kStep + 1) << "at most two blocks skipped";
  const uint64_t resumed_other = table.Current()->Inbound(0xc0000105)->sa->NextSequence();
  EXPECT_GT(resumed_other, last_other);
  // Its first install found no key, so it started above the two blocks an
  // announcing forwarder may use unwritten: [2 * step, 4 * step).
  EXPECT_EQ(resumed_other, 4 * kStep);
}

// A checkpoint that does not parse may hide numbers already used: the SA
// sends nothing more, with or without ESN, and the record is rewritten
// readable with every number spent.
TEST_F(StoreSyncTest, AnUnreadableCheckpointSpendsTheOutboundNumbers) {
  const ChildSaSpec plain = Spec(0xc0000191, 0xd0000191);
  const ChildSaSpec esn = Spec(0xc0000192, 0xd0000192, "aes128gcm16-esn");
  for (const ChildSaSpec* spec : {&plain, &esn}) {
    ASSERT_TRUE(store_->Put(SeqKey(spec->inbound_spi), "out=5 in=3 damaged").ok());
    ASSERT_TRUE(PutChildSa(*store_, *sealer_, *spec).ok());
  }
  SaTable table;
  StoreSync sync(store_, sealer_, &table, registry_, CrashOptions());
  sync.Start();
  WaitFor(table, [](const SaSnapshot& s) { return s.size() == 2; });
  absl::SleepFor(absl::Milliseconds(200));  // the writer's passes
  for (const ChildSaSpec* spec : {&plain, &esn}) {
    bool unreserved = false;
    EXPECT_EQ(table.Current()->Inbound(spec->inbound_spi)->sa->NextSequence(&unreserved), 0u);
    absl::optional<SeqMarks> persisted = sync.checkpointer()->Persisted(spec->inbound_spi);
    ASSERT_TRUE(persisted.has_value()) << "rewritten readable";
    EXPECT_GE(persisted->outbound_reserved, uint64_t{1} << 63);
  }
  sync.Stop();
}

// An SA ike-service announced sends from 1 with no store write (nothing
// is written or deleted for a short-lived SA); a forwarder restarted after
// a crash finds no key and resumes above the two blocks it may have used.
TEST_F(StoreSyncTest, AnAnnouncedSaSendsUnwrittenAndARestartSkipsItsBlocks) {
  constexpr uint64_t kStep = SeqCheckpointOptions().outbound_step;
  const ChildSaSpec spec = Spec(0xc0000181, 0xd0000181);
  absl::StatusOr<v1::ChildSa> record = MakeChildSaRecord(*sealer_, spec);
  ASSERT_TRUE(record.ok());
  uint64_t last = 0;
  {
    SaTable table;
    StoreSync sync(store_, sealer_, &table, registry_, CrashOptions());
    sync.Start();
    sync.Offer(*record);
    WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000181) != nullptr; });
    esp::EspSa& sa = *table.Current()->Inbound(0xc0000181)->sa;
    EXPECT_EQ(sa.NextSequence(), 1u);
    for (int i = 0; i < 1000; ++i) last = sa.NextSequence();
    EXPECT_EQ(last, 1001u);
    ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
    absl::SleepFor(absl::Milliseconds(50));  // several checkpoint ticks
    EXPECT_TRUE(absl::IsNotFound(store_->Get(SeqKey(0xc0000181)).status()));
    sync.Stop();  // crash
  }
  SaTable table;
  prometheus::Registry registry;
  StoreSync sync(store_, sealer_, &table, registry, CrashOptions());
  sync.Start();
  ASSERT_NE(table.Current()->Inbound(0xc0000181), nullptr);
  EXPECT_EQ(table.Current()->Inbound(0xc0000181)->sa->NextSequence(), 2 * kStep);
  absl::optional<SeqMarks> persisted = sync.checkpointer()->Persisted(0xc0000181);
  ASSERT_TRUE(persisted.has_value());
  EXPECT_EQ(persisted->outbound_reserved, 4 * kStep);
}

// Two forwarders on one store and one SA, as when a MOBIKE move or a load
// balancer sends the client to another node: the one ike-service announced
// it to sends unwritten from 1, the other installs it from its record and
// reserves in the store. Sending at once, through several lease blocks,
// they never use the same sequence number: AES-GCM's nonce is the number.
TEST_F(StoreSyncTest, TwoForwardersNeverSendTheSameSequenceNumber) {
  constexpr uint64_t kStep = SeqCheckpointOptions().outbound_step;
  const ChildSaSpec spec = Spec(0xc0000191, 0xd0000191);
  absl::StatusOr<v1::ChildSa> record = MakeChildSaRecord(*sealer_, spec);
  ASSERT_TRUE(record.ok());
  SaTable table_a, table_b;
  prometheus::Registry registry_b;
  StoreSync a(store_, sealer_, &table_a, registry_, CrashOptions());
  StoreSync b(store_, sealer_, &table_b, registry_b, CrashOptions());
  a.Start();
  b.Start();
  a.Offer(*record);  // the path's forwarder only
  WaitFor(table_a, [](const SaSnapshot& s) { return s.Inbound(0xc0000191) != nullptr; });
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
  WaitFor(table_b, [](const SaSnapshot& s) { return s.Inbound(0xc0000191) != nullptr; });

  auto send = [](esp::EspSa& sa, size_t count, std::vector<uint64_t>* used) {
    while (used->size() < count) {
      bool unreserved = false;
      const uint64_t seq = sa.NextSequence(&unreserved);
      if (seq == 0) {
        absl::SleepFor(absl::Microseconds(50));  // waiting for a lease
        continue;
      }
      used->push_back(seq);
    }
  };
  std::vector<uint64_t> used_a, used_b;
  std::thread sender_a(send, std::ref(*table_a.Current()->Inbound(0xc0000191)->sa),
                       3 * kStep, &used_a);
  std::thread sender_b(send, std::ref(*table_b.Current()->Inbound(0xc0000191)->sa),
                       3 * kStep, &used_b);
  sender_a.join();
  sender_b.join();
  a.Stop();
  b.Stop();
  EXPECT_EQ(used_a.front(), 1u);
  EXPECT_GE(used_b.front(), 2 * kStep) << "above the blocks the announced one uses unwritten";
  std::set<uint64_t> seen(used_a.begin(), used_a.end());
  ASSERT_EQ(seen.size(), used_a.size());
  size_t repeated = 0;
  for (uint64_t seq : used_b) repeated += seen.count(seq);
  EXPECT_EQ(repeated, 0u) << "sequence numbers (GCM nonces) both forwarders used";
}

TEST_F(StoreSyncTest, RestartRefusesCheckpointedInboundReplays) {
  ChildSaSpec spec = Spec(0xc0000200, 0xd0000200);
  auto client = Client(spec);
  std::vector<std::vector<uint8_t>> sent;
  {
    SaTable table;
    StoreSync sync(store_, sealer_, &table, registry_, CrashOptions());
    sync.Start();
    ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
    WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000200) != nullptr; });
    esp::EspSa& sa = *table.Current()->Inbound(0xc0000200)->sa;
    for (int i = 0; i < 50; ++i) {
      sent.push_back(esp::testing::Protect(*client, Ipv4Packet(kClientVip, kLanHost, 100)));
      std::vector<uint8_t> copy = sent.back();
      esp::Decapsulated out;
      ASSERT_EQ(esp::Decapsulate(sa, copy.data(), copy.size(), &out), esp::DropReason::kNone);
    }
    // The periodic checkpoint (20 ms here) catches up with seq 50.
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      absl::optional<SeqMarks> marks = sync.checkpointer()->Persisted(0xc0000200);
      if (marks.has_value() && marks->inbound_highest == 50) break;
      absl::SleepFor(absl::Milliseconds(2));
    }
    EXPECT_EQ(sync.checkpointer()->Persisted(0xc0000200)->inbound_highest, 50u);
    sync.Stop();  // crash
  }
  SaTable table;
  prometheus::Registry registry;
  StoreSync sync(store_, sealer_, &table, registry, CrashOptions());
  sync.Start();
  const SaEntry* entry = table.Current()->Inbound(0xc0000200);
  ASSERT_NE(entry, nullptr);
  EXPECT_TRUE(entry->sa->inbound_seen());
  EXPECT_EQ(entry->sa->replay_top(), 50u);
  for (int i : {0, 9, 48, 49}) {  // seq 1, 10, 49, 50
    std::vector<uint8_t> copy = sent[i];
    esp::Decapsulated out;
    const esp::DropReason reason = esp::Decapsulate(*entry->sa, copy.data(), copy.size(), &out);
    EXPECT_TRUE(reason == esp::DropReason::kReplay || reason == esp::DropReason::kTooOld)
        << "seq " << i + 1 << ": " << esp::DropReasonName(reason);
  }
  // The client's next packets are above the mark: accepted.
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> fresh = esp::testing::Protect(*client, Ipv4Packet(kClientVip, kLanHost, 100));
    esp::Decapsulated out;
    EXPECT_EQ(esp::Decapsulate(*entry->sa, fresh.data(), fresh.size(), &out), esp::DropReason::kNone);
  }
}

// The documented gap: numbers accepted after the last checkpoint and before
// a crash are accepted once more after it. A clean stop closes it.
TEST_F(StoreSyncTest, InboundGapAfterACrashAndNoneAfterACleanStop) {
  ChildSaSpec spec = Spec(0xc0000300, 0xd0000300);
  auto client = Client(spec);
  for (const bool clean : {false, true}) {
    SCOPED_TRACE(clean ? "clean stop" : "crash");
    std::vector<uint8_t> last_sent;
    StoreSyncOptions options = CrashOptions();
    options.checkpoint.inbound_interval = absl::Hours(1);  // only the first write
    options.checkpoint.flush_on_stop = clean;
    {
      SaTable table;
      prometheus::Registry registry;
      StoreSync sync(store_, sealer_, &table, registry, options);
      sync.Start();
      if (!clean) {
        ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
      }
      WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000300) != nullptr; });
      esp::EspSa& sa = *table.Current()->Inbound(0xc0000300)->sa;
      for (int i = 0; i < 5; ++i) {
        last_sent = esp::testing::Protect(*client, Ipv4Packet(kClientVip, kLanHost, 100));
        std::vector<uint8_t> copy = last_sent;
        esp::Decapsulated out;
        ASSERT_EQ(esp::Decapsulate(sa, copy.data(), copy.size(), &out), esp::DropReason::kNone);
      }
      sync.Stop();
    }
    SaTable table;
    prometheus::Registry registry;
    StoreSync sync(store_, sealer_, &table, registry, options);
    sync.Start();
    esp::Decapsulated out;
    EXPECT_EQ(esp::Decapsulate(*table.Current()->Inbound(0xc0000300)->sa, last_sent.data(),
                               last_sent.size(), &out),
              clean ? esp::DropReason::kReplay : esp::DropReason::kNone);
    sync.Stop();
  }
}

TEST_F(StoreSyncTest, CheckpointKeysGoWithTheirRecords) {
  StoreSyncOptions options = CrashOptions();
  auto key_exists = [&](uint32_t spi) { return store_->Get(SeqKey(spi)).ok(); };
  auto wait_key = [&](uint32_t spi, bool exists) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (key_exists(spi) != exists && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
    return key_exists(spi) == exists;
  };
  {
    SaTable table;
    StoreSync sync(store_, sealer_, &table, registry_, options);
    sync.Start();
    for (uint32_t spi : {0xc0000401u, 0xc0000402u, 0xc0000403u}) {
      ASSERT_TRUE(PutChildSa(*store_, *sealer_, Spec(spi, spi + 0x1000)).ok());
    }
    WaitFor(table, [](const SaSnapshot& s) { return s.size() == 3; });
    EXPECT_TRUE(key_exists(0xc0000401));  // written before the SA was published
    ASSERT_TRUE(store_->Delete(store::ChildSaKey(0xc0000401)).ok());
    EXPECT_TRUE(wait_key(0xc0000401, false)) << "deleted with its record";
    sync.Stop();
  }
  // While no forwarder runs: a record is deleted, and a stray key appears.
  ASSERT_TRUE(store_->Delete(store::ChildSaKey(0xc0000402)).ok());
  ASSERT_TRUE(store_->Put(SeqKey(0xc00004ff), EncodeSeqMarks({7, 7})).ok());
  SaTable table;
  prometheus::Registry registry;
  StoreSync sync(store_, sealer_, &table, registry, options);
  sync.Start();
  EXPECT_TRUE(wait_key(0xc0000402, false));
  EXPECT_TRUE(wait_key(0xc00004ff, false));
  EXPECT_TRUE(key_exists(0xc0000403));
  EXPECT_EQ(table.Current()->size(), 1u);
}

// Writes of "seq/" keys fail while `fail` is set; everything else passes.
class FlakyStore : public store::ForwardingStore {
 public:
  explicit FlakyStore(std::shared_ptr<store::Store> inner)
      : ForwardingStore(inner.get()), owned_(std::move(inner)) {}
  std::atomic<bool> fail{false};

  absl::StatusOr<store::WriteResult> Put(absl::string_view key, absl::string_view value,
                                         const store::PutOptions& options) override {
    if (fail && absl::StartsWith(key, kSeqPrefix)) return absl::UnavailableError("flaky");
    return ForwardingStore::Put(key, value, options);
  }
  absl::StatusOr<store::TxnResult> Txn(const std::vector<store::Op>& ops) override {
    if (fail) return absl::UnavailableError("flaky");
    return ForwardingStore::Txn(ops);
  }

 private:
  std::shared_ptr<store::Store> owned_;
};

// Fail closed: when the lease cannot be extended the data plane drops
// (seq_unreserved) instead of sending numbers a restart could reuse; it
// resumes once the store takes writes again.
TEST_F(StoreSyncTest, StoreOutageStopsOutboundAtTheLeaseNotPastIt) {
  auto flaky = std::make_shared<FlakyStore>(store_);
  SaTable table;
  StoreSync sync(flaky, sealer_, &table, registry_, CrashOptions());
  sync.Start();
  ChildSaSpec spec = Spec(0xc0000500, 0xd0000500);
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, spec).ok());
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000500) != nullptr; });
  esp::EspSa& sa = *table.Current()->Inbound(0xc0000500)->sa;
  const uint64_t limit = sync.checkpointer()->Persisted(0xc0000500)->outbound_reserved;
  flaky->fail = true;
  // Installed from the watch with no key: it starts above the two blocks an
  // announcing forwarder may have used.
  uint64_t last = sa.NextSequence();
  ASSERT_GT(last, 0u);
  int unreserved_drops = 0;
  for (uint64_t i = last + 1; i < limit + 101; ++i) {
    bool unreserved = false;
    const uint64_t seq = sa.NextSequence(&unreserved);
    if (seq == 0) {
      ++unreserved_drops;
      continue;
    }
    last = seq;
  }
  EXPECT_EQ(last, limit - 1);
  EXPECT_EQ(unreserved_drops, 101);
  EXPECT_EQ(sync.checkpointer()->Persisted(0xc0000500)->outbound_reserved, limit);
  flaky->fail = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  uint64_t seq = 0;
  while (seq == 0 && absl::Now() < deadline) {
    seq = sa.NextSequence();
    if (seq == 0) absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_GT(seq, last);
  EXPECT_LT(seq, sync.checkpointer()->Persisted(0xc0000500)->outbound_reserved);
}

}  // namespace
}  // namespace vpn::forwarder
