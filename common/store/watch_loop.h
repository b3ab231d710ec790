// The one way to follow a prefix of the store: list it, watch from the
// listing's revision + 1, and hand each change to the caller. When the watch
// breaks (the store restarted, a network error) the loop lists again at
// once, and after a failed listing or watch it waits `retry` first: a
// listing is a snapshot, so nothing that changed while the watch was down
// is missed. A resync from the store
// (history compacted) is handed over as a snapshot too.
//
//   store::WatchLoop loop(store, "ike/", handlers);
//   std::thread thread([&] { loop.Run(); });   ...   loop.Stop(); thread.join();
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/store/store.h"

namespace vpn::store {

struct WatchHandlers {
  // Every key under the prefix as of `revision`; the caller replaces its view
  // with it. From each listing and from each resync.
  std::function<void(const std::vector<KeyValue>& kvs, int64_t revision)> snapshot;
  std::function<void(const KeyValue& kv, int64_t revision)> put;
  // `kv` has the key (and mod_revision = revision) only.
  std::function<void(const KeyValue& kv, int64_t revision)> del;
  // Optional: after the events that were waiting were handed over (up to
  // `max_batch`), e.g. to publish once for many.
  std::function<void()> batch_done;
  // Optional: at least every `wait`, on the loop's thread (sweeps).
  std::function<void()> tick;
  // Optional: what a listing reads, when it is more than List(prefix)
  // (another prefix read first); its revision is where the watch starts.
  std::function<absl::StatusOr<ListResult>()> list;
};

struct WatchLoopOptions {
  absl::Duration wait = absl::Milliseconds(500);  // longest wait for an event
  absl::Duration retry = absl::Seconds(1);        // after a failed list or watch
  size_t max_batch = 1000;
  std::string what = "records";  // for log lines: "cannot watch <what>"
  // Optional: held while a snapshot, or a batch of events and batch_done,
  // is handed over, so another thread never sees half a batch applied. The
  // handlers then run with it held (tick does not).
  absl::Mutex* batch_mutex = nullptr;
};

class WatchLoop {
 public:
  WatchLoop(Store* store, std::string prefix, WatchHandlers handlers,
            WatchLoopOptions options = {});

  // Lists, watches and hands over changes until Stop().
  void Run();
  // The same for a caller that has just listed (and applied) the prefix
  // itself, as of `revision`: the first watch starts after it, unlisted, so
  // nothing the caller added to its view meanwhile is replaced.
  void RunFrom(int64_t revision);
  // Ends Run() promptly, from any thread. Idempotent.
  void Stop();

  // Listings so far (tests).
  int listings() const { return listings_.load(); }

 private:
  // Lists and hands over the snapshot; the revision to watch from.
  absl::StatusOr<int64_t> List();
  void Deliver(const WatchEvent& event);
  // Runs one watch from `revision` + 1 until it breaks (true) or cannot be
  // opened or Stop() (false).
  bool Follow(int64_t revision);

  Store* const store_;
  const std::string prefix_;
  const WatchHandlers handlers_;
  const WatchLoopOptions options_;
  std::atomic<bool> stop_requested_{false};
  absl::Notification stopping_;
  WatchCanceller canceller_;
  std::atomic<int> listings_{0};
};

}  // namespace vpn::store
