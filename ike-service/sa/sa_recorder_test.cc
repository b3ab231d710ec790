// SaRecorder against the real embedded store: what it writes, and that
// write-behind keeps call order, Flush() waits, and Stop() loses nothing.
#include "ike-service/sa/sa_recorder.h"

#include <cstdlib>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/store/sa_seal.h"
#include "common/store/embedded_store.h"

namespace vpn::ike {
namespace {

class SaRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::EmbeddedOptions options;
    options.dir = std::string(std::getenv("TEST_TMPDIR")) + "/" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name();
    store_ = *store::EmbeddedStore::Open(options);
    const std::vector<uint8_t> key(store::Sealer::kKeySize, 7);
    sealer_ = *store::Sealer::FromKey(crypto::ByteSpan(key.data(), key.size()));
    recorder_ = std::make_unique<SaRecorder>(store_.get(), sealer_.get(), "replica-a", &policy_);
    sa_.spi_i = 0x1111;
    sa_.spi_r = 0x2222;
    sa_.phase = IkeSa::Phase::kEstablished;
  }

  // The IKE record as the store holds it now.
  v1::IkeSa Stored() {
    absl::StatusOr<store::KeyValue> kv = store_->Get(sa_.record_key());
    EXPECT_TRUE(kv.ok()) << kv.status();
    v1::IkeSa record;
    if (kv.ok()) EXPECT_TRUE(record.ParseFromString(kv->value));
    return record;
  }

  ResponderPolicy policy_;
  std::unique_ptr<store::EmbeddedStore> store_;
  std::unique_ptr<store::Sealer> sealer_;
  std::unique_ptr<SaRecorder> recorder_;
  IkeSa sa_;
  prometheus::Registry registry_;
};

ChildSaState Child(uint32_t spi) {
  ChildSaState child;
  child.inbound_spi = spi;
  child.outbound_spi = spi + 1;
  return child;
}

TEST_F(SaRecorderTest, ChildAndTheIkeRecordThatListsItInOneTransaction) {
  ASSERT_TRUE(recorder_->RecordEstablished(sa_).ok());
  const int64_t before = store_->Get(sa_.record_key())->mod_revision;
  sa_.children.push_back(Child(0xc0000001));
  ASSERT_TRUE(recorder_->RecordChild(sa_, sa_.children.back()).ok());
  absl::StatusOr<store::KeyValue> child = store_->Get(SaRecorder::ChildKey(0xc0000001));
  ASSERT_TRUE(child.ok());
  const v1::IkeSa ike = Stored();
  ASSERT_EQ(ike.child_spis_size(), 1);
  EXPECT_EQ(ike.child_spis(0), 0xc0000001u);
  EXPECT_EQ(child->mod_revision, store_->Get(sa_.record_key())->mod_revision);
  EXPECT_GT(child->mod_revision, before);
  // A CHILD SA's SPI is unique: a second record under it is refused.
  EXPECT_FALSE(recorder_->RecordChild(sa_, sa_.children.back()).ok());
}

TEST_F(SaRecorderTest, WriteBehindKeepsOrderAndFlushWaitsForIt) {
  recorder_->StartWriteBehind(registry_);
  for (uint32_t id = 1; id <= 200; ++id) {
    sa_.next_own_request_id = id;
    ASSERT_TRUE(recorder_->RecordIke(sa_).ok());
  }
  recorder_->Flush();
  EXPECT_EQ(Stored().next_message_id_out(), 200u);

  recorder_->RemoveSa(sa_);
  recorder_->Flush();
  EXPECT_TRUE(absl::IsNotFound(store_->Get(sa_.record_key()).status()));
}

TEST_F(SaRecorderTest, StopWritesWhatWasQueued) {
  recorder_->StartWriteBehind(registry_);
  for (uint32_t id = 1; id <= 100; ++id) {
    sa_.next_own_request_id = id;
    recorder_->RecordIke(sa_);
  }
  recorder_->Stop();
  EXPECT_EQ(Stored().next_message_id_out(), 100u);
  // After Stop() writes are direct again.
  sa_.next_own_request_id = 101;
  ASSERT_TRUE(recorder_->RecordIke(sa_).ok());
  EXPECT_EQ(Stored().next_message_id_out(), 101u);
}

TEST_F(SaRecorderTest, AFullQueueWritesAtOnceInOrder) {
  recorder_->StartWriteBehind(registry_, /*queue_limit=*/1);
  for (uint32_t id = 1; id <= 50; ++id) {
    sa_.next_own_request_id = id;
    ASSERT_TRUE(recorder_->RecordIke(sa_).ok());
  }
  recorder_->Flush();
  EXPECT_EQ(Stored().next_message_id_out(), 50u);
}

// Many SAs' writes queued at once go out in few transactions, yet each
// SA's last write is what the store holds, and a refused one is alone lost.
TEST_F(SaRecorderTest, BatchesQueuedWritesOfManySas) {
  recorder_->StartWriteBehind(registry_);
  std::vector<IkeSa> sas(50);
  for (size_t i = 0; i < sas.size(); ++i) {
    sas[i].spi_i = 100 + i;
    sas[i].spi_r = 200 + i;
    sas[i].phase = IkeSa::Phase::kEstablished;
    sas[i].children.push_back(Child(0xd0000000 + static_cast<uint32_t>(i)));
  }
  sa_.children.push_back(Child(0xd0000007));  // collides with sas[7]'s CHILD SA
  for (int round = 1; round <= 3; ++round) {
    for (IkeSa& sa : sas) {
      sa.next_own_request_id = round;
      if (round == 1) {
        ASSERT_TRUE(recorder_->RecordEstablished(sa).ok());
      } else {
        ASSERT_TRUE(recorder_->RecordIke(sa).ok());
      }
    }
    if (round == 1) ASSERT_TRUE(recorder_->RecordEstablished(sa_).ok());
  }
  recorder_->Flush();
  const int64_t revision = store_->Get(sas.back().record_key())->mod_revision;
  for (const IkeSa& sa : sas) {
    v1::IkeSa record;
    ASSERT_TRUE(record.ParseFromString(store_->Get(sa.record_key())->value));
    EXPECT_EQ(record.next_message_id_out(), 3u);
    EXPECT_TRUE(store_->Get(SaRecorder::ChildKey(sa.children[0].inbound_spi)).ok());
  }
  // 151 writes; batched, far fewer revisions than writes.
  EXPECT_LT(revision, 100);
  // The colliding SA's record was refused (create-only CHILD SA), alone.
  EXPECT_TRUE(absl::IsNotFound(store_->Get(sa_.record_key()).status()));
}

// Writes gather for the batch window, but not while someone waits.
TEST_F(SaRecorderTest, FlushDoesNotWaitOutTheBatchWindow) {
  recorder_->StartWriteBehind(registry_, 4096, /*batch_window=*/absl::Seconds(30));
  ASSERT_TRUE(recorder_->RecordEstablished(sa_).ok());
  const absl::Time start = absl::Now();
  recorder_->Flush();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(Stored().initiator_spi(), sa_.spi_i);
}

// A lease release whose lease went to another SA meanwhile is dropped; the
// writes batched with it still land.
TEST_F(SaRecorderTest, AStaleLeaseReleaseIsDroppedAndTheBatchLands) {
  auto first = store_->Put("pool/v4/0a0a0002", "ike/old", {store::Condition::CreateOnly()});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->Delete("pool/v4/0a0a0002").ok());
  ASSERT_TRUE(store_->Put("pool/v4/0a0a0002", "ike/new", {store::Condition::CreateOnly()}).ok());
  recorder_->StartWriteBehind(registry_);
  ASSERT_TRUE(recorder_->RecordEstablished(sa_).ok());
  ASSERT_TRUE(recorder_
                  ->ReleaseLeases({store::Op::Delete(
                                      "pool/v4/0a0a0002",
                                      store::Condition::ModRevisionIs(first->revision))},
                                  sa_.record_key())
                  .ok());
  recorder_->Flush();
  EXPECT_EQ(store_->Get("pool/v4/0a0a0002")->value, "ike/new");
  EXPECT_EQ(Stored().initiator_spi(), sa_.spi_i);
}

// After an IKE rekey the CHILD records name the new IKE SA but keep the path
// mobility-service moved them to, and one deleted meanwhile stays deleted.
TEST_F(SaRecorderTest, ARekeyKeepsTheStoredChildPathAndDeletions) {
  sa_.remote = *net::IpEndpoint::Parse("192.0.2.2:4500");
  sa_.children.push_back(Child(0xc0000011));
  sa_.children.push_back(Child(0xc0000012));
  ASSERT_TRUE(recorder_->RecordEstablished(sa_).ok());
  // mobility-service moves the first CHILD SA; the second one is deleted.
  const std::string moved_key = SaRecorder::ChildKey(0xc0000011);
  v1::ChildSa moved;
  ASSERT_TRUE(moved.ParseFromString(store_->Get(moved_key)->value));
  *moved.mutable_remote() = net::IpEndpoint::Parse("198.51.100.7:4500")->ToProto();
  ASSERT_TRUE(store::TagChildPath(*sealer_, 5, &moved).ok());  // the mover's tag
  ASSERT_TRUE(store_->Put(moved_key, moved.SerializeAsString()).ok());
  ASSERT_TRUE(store_->Delete(SaRecorder::ChildKey(0xc0000012)).ok());

  IkeSa rekeyed;
  rekeyed.spi_i = 0x3333;
  rekeyed.spi_r = 0x4444;
  rekeyed.phase = IkeSa::Phase::kEstablished;
  rekeyed.remote = sa_.remote;  // not yet told of the move
  rekeyed.children.push_back(Child(0xc0000011));
  rekeyed.children.push_back(Child(0xc0000012));
  recorder_->StartWriteBehind(registry_);
  ASSERT_TRUE(recorder_->RecordEstablished(rekeyed, SaRecorder::Children::kRekeyed).ok());
  recorder_->Flush();
  v1::ChildSa child;
  ASSERT_TRUE(child.ParseFromString(store_->Get(moved_key)->value));
  EXPECT_EQ(child.ike_responder_spi(), 0x4444u);
  EXPECT_EQ(net::IpEndpoint::FromProto(child.remote())->ToString(), "198.51.100.7:4500");
  // Re-tagged for the IKE SA that owns it now, at the mover's generation.
  EXPECT_EQ(store::CheckChildPath(*sealer_, child, 5), store::PathVerdict::kValid);
  EXPECT_TRUE(store::OpenChildSa(*sealer_, moved_key, child).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Get(SaRecorder::ChildKey(0xc0000012)).status()));

  // Moved again after the rekey's write was queued (read): the writer
  // meets the conflict and rebases on the newer path.
  recorder_->Stop();
  recorder_->StartWriteBehind(registry_, 4096, /*batch_window=*/absl::Seconds(30));
  rekeyed.spi_r = 0x5555;
  ASSERT_TRUE(recorder_->RecordEstablished(rekeyed, SaRecorder::Children::kRekeyed).ok());
  ASSERT_TRUE(child.ParseFromString(store_->Get(moved_key)->value));
  *child.mutable_remote() = net::IpEndpoint::Parse("203.0.113.8:4500")->ToProto();
  ASSERT_TRUE(store::TagChildPath(*sealer_, 6, &child).ok());
  ASSERT_TRUE(store_->Put(moved_key, child.SerializeAsString()).ok());
  recorder_->Flush();
  ASSERT_TRUE(child.ParseFromString(store_->Get(moved_key)->value));
  EXPECT_EQ(child.ike_responder_spi(), 0x5555u);
  EXPECT_EQ(net::IpEndpoint::FromProto(child.remote())->ToString(), "203.0.113.8:4500");

  // A path a store writer made up (no valid tag) is not carried over.
  recorder_->Stop();
  rekeyed.spi_r = 0x6666;
  ASSERT_TRUE(child.ParseFromString(store_->Get(moved_key)->value));
  *child.mutable_remote() = net::IpEndpoint::Parse("192.0.2.66:4500")->ToProto();
  ASSERT_TRUE(store_->Put(moved_key, child.SerializeAsString()).ok());
  ASSERT_TRUE(recorder_->RecordEstablished(rekeyed, SaRecorder::Children::kRekeyed).ok());
  ASSERT_TRUE(child.ParseFromString(store_->Get(moved_key)->value));
  EXPECT_EQ(net::IpEndpoint::FromProto(child.remote())->ToString(), "192.0.2.2:4500");
  EXPECT_EQ(store::CheckChildPath(*sealer_, child, 0), store::PathVerdict::kValid);
}

TEST_F(SaRecorderTest, DeferredTasksRunAfterTheWritesQueuedBeforeThem) {
  recorder_->StartWriteBehind(registry_);
  std::vector<uint32_t> seen;
  for (uint32_t id = 1; id <= 20; ++id) {
    sa_.next_own_request_id = id;
    ASSERT_TRUE(recorder_->RecordIke(sa_).ok());
    recorder_->Defer([&, id] {
      EXPECT_EQ(Stored().next_message_id_out(), id);
      seen.push_back(id);
    });
  }
  recorder_->Flush();
  EXPECT_EQ(seen.size(), 20u);
}

// mobility-service moved the SA and marked it DORMANT after our last write:
// our next write keeps what it owns (compare-on-version, then merge), both
// written at once and written behind.
TEST_F(SaRecorderTest, AWriteAfterMobilityServiceKeepsItsFields) {
  sa_.remote = *net::IpEndpoint::Parse("192.0.2.2:4500");
  ASSERT_TRUE(recorder_->RecordEstablished(sa_).ok());
  for (int round = 0; round < 2; ++round) {
    if (round == 1) recorder_->StartWriteBehind(registry_);
    v1::IkeSa moved = Stored();
    const std::string to = absl::StrCat("198.51.100.", 2 + round, ":4500");
    *moved.mutable_remote() = net::IpEndpoint::Parse(to)->ToProto();
    moved.set_remote_behind_nat(true);
    moved.set_state(v1::IKE_SA_STATE_DORMANT);
    // As mobility-service copies it from the mover's EndpointUpdate.
    ASSERT_TRUE(store::TagIkePath(*sealer_, 10 + round, &moved).ok());
    const int64_t version = store_->Get(sa_.record_key())->version;
    ASSERT_TRUE(store_->Put(sa_.record_key(), moved.SerializeAsString(),
                            {store::Condition::VersionIs(version)})
                    .ok());

    sa_.next_own_request_id = 9 + round;  // ours: still at the old address in memory
    ASSERT_TRUE(recorder_->RecordIke(sa_).ok());
    recorder_->Flush();
    const v1::IkeSa stored = Stored();
    EXPECT_EQ(stored.next_message_id_out(), 9u + round);
    EXPECT_EQ(net::IpEndpoint::FromProto(stored.remote())->ToString(), to);
    EXPECT_TRUE(stored.remote_behind_nat());
    EXPECT_EQ(stored.state(), v1::IKE_SA_STATE_DORMANT);
    EXPECT_EQ(store_->Get(sa_.record_key())->version, version + 2);
    // Still sealed and tagged: every reader accepts the merged record.
    EXPECT_TRUE(store::OpenIkeSa(*sealer_, sa_.record_key(), stored).ok());
    EXPECT_EQ(store::CheckIkePath(*sealer_, stored, 10 + round), store::PathVerdict::kValid);
  }
}

// The outage window ended and mobility-service deleted the SA's records: a
// late write of ours does not bring them back.
TEST_F(SaRecorderTest, ARecordDeletedElsewhereStaysDeleted) {
  sa_.children.push_back(Child(0xc0000005));
  ASSERT_TRUE(recorder_->RecordEstablished(sa_).ok());
  ASSERT_TRUE(store_->Txn({store::Op::Delete(sa_.record_key()),
                           store::Op::Delete(SaRecorder::ChildKey(0xc0000005))})
                  .ok());
  sa_.next_own_request_id = 3;
  ASSERT_TRUE(recorder_->RecordEstablished(sa_, SaRecorder::Children::kMoved).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Get(sa_.record_key()).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Get(SaRecorder::ChildKey(0xc0000005)).status()));
}

TEST_F(SaRecorderTest, RefusedWritesBehindAreCounted) {
  recorder_->StartWriteBehind(registry_);
  sa_.children.push_back(Child(0xc0000002));
  ASSERT_TRUE(recorder_->RecordChild(sa_, sa_.children.back()).ok());
  ASSERT_TRUE(recorder_->RecordChild(sa_, sa_.children.back()).ok());  // queued
  recorder_->Flush();
  double failures = 0;
  for (const auto& family : registry_.Collect()) {
    if (family.name == "ike_record_write_failures_total") {
      failures = family.metric.at(0).counter.value;
    }
  }
  EXPECT_EQ(failures, 1.0);
}

bool Accept(const IkeSa&) { return true; }

// An established aes256gcm16 SA with keys SkProtector takes, as another
// replica can rebuild it.
void MakeRebuildable(IkeSa& sa) {
  sa.transforms = {20, 256, 6, 0, 31, 0};  // aes256gcm16-prfsha384-x25519
  auto bytes = [](size_t size, uint8_t fill) {
    return crypto::SecretBytes(crypto::Bytes(size, fill));
  };
  sa.keys.sk_d = bytes(48, 1);
  sa.keys.sk_ei = bytes(36, 2);
  sa.keys.sk_er = bytes(36, 3);
  sa.keys.sk_pi = bytes(48, 4);
  sa.keys.sk_pr = bytes(48, 5);
  sa.local = *net::IpEndpoint::Parse("192.0.2.1:4500");
  sa.remote = *net::IpEndpoint::Parse("192.0.2.2:4500");
  sa.next_request_id = 5;
  sa.last_response_id = 4;
  sa.last_response = {crypto::Bytes(300, 0xa1), crypto::Bytes(120, 0xa2)};  // two fragments
  sa.next_own_request_id = 2;
  // The gateway's own COOKIE2 check in flight (its request ID 1).
  IkeSa::PendingRequest pending;
  pending.message_id = 1;
  pending.datagrams = {crypto::Bytes(90, 0xb1)};
  pending.sent = absl::Now();
  pending.attempts = 2;
  sa.pending_request = std::move(pending);
  sa.return_routability_cookie = crypto::Bytes(16, 0xc2);
}

// ike-service replica A's SA, taken over by replica B after A is gone: B
// owns the record and has the SA as A left it (keys, message IDs, the last
// response for a retransmit, its CHILD SAs); a late write of A's is dropped.
TEST_F(SaRecorderTest, AnotherReplicaTakesOverAndTheFirstNoLongerWrites) {
  MakeRebuildable(sa_);
  sa_.children.push_back(Child(0xc0000007));
  ASSERT_TRUE(recorder_->RecordEstablished(sa_).ok());
  SaRecorder replica_b(store_.get(), sealer_.get(), "replica-b", &policy_);

  // A request that does not authenticate claims nothing.
  std::string previous;
  EXPECT_TRUE(absl::IsPermissionDenied(
      replica_b.TakeOver(sa_.spi_i, sa_.spi_r, [](const IkeSa&) { return false; }, &previous)
          .status()));
  EXPECT_EQ(Stored().meta().owner_replica(), "replica-a");

  absl::StatusOr<std::unique_ptr<IkeSa>> taken =
      replica_b.TakeOver(sa_.spi_i, sa_.spi_r, Accept, &previous);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(previous, "replica-a");
  const IkeSa& sa = **taken;
  EXPECT_EQ(sa.phase, IkeSa::Phase::kEstablished);
  EXPECT_EQ(sa.keys.sk_ei.span().size(), 36u);
  EXPECT_EQ(sa.keys.sk_er.span()[0], 3);
  EXPECT_EQ(sa.keys.sk_d.span()[0], 1);
  EXPECT_NE(sa.from_initiator, nullptr);
  EXPECT_EQ(sa.next_request_id, 5u);
  EXPECT_TRUE(sa.message_id_unknown);
  EXPECT_EQ(sa.last_response_id, 4u);
  EXPECT_EQ(sa.last_response, sa_.last_response);
  EXPECT_EQ(sa.next_own_request_id, 2u);
  ASSERT_TRUE(sa.pending_request.has_value());  // retransmitted unchanged
  EXPECT_EQ(sa.pending_request->message_id, 1u);
  EXPECT_EQ(sa.pending_request->datagrams, sa_.pending_request->datagrams);
  EXPECT_EQ(sa.return_routability_cookie, sa_.return_routability_cookie);
  EXPECT_EQ(sa.remote.ToString(), "192.0.2.2:4500");
  ASSERT_EQ(sa.children.size(), 1u);
  EXPECT_EQ(sa.children[0].inbound_spi, 0xc0000007u);
  EXPECT_EQ(Stored().meta().owner_replica(), "replica-b");

  // A, still running (e.g. the forwarders' set of replicas changed), writes
  // late, more than once, and even deletes: the record stays B's, with B's
  // message IDs, and so do its CHILD records.
  sa_.next_own_request_id = 9;
  ASSERT_TRUE(recorder_->RecordIke(sa_).ok());
  sa_.next_own_request_id = 10;
  ASSERT_TRUE(recorder_->RecordIke(sa_).ok());
  ASSERT_TRUE(recorder_->RemoveSa(sa_).ok());
  EXPECT_EQ(Stored().meta().owner_replica(), "replica-b");
  EXPECT_EQ(Stored().next_message_id_out(), 2u);
  EXPECT_TRUE(store_->Get(SaRecorder::ChildKey(0xc0000007)).ok());

  // Nor does A give back the address lease the SA (now B's) holds.
  auto lease = store_->Put("pool/v4/0a0a0009", sa_.record_key(), {store::Condition::CreateOnly()});
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(recorder_
                  ->ReleaseLeases({store::Op::Delete("pool/v4/0a0a0009",
                                                     store::Condition::ModRevisionIs(
                                                         lease->revision))},
                                  sa_.record_key())
                  .ok());
  EXPECT_TRUE(store_->Get("pool/v4/0a0a0009").ok());

  // B writes on as the owner (compare-on-version from its takeover).
  (*taken)->next_own_request_id = 3;
  ASSERT_TRUE(replica_b.RecordIke(**taken).ok());
  EXPECT_EQ(Stored().next_message_id_out(), 3u);
  EXPECT_EQ(Stored().meta().owner_replica(), "replica-b");
}

TEST_F(SaRecorderTest, OnlyEstablishedSasAreTakenOver) {
  std::string previous;
  EXPECT_TRUE(absl::IsNotFound(recorder_->TakeOver(1, 2, Accept, &previous).status()));
  MakeRebuildable(sa_);
  sa_.phase = IkeSa::Phase::kAuthenticating;
  ASSERT_TRUE(recorder_->RecordIke(sa_).ok());
  SaRecorder replica_b(store_.get(), sealer_.get(), "replica-b", &policy_);
  EXPECT_TRUE(absl::IsNotFound(replica_b.TakeOver(sa_.spi_i, sa_.spi_r, Accept, &previous).status()));
  EXPECT_EQ(Stored().meta().owner_replica(), "replica-a");
}

}  // namespace
}  // namespace vpn::ike
