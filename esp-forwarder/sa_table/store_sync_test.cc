// The store -> SA table path against a real embedded store: records written
// the way ike-service writes them, with sealed keys.
#include "esp-forwarder/sa_table/store_sync.h"

#include <stdlib.h>

#include "common/store/embedded_store.h"
#include "esp-forwarder/esp/esp_codec.h"
#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/sa_table/child_sa_records.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace vpn::forwarder {
namespace {

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

  // Make-before-break: a rekeyed SA for the same VIP takes outbound traffic;
  // the old one still decrypts until its record is deleted.
  ChildSaSpec rekeyed = Spec(0xc0000002, 0xd0000002, "aes256-sha1");
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, rekeyed).ok());
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000002) != nullptr; });
  EXPECT_EQ(table.Current()->Outbound(kClientVip, false)->sa->inbound_spi(), 0xc0000002u);
  EXPECT_NE(table.Current()->Inbound(0xc0000001), nullptr);

  // Delete: gone from the table at once.
  ASSERT_TRUE(store_->Delete(ChildKey(0xc0000001)).ok());
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

TEST_F(StoreSyncTest, BadRecordsAreRejectedNotInstalled) {
  SaTable table;
  StoreSync sync(store_, sealer_, &table, registry_);
  sync.Start();
  // Sealed for another key: the blob does not open.
  ChildSaSpec spec = Spec(0xc0000010, 0xd0000010);
  auto record = MakeChildSaRecord(*sealer_, spec);
  ASSERT_TRUE(record.ok());
  ASSERT_TRUE(store::PutProto(*store_, ChildKey(0xc0000011), *record).ok());
  // Garbage.
  ASSERT_TRUE(store_->Put(ChildKey(0xc0000012), "\xff\xff garbage").ok());
  // Then a good one, to know the watch got past the bad ones.
  ASSERT_TRUE(PutChildSa(*store_, *sealer_, Spec(0xc0000013, 0xd0000013)).ok());
  WaitFor(table, [](const SaSnapshot& s) { return s.Inbound(0xc0000013) != nullptr; });
  EXPECT_EQ(table.Current()->size(), 1u);
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

}  // namespace
}  // namespace vpn::forwarder
