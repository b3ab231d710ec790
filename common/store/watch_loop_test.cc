#include "common/store/watch_loop.h"

#include <stdlib.h>

#include <atomic>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/store/embedded_store.h"
#include "common/store/forwarding_store.h"
#include "gtest/gtest.h"

namespace vpn::store {
namespace {

// The first `broken` watches break at their first Next().
class BreakingStore : public ForwardingStore {
 public:
  BreakingStore(Store* inner, int broken) : ForwardingStore(inner), broken_(broken) {}
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(absl::string_view prefix,
                                                 int64_t from_revision) override {
    if (broken_ > 0) {
      --broken_;
      return std::unique_ptr<Watcher>(new Broken());
    }
    return ForwardingStore::Watch(prefix, from_revision);
  }

 private:
  class Broken : public Watcher {
   public:
    absl::StatusOr<WatchEvent> Next(absl::Duration) override {
      return absl::UnavailableError("connection reset");
    }
    void Cancel() override {}
  };
  std::atomic<int> broken_;
};

// The view a caller builds from the handlers.
class View {
 public:
  WatchHandlers Handlers() {
    WatchHandlers h;
    h.snapshot = [this](const std::vector<KeyValue>& kvs, int64_t) {
      absl::MutexLock lock(&mu_);
      values_.clear();
      for (const KeyValue& kv : kvs) values_[kv.key] = kv.value;
      ++snapshots_;
    };
    h.put = [this](const KeyValue& kv, int64_t) {
      absl::MutexLock lock(&mu_);
      values_[kv.key] = kv.value;
    };
    h.del = [this](const KeyValue& kv, int64_t) {
      absl::MutexLock lock(&mu_);
      values_.erase(kv.key);
    };
    h.batch_done = [this] {
      absl::MutexLock lock(&mu_);
      ++batches_;
    };
    return h;
  }
  // Waits until the view equals `want`.
  bool WaitFor(const std::map<std::string, std::string>& want) {
    absl::MutexLock lock(&mu_);
    auto equal = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return values_ == want; };
    return mu_.AwaitWithTimeout(absl::Condition(&equal), absl::Seconds(5));
  }
  int snapshots() {
    absl::MutexLock lock(&mu_);
    return snapshots_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
  int snapshots_ ABSL_GUARDED_BY(mu_) = 0;
  int batches_ ABSL_GUARDED_BY(mu_) = 0;
};

class WatchLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/watch_loop_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    EmbeddedOptions options;
    options.dir = dir;
    auto store = EmbeddedStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  std::unique_ptr<EmbeddedStore> store_;
};

TEST_F(WatchLoopTest, ListsThenFollowsPutsAndDeletesUnderThePrefix) {
  ASSERT_TRUE(store_->Put("ike/a", "1").ok());
  ASSERT_TRUE(store_->Put("other/x", "9").ok());
  View view;
  WatchLoop loop(store_.get(), "ike/", view.Handlers());
  std::thread run([&] { loop.Run(); });
  EXPECT_TRUE(view.WaitFor({{"ike/a", "1"}}));
  ASSERT_TRUE(store_->Put("ike/b", "2").ok());
  ASSERT_TRUE(store_->Put("ike/a", "3").ok());
  ASSERT_TRUE(store_->Delete("ike/b").ok());
  ASSERT_TRUE(store_->Put("other/y", "9").ok());
  EXPECT_TRUE(view.WaitFor({{"ike/a", "3"}}));
  loop.Stop();
  run.join();
  EXPECT_EQ(loop.listings(), 1);
}

// A broken watch, or one that cannot be opened, is followed by a new
// listing: what changed meanwhile is in it.
TEST_F(WatchLoopTest, ABrokenWatchListsAgainAndMissesNothing) {
  BreakingStore breaking(store_.get(), 2);
  View view;
  WatchLoopOptions options;
  options.retry = absl::Milliseconds(20);
  WatchLoop loop(&breaking, "ike/", view.Handlers(), options);
  ASSERT_TRUE(store_->Put("ike/a", "1").ok());
  std::thread run([&] { loop.Run(); });
  // Written while the watches are broken: found by the listings.
  ASSERT_TRUE(store_->Put("ike/b", "2").ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (loop.listings() < 3 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(loop.listings(), 3);
  EXPECT_TRUE(view.WaitFor({{"ike/a", "1"}, {"ike/b", "2"}}));
  // The third watch works.
  ASSERT_TRUE(store_->Put("ike/c", "3").ok());
  EXPECT_TRUE(view.WaitFor({{"ike/a", "1"}, {"ike/b", "2"}, {"ike/c", "3"}}));
  loop.Stop();
  run.join();
  EXPECT_EQ(loop.listings(), 3);
  EXPECT_EQ(view.snapshots(), 3);
}

// A caller that listed itself starts the watch after its listing, with no
// snapshot to replace what it has added since.
TEST_F(WatchLoopTest, RunFromWatchesAfterTheCallersListing) {
  ASSERT_TRUE(store_->Put("ike/a", "1").ok());
  absl::StatusOr<ListResult> listed = store_->List("ike/");
  ASSERT_TRUE(listed.ok());
  ASSERT_TRUE(store_->Put("ike/b", "2").ok());
  View view;
  WatchLoop loop(store_.get(), "ike/", view.Handlers());
  std::thread run([&] { loop.RunFrom(listed->revision); });
  EXPECT_TRUE(view.WaitFor({{"ike/b", "2"}}));
  loop.Stop();
  run.join();
  EXPECT_EQ(loop.listings(), 0);
  EXPECT_EQ(view.snapshots(), 0);
}

TEST_F(WatchLoopTest, StopEndsAWaitAtOnceAndTicksRunWhileIdle) {
  std::atomic<int> ticks{0};
  WatchHandlers handlers;
  handlers.tick = [&] { ++ticks; };
  WatchLoopOptions options;
  options.wait = absl::Milliseconds(20);
  WatchLoop ticking(store_.get(), "ike/", handlers, options);
  std::thread run([&] { ticking.Run(); });
  absl::SleepFor(absl::Milliseconds(200));
  ticking.Stop();
  run.join();
  EXPECT_GE(ticks.load(), 3);

  options.wait = absl::Seconds(30);
  WatchLoop waiting(store_.get(), "ike/", {}, options);
  std::thread waiter([&] { waiting.Run(); });
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time stop = absl::Now();
  waiting.Stop();
  waiter.join();
  EXPECT_LT(absl::Now() - stop, absl::Seconds(1));
}

}  // namespace
}  // namespace vpn::store
