#include "common/store/watch_loop.h"

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "common/log/log.h"

namespace vpn::store {
namespace {

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("store");
  return *logger;
}

}  // namespace

WatchLoop::WatchLoop(Store* store, std::string prefix, WatchHandlers handlers,
                     WatchLoopOptions options)
    : store_(store),
      prefix_(std::move(prefix)),
      handlers_(std::move(handlers)),
      options_(std::move(options)) {}

void WatchLoop::Stop() {
  if (!stop_requested_.exchange(true)) stopping_.Notify();
  canceller_.Cancel();
}

absl::StatusOr<int64_t> WatchLoop::List() {
  absl::StatusOr<ListResult> listed = handlers_.list ? handlers_.list() : store_->List(prefix_);
  if (!listed.ok()) return listed.status();
  ++listings_;
  if (handlers_.snapshot) {
    absl::MutexLockMaybe lock(options_.batch_mutex);
    handlers_.snapshot(listed->kvs, listed->revision);
  }
  return listed->revision;
}

void WatchLoop::Deliver(const WatchEvent& event) {
  switch (event.type) {
    case WatchEvent::Type::kPut:
      if (handlers_.put) handlers_.put(event.kv, event.revision);
      break;
    case WatchEvent::Type::kDelete:
      if (handlers_.del) handlers_.del(event.kv, event.revision);
      break;
    case WatchEvent::Type::kResync:
      if (handlers_.snapshot) handlers_.snapshot(event.snapshot, event.revision);
      break;
  }
}

void WatchLoop::Run() { RunFrom(-1); }

void WatchLoop::RunFrom(int64_t revision) {
  bool list = revision < 0;
  bool wait = false;  // after a failure
  while (!stopping_.HasBeenNotified()) {
    if (wait && stopping_.WaitForNotificationWithTimeout(options_.retry)) return;
    if (list) {
      absl::StatusOr<int64_t> listed = List();
      if (!listed.ok()) {
        wait = true;
        Log().Warning("cannot list " + options_.what + "; retrying",
                      {{"prefix", prefix_}, {"error", listed.status().message()}});
        continue;
      }
      revision = *listed;
    }
    list = true;
    // A watch that broke: list again at once; one that did not open: wait.
    wait = !Follow(revision);
  }
}

bool WatchLoop::Follow(int64_t revision) {
  absl::StatusOr<std::unique_ptr<Watcher>> watcher = store_->Watch(prefix_, revision + 1);
  if (!watcher.ok()) {
    Log().Warning("cannot watch " + options_.what + "; retrying",
                  {{"prefix", prefix_}, {"error", watcher.status().message()}});
    return false;
  }
  canceller_.Track(watcher->get());
  absl::Cleanup untrack = [this] { canceller_.Track(nullptr); };
  absl::Time last_tick = absl::Now();
  while (!stopping_.HasBeenNotified()) {
    absl::StatusOr<WatchEvent> event = (*watcher)->Next(options_.wait);
    if (stopping_.HasBeenNotified()) return false;
    if (event.ok()) {
      absl::MutexLockMaybe lock(options_.batch_mutex);
      Deliver(*event);
      for (size_t i = 1; i < options_.max_batch; ++i) {
        absl::StatusOr<WatchEvent> more = (*watcher)->Next(absl::ZeroDuration());
        if (!more.ok()) break;
        Deliver(*more);
      }
      if (handlers_.batch_done) handlers_.batch_done();
    } else if (!absl::IsDeadlineExceeded(event.status())) {
      Log().Warning("watch of " + options_.what + " broke; listing again",
                    {{"prefix", prefix_}, {"error", event.status().message()}});
      return true;
    }
    if (handlers_.tick && absl::Now() - last_tick >= options_.wait) {
      last_tick = absl::Now();
      handlers_.tick();
    }
  }
  return false;
}

}  // namespace vpn::store
