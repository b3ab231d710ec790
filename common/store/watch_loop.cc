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
  if (!stopping_.HasBeenNotified()) stopping_.Notify();
  canceller_.Cancel();
}

absl::StatusOr<int64_t> WatchLoop::List() {
  absl::StatusOr<ListResult> listed = handlers_.list ? handlers_.list() : store_->List(prefix_);
  if (!listed.ok()) return listed.status();
  ++listings_;
  if (handlers_.snapshot) handlers_.snapshot(listed->kvs, listed->revision);
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
  bool first = true;
  while (!stopping_.HasBeenNotified()) {
    if (!first && stopping_.WaitForNotificationWithTimeout(options_.retry)) return;
    if (!first || revision < 0) {
      absl::StatusOr<int64_t> listed = List();
      if (!listed.ok()) {
        first = false;
        Log().Warning("cannot list " + options_.what + "; retrying",
                      {{"prefix", prefix_}, {"error", listed.status().message()}});
        continue;
      }
      revision = *listed;
    }
    first = false;
    Follow(revision);
  }
}

void WatchLoop::Follow(int64_t revision) {
  absl::StatusOr<std::unique_ptr<Watcher>> watcher = store_->Watch(prefix_, revision + 1);
  if (!watcher.ok()) {
    Log().Warning("cannot watch " + options_.what + "; retrying",
                  {{"prefix", prefix_}, {"error", watcher.status().message()}});
    return;
  }
  canceller_.Track(watcher->get());
  absl::Cleanup untrack = [this] { canceller_.Track(nullptr); };
  absl::Time last_tick = absl::Now();
  while (!stopping_.HasBeenNotified()) {
    absl::StatusOr<WatchEvent> event = (*watcher)->Next(options_.wait);
    if (stopping_.HasBeenNotified()) return;
    if (event.ok()) {
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
      return;
    }
    if (handlers_.tick && absl::Now() - last_tick >= options_.wait) {
      last_tick = absl::Now();
      handlers_.tick();
    }
  }
}

}  // namespace vpn::store
