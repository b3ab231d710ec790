// Outbound selection among several SAs for one destination (a CHILD rekey):
// make-before-break as RFC 7296 §2.8 asks of the responder.
#include "esp-forwarder/sa_table/sa_table.h"

#include "esp-forwarder/esp/esp_codec.h"
#include "esp-forwarder/esp/esp_testing.h"
#include "esp-forwarder/esp/suites.h"
#include "gtest/gtest.h"

namespace vpn::forwarder {
namespace {

using esp::testing::Ipv4Packet;
using esp::testing::kClientVip;
using esp::testing::kLanHost;

struct Sa {
  std::shared_ptr<const SaEntry> entry;
  std::shared_ptr<esp::EspSa> client;  // the client's mirror, to send on it
};

// An SA for the client VIP (a /32, or `prefix` wide), created at `revision`.
Sa MakeSa(uint32_t spi, int64_t revision, int prefix = 32) {
  const esp::EspAlgorithms algorithms = esp::SuiteByName("aes128gcm16")->algorithms;
  const esp::TestKeys keys = *esp::MakeTestKeys(algorithms, spi);
  const uint8_t any[4] = {};
  esp::SaParams gw;
  gw.inbound_spi = spi;
  gw.outbound_spi = spi + 0x100;
  gw.algorithms = algorithms;
  gw.local_ts = {esp::AddressRange::Prefix(any, false, 0)};
  gw.remote_ts = {esp::AddressRange::Prefix(kClientVip, false, prefix)};
  esp::SaParams cl = gw;
  cl.inbound_spi = gw.outbound_spi;
  cl.outbound_spi = gw.inbound_spi;
  std::swap(cl.local_ts, cl.remote_ts);
  auto entry = std::make_shared<SaEntry>();
  entry->sa = *esp::EspSa::Create(gw, keys.view());
  entry->create_revision = revision;
  return {entry, *esp::EspSa::Create(cl, keys.mirrored())};
}

// One authenticated packet from the client on `sa`.
void ClientSends(const Sa& sa) {
  std::vector<uint8_t> packet =
      esp::testing::Protect(*sa.client, Ipv4Packet(kClientVip, kLanHost, 80));
  esp::Decapsulated out;
  ASSERT_EQ(esp::Decapsulate(*sa.entry->sa, packet.data(), packet.size(), &out),
            esp::DropReason::kNone);
}

uint32_t OutboundSpi(const SaTable& table) {
  const SaEntry* entry = table.Current()->Outbound(kClientVip, false);
  return entry == nullptr ? 0 : entry->sa->inbound_spi();
}

class MakeBeforeBreakTest : public ::testing::TestWithParam<int> {};

TEST_P(MakeBeforeBreakTest, OldSaUntilTheNewOneCarriesInboundOrTheOldIsDeleted) {
  const int prefix = GetParam();  // 32: host index; 24: range search
  SaTable table;
  Sa old_sa = MakeSa(0xc0000001, 10, prefix);
  table.Put(old_sa.entry);
  table.Publish();
  EXPECT_EQ(OutboundSpi(table), 0xc0000001u);  // the only one, seen or not
  ClientSends(old_sa);

  // The rekey's answer is written: the new SA is installed, but the client
  // may not have it yet (the answer may be lost).
  Sa new_sa = MakeSa(0xc0000002, 20, prefix);
  table.Put(new_sa.entry);
  table.Publish();
  EXPECT_EQ(OutboundSpi(table), 0xc0000001u);
  // A forged packet on the new SA proves nothing.
  std::vector<uint8_t> forged =
      esp::testing::Protect(*new_sa.client, Ipv4Packet(kClientVip, kLanHost, 80));
  forged[20] ^= 0x01;
  esp::Decapsulated out;
  EXPECT_EQ(esp::Decapsulate(*new_sa.entry->sa, forged.data(), forged.size(), &out),
            esp::DropReason::kAuthFailed);
  EXPECT_EQ(OutboundSpi(table), 0xc0000001u);
  // The client sends on the new SA: it has installed it. Same snapshot, no
  // republish needed.
  ClientSends(new_sa);
  EXPECT_EQ(OutboundSpi(table), 0xc0000002u);
  // Traffic still arriving on the old SA does not switch back.
  ClientSends(old_sa);
  EXPECT_EQ(OutboundSpi(table), 0xc0000002u);
  table.Remove(0xc0000001);
  table.Publish();
  EXPECT_EQ(OutboundSpi(table), 0xc0000002u);
}

TEST_P(MakeBeforeBreakTest, DeletingTheOldSaSwitchesEvenWithoutInbound) {
  const int prefix = GetParam();
  SaTable table;
  Sa old_sa = MakeSa(0xc0000001, 10, prefix);
  Sa new_sa = MakeSa(0xc0000002, 20, prefix);
  table.Put(old_sa.entry);
  table.Put(new_sa.entry);
  table.Publish();
  EXPECT_EQ(OutboundSpi(table), 0xc0000001u);  // none seen: the oldest
  table.Remove(0xc0000001);  // the client's DELETE of the old SA
  table.Publish();
  EXPECT_EQ(OutboundSpi(table), 0xc0000002u);
}

TEST_P(MakeBeforeBreakTest, NewestSeenWinsAmongSeveral) {
  const int prefix = GetParam();
  SaTable table;
  Sa a = MakeSa(0xc0000001, 10, prefix);
  Sa b = MakeSa(0xc0000002, 20, prefix);
  Sa c = MakeSa(0xc0000003, 30, prefix);
  // Put out of order: the index sorts by revision.
  table.Put(c.entry);
  table.Put(a.entry);
  table.Put(b.entry);
  table.Publish();
  EXPECT_EQ(OutboundSpi(table), 0xc0000001u);
  ClientSends(a);
  EXPECT_EQ(OutboundSpi(table), 0xc0000001u);
  ClientSends(b);
  EXPECT_EQ(OutboundSpi(table), 0xc0000002u);
  ClientSends(c);
  EXPECT_EQ(OutboundSpi(table), 0xc0000003u);
  const uint8_t other[4] = {10, 10, 1, 9};
  EXPECT_EQ(table.Current()->Outbound(other, false), nullptr);
}

INSTANTIATE_TEST_SUITE_P(HostAndRange, MakeBeforeBreakTest, ::testing::Values(32, 24));

// An announced MOBIKE move: every CHILD SA of that IKE SA, and only those,
// points at the new path; their EspSa (sequence numbers, replay) is kept.
TEST(MovePathTest, MovesEveryChildOfThatIkeSaKeepingItsState) {
  SaTable table;
  Sa first = MakeSa(0xc0000001, 10);
  Sa second = MakeSa(0xc0000002, 20);
  Sa other = MakeSa(0xc0000003, 30);
  const net::IpEndpoint old_path = *net::IpEndpoint::Parse("192.0.2.2:4500");
  for (Sa* sa : {&first, &second, &other}) {
    auto entry = std::make_shared<SaEntry>(*sa->entry);
    entry->ike_spi_i = sa == &other ? 7 : 1;
    entry->ike_spi_r = 2;
    entry->remote = old_path;
    table.Put(entry);
  }
  table.Publish();
  ClientSends(first);
  const uint64_t highest = first.entry->sa->inbound_highest();
  ASSERT_GT(highest, 0u);

  const net::IpEndpoint local = *net::IpEndpoint::Parse("198.51.100.1:4500");
  const net::IpEndpoint remote = *net::IpEndpoint::Parse("198.51.100.2:0");
  const auto left = table.MovePath(1, 2, local, remote, nullptr);
  ASSERT_EQ(left.size(), 2u);
  for (const auto& entry : left) EXPECT_EQ(entry->remote, old_path);  // as before the move
  std::shared_ptr<const SaSnapshot> now = table.Current();
  for (uint32_t spi : {0xc0000001u, 0xc0000002u}) {
    const SaEntry* entry = now->Inbound(spi);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->remote.ToString(), "198.51.100.2:4500");  // ESP in UDP keeps 4500
    EXPECT_EQ(entry->local, local);
  }
  EXPECT_EQ(now->Inbound(0xc0000001)->sa, first.entry->sa);
  EXPECT_EQ(now->Inbound(0xc0000001)->sa->inbound_highest(), highest);
  EXPECT_EQ(now->Inbound(0xc0000003)->remote, old_path);

  // The same move again changes nothing; a raw-ESP path keeps its port.
  EXPECT_EQ(table.MovePath(1, 2, local, remote, nullptr).size(), 0u);
  const Encap raw = Encap::kRaw;
  EXPECT_EQ(
      table.MovePath(1, 2, local, *net::IpEndpoint::Parse("198.51.100.2:500"), &raw).size(), 2u);
  EXPECT_EQ(table.Current()->Inbound(0xc0000002)->encap, Encap::kRaw);
  EXPECT_EQ(table.MovePath(9, 9, local, remote, nullptr).size(), 0u);

  // After an IKE rekey a CHILD SA belongs to the new IKE SA; a removed one
  // to none.
  auto rekeyed = std::make_shared<SaEntry>(*table.Staged(0xc0000002));
  rekeyed->ike_spi_i = 3;
  rekeyed->ike_spi_r = 4;
  table.Put(rekeyed);
  table.Remove(0xc0000001);
  EXPECT_EQ(
      table.MovePath(1, 2, local, *net::IpEndpoint::Parse("203.0.113.9:0"), nullptr).size(),
      0u);
  EXPECT_EQ(
      table.MovePath(3, 4, local, *net::IpEndpoint::Parse("203.0.113.9:0"), nullptr).size(),
      1u);
  EXPECT_EQ(table.Current()->Inbound(0xc0000002)->remote.ToString(), "203.0.113.9:0");  // raw
  EXPECT_EQ(table.Current()->Inbound(0xc0000001), nullptr);
}

// Shards are shared between snapshots: a later publish must never change
// what a reader's earlier snapshot shows, however many shards of one group
// it touches.
TEST(SnapshotTest, EarlierSnapshotsDoNotChange) {
  SaTable table;
  std::vector<Sa> sas;
  for (uint32_t spi = 0xc0000000; spi < 0xc0000000 + 200; ++spi) sas.push_back(MakeSa(spi, spi));
  for (size_t i = 0; i < 100; ++i) table.Put(sas[i].entry);
  table.Publish();
  const std::shared_ptr<const SaSnapshot> first = table.Current();
  for (size_t i = 100; i < 200; ++i) table.Put(sas[i].entry);
  for (size_t i = 0; i < 50; ++i) table.Remove(sas[i].entry->sa->inbound_spi());
  table.Publish();
  const std::shared_ptr<const SaSnapshot> second = table.Current();
  table.Clear();
  table.Publish();

  EXPECT_EQ(first->size(), 100u);
  EXPECT_EQ(second->size(), 150u);
  EXPECT_EQ(table.Current()->size(), 0u);
  EXPECT_EQ(first->All().size(), 100u);
  for (size_t i = 0; i < 200; ++i) {
    const uint32_t spi = sas[i].entry->sa->inbound_spi();
    EXPECT_EQ(first->Inbound(spi) != nullptr, i < 100) << i;
    EXPECT_EQ(second->Inbound(spi) != nullptr, i >= 50) << i;
    EXPECT_EQ(table.Current()->Inbound(spi), nullptr) << i;
  }
  EXPECT_NE(first->Outbound(kClientVip, false), nullptr);
  EXPECT_EQ(table.Current()->Outbound(kClientVip, false), nullptr);
}

}  // namespace
}  // namespace vpn::forwarder
