// Embedded-backend specifics: recovery from torn/corrupt WAL tails, corrupt
// snapshots and segments, bounded data directory, persistence of leases and
// watch history across restarts. The shared behaviour is in
// store_conformance_test.cc; the kill -9 test in embedded_crash_test.cc.
#include "common/store/embedded_store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vpn::store {
namespace {

std::string NewDir(const std::string& name) {
  std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "'");
  EXPECT_EQ(system(cmd.c_str()), 0);
  return dir;
}

std::unique_ptr<EmbeddedStore> OpenOrDie(const EmbeddedOptions& options) {
  auto store = EmbeddedStore::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::vector<std::string> Files(const std::string& dir, absl::string_view prefix) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  while (struct dirent* e = d ? readdir(d) : nullptr) {
    if (absl::StartsWith(e->d_name, prefix)) out.push_back(dir + "/" + e->d_name);
  }
  if (d) closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const std::string& f : Files(dir, "")) {
    struct stat st;
    if (stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += st.st_size;
  }
  return total;
}

off_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

void FlipByte(const std::string& path, off_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x5a));
}

TEST(EmbeddedStore, DataSurvivesReopenAndRevisionsKeepGrowing) {
  EmbeddedOptions options{NewDir("reopen")};
  int64_t last;
  {
    auto store = OpenOrDie(options);
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(store->Put(absl::StrCat("k", i), absl::StrCat("v", i)).ok());
    }
    auto r = store->Put("k0", "v0b", {Condition::VersionIs(1)});
    ASSERT_TRUE(r.ok()) << r.status();
    last = r->revision;
    ASSERT_TRUE(store->Delete("k1").ok());
    ++last;
  }
  auto store = OpenOrDie(options);
  EXPECT_TRUE(store->recovery_notes().empty());
  EXPECT_EQ(store->revision(), last);
  auto kv = store->Get("k0");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->value, "v0b");
  EXPECT_EQ(kv->version, 2);
  EXPECT_EQ(store->Get("k1").status().code(), absl::StatusCode::kNotFound);
  auto next = store->Put("new", "x");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->revision, last + 1);
}

// A write with deferred durability is applied at once but reaches the WAL
// only with the next write that waits (one fsync for both).
TEST(EmbeddedStore, DeferredDurabilityWritesWithTheNextWaitingWrite) {
  EmbeddedOptions options{NewDir("deferred")};
  {
    auto store = OpenOrDie(options);
    ASSERT_TRUE(store->Put("a", "1").ok());
    const std::vector<std::string> wal = Files(options.dir, "wal-");
    ASSERT_EQ(wal.size(), 1u);
    const off_t before = FileSize(wal[0]);
    PutOptions deferred;
    deferred.condition = Condition::CreateOnly();
    deferred.defer_durability = true;
    auto leased = store->Put("lease", "x", deferred);
    ASSERT_TRUE(leased.ok()) << leased.status();
    EXPECT_EQ(FileSize(wal[0]), before) << "not written yet";
    EXPECT_TRUE(IsConflict(store->Put("lease", "y", deferred).status()));
    ASSERT_TRUE(store->Put("b", "2").ok());
    EXPECT_GT(FileSize(wal[0]), before);
    auto b = store->Get("b");
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->mod_revision, leased->revision + 1);
  }
  auto store = OpenOrDie(options);
  EXPECT_EQ(store->Get("lease")->value, "x");
  EXPECT_EQ(store->Get("b")->value, "2");
}

TEST(EmbeddedStore, TornTailIsTruncatedWithClearMessageAndPrefixKept) {
  EmbeddedOptions options{NewDir("torn")};
  {
    auto store = OpenOrDie(options);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->Put(absl::StrCat("k", i), "v").ok());
  }
  std::vector<std::string> wal = Files(options.dir, "wal-");
  ASSERT_EQ(wal.size(), 1u);
  off_t size = FileSize(wal[0]);
  ASSERT_EQ(truncate(wal[0].c_str(), size - 3), 0);
  {
    auto store = OpenOrDie(options);
    ASSERT_EQ(store->recovery_notes().size(), 1u);
    const std::string& note = store->recovery_notes()[0];
    EXPECT_TRUE(absl::StrContains(note, wal[0])) << note;
    EXPECT_TRUE(absl::StrContains(note, "torn record at offset ")) << note;
    EXPECT_TRUE(absl::StrContains(note, "kept the 9 valid records")) << note;
    for (int i = 0; i < 9; ++i) EXPECT_TRUE(store->Get(absl::StrCat("k", i)).ok()) << i;
    EXPECT_FALSE(store->Get("k9").ok());
    EXPECT_EQ(store->revision(), 9);
    ASSERT_TRUE(store->Put("after", "x").ok());
  }
  auto store = OpenOrDie(options);
  EXPECT_TRUE(store->recovery_notes().empty());
  EXPECT_TRUE(store->Get("after").ok());
  EXPECT_EQ(store->revision(), 10);
}

TEST(EmbeddedStore, CorruptTailRecordIsDetectedByCrc) {
  EmbeddedOptions options{NewDir("crc")};
  off_t before_last;
  {
    auto store = OpenOrDie(options);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Put(absl::StrCat("k", i), "v").ok());
    before_last = FileSize(Files(options.dir, "wal-")[0]);
    ASSERT_TRUE(store->Put("k5", std::string(100, 'z')).ok());
  }
  std::string wal = Files(options.dir, "wal-")[0];
  FlipByte(wal, before_last + 40);
  auto store = OpenOrDie(options);
  ASSERT_EQ(store->recovery_notes().size(), 1u);
  EXPECT_TRUE(absl::StrContains(store->recovery_notes()[0],
                                absl::StrCat("corrupt record at offset ", before_last)))
      << store->recovery_notes()[0];
  EXPECT_TRUE(absl::StrContains(store->recovery_notes()[0], "CRC mismatch"));
  EXPECT_TRUE(store->Get("k4").ok());
  EXPECT_FALSE(store->Get("k5").ok());
  EXPECT_EQ(FileSize(wal), before_last);
}

TEST(EmbeddedStore, CorruptionBeforeLaterDataIsDataLossNotACrash) {
  EmbeddedOptions options{NewDir("middle")};
  {
    auto store = OpenOrDie(options);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Put(absl::StrCat("k", i), "v").ok());
  }
  std::string wal = Files(options.dir, "wal-")[0];
  FlipByte(wal, 20);
  // A later, non-empty segment: the damaged records were acknowledged.
  std::ofstream(options.dir + "/wal-0000000000000009.log") << "later data";
  auto store = EmbeddedStore::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(store.status().message(), wal)) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(), "at offset 0"));
}

TEST(EmbeddedStore, CorruptSnapshotIsDataLossNamingTheFile) {
  EmbeddedOptions options{NewDir("snapcorrupt")};
  {
    auto store = OpenOrDie(options);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->Put(absl::StrCat("k", i), "v").ok());
    ASSERT_TRUE(store->Snapshot().ok());
  }
  std::vector<std::string> snaps = Files(options.dir, "snap-");
  ASSERT_EQ(snaps.size(), 1u);
  FlipByte(snaps[0], FileSize(snaps[0]) / 2);
  auto store = EmbeddedStore::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(store.status().message(), snaps[0])) << store.status();
}

TEST(EmbeddedStore, CompactionKeepsTheDataDirBounded) {
  EmbeddedOptions options{NewDir("bounded")};
  options.segment_bytes = 32 << 10;
  const std::string value(500, 'v');
  uint64_t max_bytes = 0;
  {
    auto store = OpenOrDie(options);
    for (int i = 0; i < 4000; ++i) {
      ASSERT_TRUE(store->Put(absl::StrCat("sa/", i % 50), absl::StrCat(i, value)).ok());
      if (i % 100 == 0) max_bytes = std::max(max_bytes, DirBytes(options.dir));
    }
    ASSERT_TRUE(store->Snapshot().ok());
  }
  // 4000 writes of ~530 bytes are ~2 MiB of log; live data is 50 keys.
  EXPECT_LT(max_bytes, 200u << 10);
  EXPECT_LT(DirBytes(options.dir), 100u << 10);
  EXPECT_LE(Files(options.dir, "wal-").size(), 2u);
  EXPECT_EQ(Files(options.dir, "snap-").size(), 1u);
  auto store = OpenOrDie(options);
  EXPECT_EQ(store->revision(), 4000);
  for (int k = 0; k < 50; ++k) {
    auto kv = store->Get(absl::StrCat("sa/", k));
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ(kv->value, absl::StrCat(3950 + k, value));
    EXPECT_EQ(kv->version, 80);
  }
}

TEST(EmbeddedStore, WatchResumesFromWalAfterRestartAndResyncsAfterSnapshot) {
  EmbeddedOptions options{NewDir("watchrestart")};
  {
    auto store = OpenOrDie(options);
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(store->Put("w/k", absl::StrCat(i)).ok());
  }
  {
    auto store = OpenOrDie(options);
    auto w = store->Watch("w/", 3);
    ASSERT_TRUE(w.ok());
    for (int rev = 3; rev <= 5; ++rev) {
      auto e = (*w)->Next(absl::Seconds(5));
      ASSERT_TRUE(e.ok()) << e.status();
      EXPECT_EQ(e->type, WatchEvent::Type::kPut);
      EXPECT_EQ(e->revision, rev);
      EXPECT_EQ(e->kv.value, absl::StrCat(rev));
    }
    ASSERT_TRUE(store->Snapshot().ok());
  }
  auto store = OpenOrDie(options);
  auto w = store->Watch("w/", 3);
  ASSERT_TRUE(w.ok());
  auto e = (*w)->Next(absl::Seconds(5));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->type, WatchEvent::Type::kResync);
  EXPECT_EQ(e->revision, 5);
  ASSERT_EQ(e->snapshot.size(), 1u);
  EXPECT_EQ(e->snapshot[0].value, "5");
}

TEST(EmbeddedStore, SlowWatcherGetsResyncInsteadOfUnboundedQueue) {
  EmbeddedOptions options{NewDir("slowwatch")};
  options.watch_queue_limit = 10;
  auto store = OpenOrDie(options);
  auto w = store->Watch("q/", 0);
  ASSERT_TRUE(w.ok());
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(store->Put(absl::StrCat("q/", i % 3), "v").ok());
  std::vector<WatchEvent> got;
  while (true) {
    auto e = (*w)->Next(absl::Milliseconds(200));
    if (!e.ok()) break;
    got.push_back(*e);
  }
  ASSERT_FALSE(got.empty());
  bool saw_resync = false;
  int64_t last = 0;
  for (const WatchEvent& e : got) {
    if (e.type == WatchEvent::Type::kResync) {
      saw_resync = true;
      EXPECT_EQ(e.snapshot.size(), 3u);
    }
    EXPECT_GT(e.revision, last);
    last = e.revision;
  }
  EXPECT_TRUE(saw_resync);
  EXPECT_EQ(last, 25);
}

TEST(EmbeddedStore, LeasesSurviveRestartAndStillExpire) {
  EmbeddedOptions options{NewDir("leases")};
  LeaseId lease;
  {
    auto store = OpenOrDie(options);
    auto l = store->GrantLease(absl::Seconds(1));
    ASSERT_TRUE(l.ok());
    lease = *l;
    ASSERT_TRUE(store->Put("half-open/1", "x", {Condition::Any(), lease}).ok());
  }
  auto store = OpenOrDie(options);
  auto kv = store->Get("half-open/1");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->lease, lease);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (store->Get("half-open/1").ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(store->Get("half-open/1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->KeepAlive(lease).code(), absl::StatusCode::kNotFound);
  // A new lease does not reuse the old id.
  auto l2 = store->GrantLease(absl::Seconds(5));
  ASSERT_TRUE(l2.ok());
  EXPECT_GT(*l2, lease);
}

TEST(EmbeddedStore, SecondOpenOfTheSameDirIsRefused) {
  EmbeddedOptions options{NewDir("locked")};
  auto first = OpenOrDie(options);
  auto second = EmbeddedStore::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "in use")) << second.status();
}

}  // namespace
}  // namespace vpn::store
