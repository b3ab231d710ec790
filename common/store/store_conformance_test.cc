// One conformance suite, both backends: every TEST_P runs against the
// embedded store (fresh data dir), against a real etcd started by the
// fixture (/usr/bin/etcd on loopback, data dir in TEST_TMPDIR; one etcd per
// test binary, each test under its own key prefix), and against etcd in
// production mode: TLS, client certificates and the roles of
// tools/etcd-rbac.sh. There the suite runs as ike-service under ike/, so the
// role a service really gets is shown to cover every Store operation, rather
// than a test-only role that could drift from the script.
#include <dirent.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/clock.h"
#include "common/crypto/crypto.h"
#include "common/rpc/credentials.h"
#include "common/store/embedded_store.h"
#include "common/store/etcd_launcher.h"
#include "common/store/etcd_store.h"
#include "common/store/sealer.h"
#include "common/store/store.h"
#include "common/store/test_record.pb.h"
#include "proto/etcd/etcdserverpb/rpc.grpc.pb.h"

namespace vpn::store {
namespace {

using testing::TestSa;
using testing::TestSaKeys;

std::string TmpDir(absl::string_view name) {
  std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'");
  EXPECT_EQ(system(cmd.c_str()), 0);
  return dir;
}

// True if any regular file under `dir` contains `needle`.
bool FilesContain(const std::string& dir, absl::string_view needle) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      found = found || FilesContain(path, needle);
    } else if (S_ISREG(st.st_mode)) {
      std::ifstream in(path, std::ios::binary);
      std::string data(static_cast<size_t>(st.st_size), '\0');
      in.read(data.data(), static_cast<std::streamsize>(data.size()));
      found = found || absl::StrContains(data, needle);
    }
  }
  closedir(d);
  return found;
}

// ---- Backends ----------------------------------------------------------------

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Store& store() = 0;
  // Whether `needle` appears in the bytes the backend holds: every raw value
  // under `prefix` as the backend returns it, and every file of its data dir.
  virtual bool RawContains(absl::string_view prefix, absl::string_view needle) = 0;
  // Embedded: closes and reopens the store. etcd: kills the server (the
  // client is kept), checks that calls fail fast, and restarts the server.
  virtual void Restart() = 0;
  virtual bool is_etcd() const = 0;
  // Where the test's keys go: "" (any key), or the prefix the client's etcd
  // role may write.
  virtual std::string key_root() const { return ""; }
};

class EmbeddedBackend : public Backend {
 public:
  explicit EmbeddedBackend(const std::string& name) {
    options_.dir = TmpDir(absl::StrCat("embedded-", name));
    Open();
  }
  Store& store() override { return *store_; }
  bool RawContains(absl::string_view prefix, absl::string_view needle) override {
    auto list = store_->List(prefix);
    EXPECT_TRUE(list.ok());
    for (const KeyValue& kv : list->kvs) {
      if (absl::StrContains(kv.value, needle)) return true;
    }
    return FilesContain(options_.dir, needle);
  }
  void Restart() override {
    store_.reset();
    Open();
  }
  bool is_etcd() const override { return false; }

 private:
  void Open() {
    auto s = EmbeddedStore::Open(options_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }
  EmbeddedOptions options_;
  std::unique_ptr<EmbeddedStore> store_;
};


class EtcdBackend : public Backend {
 public:
  // Plain text, no auth.
  EtcdBackend() : EtcdBackend(SharedTestEtcd(), {}, "") {}
  // `tls`: the client's certificate; `key_root`: the prefix its role writes.
  EtcdBackend(EtcdLauncher& etcd, const rpc::TlsFiles& tls, std::string key_root)
      : etcd_(etcd), key_root_(std::move(key_root)) {
    EtcdOptions options;
    options.endpoints = {etcd_.endpoint()};
    options.tls = tls;
    options.op_timeout = absl::Seconds(1);
    auto s = EtcdStore::Connect(options);
    EXPECT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    if (!etcd_.pki_dir().empty()) {
      const std::string& pki = etcd_.pki_dir();
      admin_tls_ = {pki + "/root.crt", pki + "/root.key", pki + "/ca.crt"};
    }
  }
  std::string key_root() const override { return key_root_; }
  Store& store() override { return *store_; }
  bool RawContains(absl::string_view prefix, absl::string_view needle) override {
    // Raw values straight from etcd's KV API, bypassing EtcdStore.
    auto creds = rpc::MakeChannelCredentials(admin_tls_);
    EXPECT_TRUE(creds.ok()) << creds.status();
    auto channel = grpc::CreateChannel(etcd_.endpoint(), *creds);
    auto kv = etcdserverpb::KV::NewStub(channel);
    grpc::ClientContext ctx;
    etcdserverpb::RangeRequest req;
    req.set_key(std::string(prefix));
    std::string end(prefix);
    end.back()++;
    req.set_range_end(end);
    etcdserverpb::RangeResponse resp;
    grpc::Status gs = kv->Range(&ctx, req, &resp);
    EXPECT_TRUE(gs.ok()) << gs.error_message();
    EXPECT_GT(resp.kvs_size(), 0);
    for (const auto& item : resp.kvs()) {
      if (absl::StrContains(item.value(), needle)) return true;
    }
    // And etcd's own files (bbolt db and raft WAL).
    return FilesContain(etcd_.data_dir(), needle);
  }
  void Restart() override {
    etcd_.Kill();
    // Calls fail fast with a clear status while etcd is gone.
    absl::Time start = absl::Now();
    const std::string any = key_root_ + "/any";
    auto get = store_->Get(any);
    absl::Duration took = absl::Now() - start;
    EXPECT_EQ(get.status().code(), absl::StatusCode::kUnavailable) << get.status();
    EXPECT_TRUE(absl::StrContains(get.status().message(), etcd_.endpoint()))
        << get.status();
    EXPECT_LT(took, absl::Seconds(3));
    auto put = store_->Put(any, "x");
    EXPECT_EQ(put.status().code(), absl::StatusCode::kUnavailable) << put.status();
    auto watch = store_->Watch(any, 0);
    EXPECT_EQ(watch.status().code(), absl::StatusCode::kUnavailable);
    ASSERT_TRUE(etcd_.Restart().ok());
    // The same client recovers by itself.
    absl::Time deadline = absl::Now() + absl::Seconds(15);
    absl::Status st;
    while (absl::Now() < deadline) {
      st = store_->Get(any).status();
      if (st.ok() || absl::IsNotFound(st)) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_TRUE(st.ok() || absl::IsNotFound(st)) << st;
  }
  bool is_etcd() const override { return true; }

 private:
  EtcdLauncher& etcd_;
  const std::string key_root_;
  std::unique_ptr<EtcdStore> store_;
  rpc::TlsFiles admin_tls_;  // production mode: etcd's root, for raw reads
};

class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info->name();
    test = test.substr(0, test.find('/'));
    if (GetParam() == "etcd") {
      backend_ = std::make_unique<EtcdBackend>();
    } else if (GetParam() == "etcd_rbac") {
      // As ike-service, whose role has readwrite on ike/.
      EtcdLauncher& etcd = SharedProductionTestEtcd();
      const std::string& pki = etcd.pki_dir();
      backend_ = std::make_unique<EtcdBackend>(
          etcd,
          rpc::TlsFiles{pki + "/ike-service.crt", pki + "/ike-service.key", pki + "/ca.crt"},
          "ike");
    } else {
      backend_ = std::make_unique<EmbeddedBackend>(test);
    }
    prefix_ = absl::StrCat(backend_->key_root(), "/t/", test, "/");
  }
  Store& store() { return backend_->store(); }
  std::string K(absl::string_view name) { return absl::StrCat(prefix_, name); }

  // Collects `n` events (fails the test on a timeout).
  std::vector<WatchEvent> Take(Watcher& w, size_t n,
                               absl::Duration timeout = absl::Seconds(10)) {
    std::vector<WatchEvent> out;
    absl::Time deadline = absl::Now() + timeout;
    while (out.size() < n && absl::Now() < deadline) {
      auto e = w.Next(deadline - absl::Now());
      if (e.ok()) out.push_back(*std::move(e));
    }
    EXPECT_EQ(out.size(), n) << "timed out waiting for watch events";
    return out;
  }

  std::string prefix_;
  std::unique_ptr<Backend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance,
                         ::testing::Values("embedded", "etcd", "etcd_rbac"),
                         [](const auto& info) { return info.param; });

TEST_P(StoreConformance, BasicOperationsAndVersions) {
  EXPECT_EQ(store().Get(K("a")).status().code(), absl::StatusCode::kNotFound);
  auto p1 = store().Put(K("a"), "one");
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_EQ(p1->version, 1);
  auto p2 = store().Put(K("a"), "two");
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_EQ(p2->version, 2);
  EXPECT_GT(p2->revision, p1->revision);
  ASSERT_TRUE(store().Put(K("b"), std::string("bin\0ary", 7)).ok());
  ASSERT_TRUE(store().Put(absl::StrCat(prefix_, "zz/c"), "c").ok());

  auto a = store().Get(K("a"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->value, "two");
  EXPECT_EQ(a->version, 2);
  EXPECT_EQ(a->create_revision, p1->revision);
  EXPECT_EQ(a->mod_revision, p2->revision);

  auto list = store().List(prefix_);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->kvs.size(), 3u);
  EXPECT_EQ(list->kvs[0].key, K("a"));
  EXPECT_EQ(list->kvs[1].value, std::string("bin\0ary", 7));
  EXPECT_EQ(list->kvs[2].key, K("zz/c"));
  EXPECT_GE(list->revision, p2->revision);
  EXPECT_EQ(store().List(K("zz/"))->kvs.size(), 1u);
  EXPECT_TRUE(store().List(K("nothing/"))->kvs.empty());

  auto d = store().Delete(K("a"));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_GT(d->revision, p2->revision);
  EXPECT_EQ(store().Get(K("a")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store().Delete(K("a")).status().code(), absl::StatusCode::kNotFound);
  // Re-created keys start at version 1 again.
  auto again = store().Put(K("a"), "three");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, 1);
}

TEST_P(StoreConformance, ConditionsGiveTypedConflicts) {
  ASSERT_TRUE(store().Put(K("k"), "v1", {Condition::CreateOnly()}).ok());
  auto dup = store().Put(K("k"), "v1b", {Condition::CreateOnly()});
  ASSERT_FALSE(dup.ok());
  EXPECT_TRUE(IsConflict(dup.status())) << dup.status();
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(dup.status().message(), K("k")));
  EXPECT_TRUE(absl::StrContains(dup.status().message(), "found version 1"))
      << dup.status();

  auto ok = store().Put(K("k"), "v2", {Condition::VersionIs(1)});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->version, 2);
  auto stale = store().Put(K("k"), "v3", {Condition::VersionIs(1)});
  EXPECT_TRUE(IsConflict(stale.status())) << stale.status();
  EXPECT_EQ(store().Get(K("k"))->value, "v2");

  auto del_stale = store().Delete(K("k"), Condition::VersionIs(1));
  EXPECT_TRUE(IsConflict(del_stale.status())) << del_stale.status();
  EXPECT_TRUE(store().Get(K("k")).ok());
  ASSERT_TRUE(store().Delete(K("k"), Condition::VersionIs(2)).ok());
  auto missing = store().Put(K("k"), "x", {Condition::VersionIs(2)});
  EXPECT_TRUE(IsConflict(missing.status()));
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "key absent"));
  EXPECT_FALSE(IsConflict(absl::FailedPreconditionError("other")));
}

// A key deleted and created again is at version 1 again; the revision it
// was written at tells the two apart.
TEST_P(StoreConformance, ModRevisionConditionTellsIncarnationsApart) {
  auto first = store().Put(K("m"), "a", {Condition::CreateOnly()});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(store().Delete(K("m")).ok());
  auto second = store().Put(K("m"), "b", {Condition::CreateOnly()});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->version, first->version);
  auto stale = store().Txn({Op::Delete(K("m"), Condition::ModRevisionIs(first->revision))});
  EXPECT_TRUE(IsConflict(stale.status())) << stale.status();
  EXPECT_EQ(store().Get(K("m"))->value, "b");
  auto absent = store().Put(K("n"), "x", {Condition::ModRevisionIs(first->revision)});
  EXPECT_TRUE(IsConflict(absent.status())) << absent.status();
  ASSERT_TRUE(store().Txn({Op::Delete(K("m"), Condition::ModRevisionIs(second->revision))}).ok());
  EXPECT_TRUE(absl::IsNotFound(store().Get(K("m")).status()));
}

TEST_P(StoreConformance, ConcurrentWritersOnOneKeyExactlyOneWins) {
  constexpr int kThreads = 8;
  for (int round = 0; round < 5; ++round) {
    const std::string key = K(absl::StrCat("race", round));
    // Round of create-only racers, then a round of compare-on-version racers.
    for (int phase = 0; phase < 2; ++phase) {
      int64_t seen_version = 0;
      if (phase == 1) seen_version = store().Get(key)->version;
      absl::Barrier* barrier = new absl::Barrier(kThreads);
      std::atomic<int> wins{0}, conflicts{0}, other{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
          if (barrier->Block()) delete barrier;
          auto r = store().Put(key, absl::StrCat("writer", t),
                               {Condition::VersionIs(seen_version)});
          if (r.ok()) {
            ++wins;
          } else if (IsConflict(r.status())) {
            ++conflicts;
          } else {
            ++other;
            ADD_FAILURE() << r.status();
          }
        });
      }
      for (auto& t : threads) t.join();
      EXPECT_EQ(wins.load(), 1) << "round " << round << " phase " << phase;
      EXPECT_EQ(conflicts.load(), kThreads - 1);
      EXPECT_EQ(other.load(), 0);
      EXPECT_EQ(store().Get(key)->version, seen_version + 1);
    }
  }
}

TEST_P(StoreConformance, TxnIsAllOrNothing) {
  ASSERT_TRUE(store().Put(K("a"), "a1").ok());
  ASSERT_TRUE(store().Put(K("gone"), "x").ok());
  auto w = store().Watch(prefix_, 0);
  ASSERT_TRUE(w.ok()) << w.status();
  // The last guard fails: nothing may be written.
  auto failed = store().Txn({Op::Put(K("a"), "a2", Condition::VersionIs(1)),
                             Op::Put(K("b"), "b1", Condition::CreateOnly()),
                             Op::Delete(K("gone")),
                             Op::Check(K("a"), Condition::VersionIs(7))});
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(IsConflict(failed.status())) << failed.status();
  EXPECT_TRUE(absl::StrContains(failed.status().message(), "expected version 7"))
      << failed.status();
  EXPECT_EQ(store().Get(K("a"))->value, "a1");
  EXPECT_FALSE(store().Get(K("b")).ok());
  EXPECT_TRUE(store().Get(K("gone")).ok());

  auto ok = store().Txn({Op::Put(K("a"), "a2", Condition::VersionIs(1)),
                         Op::Put(K("b"), "b1", Condition::CreateOnly()),
                         Op::Delete(K("gone")),
                         Op::Check(K("other"), Condition::CreateOnly())});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->versions, (std::vector<int64_t>{2, 1, 0, 0}));
  EXPECT_EQ(store().Get(K("a"))->mod_revision, ok->revision);
  EXPECT_EQ(store().Get(K("b"))->mod_revision, ok->revision);
  EXPECT_FALSE(store().Get(K("gone")).ok());
  // All three changes arrive, at the one revision of the txn.
  std::vector<WatchEvent> events = Take(**w, 3);
  for (const WatchEvent& e : events) EXPECT_EQ(e.revision, ok->revision);
  // Writing one key twice in a txn is refused.
  auto dup = store().Txn({Op::Put(K("c"), "1"), Op::Put(K("c"), "2")});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreConformance, WatchDeliversOrderedEventsAndResumesFromRevision) {
  ASSERT_TRUE(store().Put(K("before"), "x").ok());
  auto w = store().Watch(prefix_, 0);
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<int64_t> revs;
  revs.push_back(store().Put(K("a"), "1")->revision);
  revs.push_back(store().Put(K("b"), "1")->revision);
  ASSERT_TRUE(store().Put(backend_->key_root() + "/elsewhere/x", "ignored").ok());
  revs.push_back(store().Put(K("a"), "2")->revision);
  revs.push_back(store().Delete(K("b"))->revision);
  auto txn = store().Txn({Op::Put(K("c"), "1"), Op::Put(K("a"), "3")});
  ASSERT_TRUE(txn.ok());
  revs.push_back(txn->revision);

  struct Want {
    WatchEvent::Type type;
    std::string key;
    std::string value;
    int64_t revision;
  };
  const auto kPut = WatchEvent::Type::kPut;
  const auto kDel = WatchEvent::Type::kDelete;
  std::vector<Want> want = {{kPut, K("a"), "1", revs[0]}, {kPut, K("b"), "1", revs[1]},
                            {kPut, K("a"), "2", revs[2]}, {kDel, K("b"), "", revs[3]},
                            {kPut, K("c"), "1", revs[4]}, {kPut, K("a"), "3", revs[4]}};
  auto check = [&](const std::vector<WatchEvent>& got, size_t from) {
    ASSERT_EQ(got.size(), want.size() - from);
    for (size_t i = 0; i < got.size(); ++i) {
      const Want& exp = want[from + i];
      EXPECT_EQ(got[i].type, exp.type) << i;
      EXPECT_EQ(got[i].kv.key, exp.key) << i;
      EXPECT_EQ(got[i].revision, exp.revision) << i;
      if (exp.type == kPut) {
        EXPECT_EQ(got[i].kv.value, exp.value) << i;
      }
    }
  };
  check(Take(**w, want.size()), 0);
  EXPECT_EQ((*w)->Next(absl::Milliseconds(300)).status().code(),
            absl::StatusCode::kDeadlineExceeded);

  // A restarted component resumes from the revision after the last it saw.
  auto resumed = store().Watch(prefix_, revs[2]);
  ASSERT_TRUE(resumed.ok());
  check(Take(**resumed, want.size() - 2), 2);
  EXPECT_EQ((*resumed)->Next(absl::Milliseconds(300)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  // And keeps receiving new changes.
  auto later = store().Put(K("d"), "1");
  auto e = Take(**resumed, 1);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].revision, later->revision);
}

TEST_P(StoreConformance, WatchFromCompactedRevisionStartsWithResync) {
  int64_t first = store().Put(K("k"), "v1")->revision;
  ASSERT_TRUE(store().Put(K("k"), "v2").ok());
  ASSERT_TRUE(store().Put(K("gone"), "x").ok());
  ASSERT_TRUE(store().Delete(K("gone")).ok());
  int64_t last = store().Put(K("k2"), "w")->revision;
  ASSERT_TRUE(store().Compact(last).ok());
  auto w = store().Watch(prefix_, first);
  ASSERT_TRUE(w.ok()) << w.status();
  auto events = Take(**w, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kResync);
  EXPECT_GE(events[0].revision, last);
  ASSERT_EQ(events[0].snapshot.size(), 2u);
  EXPECT_EQ(events[0].snapshot[0].key, K("k"));
  EXPECT_EQ(events[0].snapshot[0].value, "v2");
  EXPECT_EQ(events[0].snapshot[1].key, K("k2"));
  // Events continue after the resync.
  int64_t next = store().Put(K("k"), "v3")->revision;
  auto more = Take(**w, 1);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(more[0].revision, next);
  // From the compaction revision itself nothing is missing.
  auto exact = store().Watch(prefix_, last);
  ASSERT_TRUE(exact.ok());
  auto ev = Take(**exact, 1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(ev[0].revision, last);
}

TEST_P(StoreConformance, LeaseExpiryDeletesKeysWithEvents) {
  auto lease = store().GrantLease(absl::Seconds(2));
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(store().Put(K("half-open/1"), "x", {Condition::Any(), *lease}).ok());
  ASSERT_TRUE(store().Put(K("half-open/2"), "y", {Condition::Any(), *lease}).ok());
  ASSERT_TRUE(store().Put(K("durable"), "z").ok());
  EXPECT_EQ(store().Get(K("half-open/1"))->lease, *lease);
  auto w = store().Watch(prefix_, 0);
  ASSERT_TRUE(w.ok());
  // Keep-alives hold the lease past its TTL.
  absl::Time start = absl::Now();
  for (int i = 0; i < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(1000));
    ASSERT_TRUE(store().KeepAlive(*lease).ok());
  }
  EXPECT_TRUE(store().Get(K("half-open/1")).ok()) << "expired despite keep-alives";
  // Then it expires: both keys are deleted, with delete events.
  auto events = Take(**w, 2, absl::Seconds(15));
  ASSERT_EQ(events.size(), 2u);
  std::set<std::string> deleted;
  for (const WatchEvent& e : events) {
    EXPECT_EQ(e.type, WatchEvent::Type::kDelete);
    deleted.insert(e.kv.key);
  }
  EXPECT_EQ(deleted, (std::set<std::string>{K("half-open/1"), K("half-open/2")}));
  EXPECT_GT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(store().Get(K("half-open/2")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store().Get(K("durable")).ok());
  EXPECT_EQ(store().KeepAlive(*lease).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store().Put(K("late"), "x", {Condition::Any(), *lease}).status().code(),
            absl::StatusCode::kNotFound);

  // Revoking deletes at once.
  auto lease2 = store().GrantLease(absl::Seconds(30));
  ASSERT_TRUE(lease2.ok());
  ASSERT_TRUE(store().Put(K("liveness"), "x", {Condition::Any(), *lease2}).ok());
  ASSERT_TRUE(store().RevokeLease(*lease2).ok());
  EXPECT_EQ(store().Get(K("liveness")).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreConformance, SealedFieldsAreUnreadableInRawBackendBytes) {
  uint8_t key[Sealer::kKeySize];
  crypto::GetProvider().RandomBytes(absl::MakeSpan(key));
  auto sealer = Sealer::FromKey(crypto::ByteSpan(key, sizeof(key)));
  ASSERT_TRUE(sealer.ok()) << sealer.status();

  uint8_t random[16];
  crypto::GetProvider().RandomBytes(absl::MakeSpan(random));
  const std::string sk_ei = absl::StrCat(
      "SK_ei-plaintext-", absl::BytesToHexString(absl::string_view(
                              reinterpret_cast<const char*>(random), sizeof(random))));
  const std::string name = absl::StrCat("sa-name-", sk_ei.substr(16, 8));
  TestSaKeys secret;
  secret.set_sk_ei(sk_ei);
  secret.set_sk_er(std::string(32, '\x42'));
  TestSa record;
  record.set_name(name);
  record.set_spi(0xc0ffee);
  const std::string record_key = K("sa/1");
  ASSERT_TRUE(SealInto(**sealer, record_key, secret, &record).ok());
  ASSERT_TRUE(PutProto(store(), record_key, record).ok());

  // The check can see the record (so it can fail) but not the key.
  EXPECT_TRUE(backend_->RawContains(prefix_, name));
  EXPECT_FALSE(backend_->RawContains(prefix_, sk_ei))
      << "plaintext keying material reached the " << GetParam() << " backend";

  auto back = GetProto<TestSa>(store(), record_key);
  ASSERT_TRUE(back.ok()) << back.status();
  auto opened = OpenFrom<TestSaKeys>(**sealer, record_key, back->record);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->sk_ei(), sk_ei);

  // A blob moved to another record does not open.
  ASSERT_TRUE(PutProto(store(), K("sa/2"), back->record).ok());
  auto moved = GetProto<TestSa>(store(), K("sa/2"));
  ASSERT_TRUE(moved.ok());
  auto fail = OpenFrom<TestSaKeys>(**sealer, K("sa/2"), moved->record);
  EXPECT_EQ(fail.status().code(), absl::StatusCode::kDataLoss) << fail.status();
  // A value that is not the record type is a typed error.
  ASSERT_TRUE(store().Put(K("sa/3"), std::string("\xff\xff\xff", 3)).ok());
  EXPECT_EQ(GetProto<TestSa>(store(), K("sa/3")).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_P(StoreConformance, EtcdLimitsAreEnforced) {
  auto big = store().Put(K("big"), std::string(kMaxRequestBytes + 1, 'x'));
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument) << big.status();
  EXPECT_TRUE(absl::StrContains(big.status().message(), "limit")) << big.status();
  EXPECT_TRUE(store().Put(K("fits"), std::string(1 << 20, 'x')).ok());

  std::vector<Op> ops;
  for (size_t i = 0; i < kMaxTxnOps + 1; ++i) ops.push_back(Op::Put(K(absl::StrCat("op", i)), "v"));
  auto too_many = store().Txn(ops);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(too_many.status().message(), "128")) << too_many.status();
  EXPECT_FALSE(store().Get(K("op0")).ok());
  ops.pop_back();
  auto max = store().Txn(ops);
  ASSERT_TRUE(max.ok()) << max.status();
  EXPECT_EQ(store().List(K("op"))->kvs.size(), kMaxTxnOps);
}

TEST_P(StoreConformance, RestartKeepsDataAndWatchResumes) {
  auto before = store().Put(K("k"), "before");
  ASSERT_TRUE(before.ok());
  std::unique_ptr<Watcher> w;
  if (backend_->is_etcd()) {
    auto watch = store().Watch(prefix_, 0);
    ASSERT_TRUE(watch.ok());
    w = *std::move(watch);
  }
  // etcd: fails fast while down, then the same client recovers.
  backend_->Restart();
  auto kv = store().Get(K("k"));
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->value, "before");
  auto after = store().Put(K("k"), "after", {Condition::VersionIs(1)});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(after->revision, before->revision);
  if (w == nullptr) {
    // Embedded: a new watcher resumes from the revision after `before`.
    auto watch = store().Watch(prefix_, before->revision + 1);
    ASSERT_TRUE(watch.ok());
    w = *std::move(watch);
  }
  // The watch picks up after the restart: the next event, exactly once.
  auto events = Take(*w, 1, absl::Seconds(15));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].revision, after->revision);
  EXPECT_EQ(events[0].kv.value, "after");
  EXPECT_EQ(w->Next(absl::Milliseconds(300)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace vpn::store
