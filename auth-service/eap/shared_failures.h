// Failed EAP attempts counted in the versioned store, so that every
// auth-service replica applies the same limits to a user name or client
// address (BruteForceGuard's shared mode). Without it, each replica counted
// alone and a client spread over N replicas had N times the attempts.
//
// One record per scope ("user", "address") and key, under
// "auth/failures/<scope>/<hash>": the hash is SHA-256 of the scope and key,
// so the store holds no user names or addresses in clear. Records are
// changed compare-on-version; a watch keeps every replica's view fresh, and
// Sweep() deletes records that hold nothing any more. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/store/store.h"
#include "common/store/watch_loop.h"

namespace vpn::auth::eap {

struct FailureState {
  std::vector<absl::Time> failures;  // oldest first; may include stale ones
  absl::Time locked_until = absl::InfinitePast();
};

class SharedFailures {
 public:
  // Lists the records and starts the watch that follows them. If the store
  // does not answer yet, the view starts empty and the watch thread lists
  // once it does (meanwhile Record() fails and the guard counts locally).
  // At most `max_tracked` records (user names and addresses together): past
  // it a new key's failure is not written (kResourceExhausted; the guard
  // counts it locally), so guessing from many addresses cannot grow the
  // store without bound.
  static std::unique_ptr<SharedFailures> Start(store::Store* store, size_t max_tracked);
  ~SharedFailures();

  // The last seen state of (scope, key), written by any replica, as of
  // `now`: failures within `window`, and a lockout only if it still runs.
  FailureState Get(absl::string_view scope, absl::string_view key, absl::Time now,
                   absl::Duration window) const;

  // A finished attempt, compare-on-version. A failure is appended (failures
  // older than `window` dropped); the one that reaches `max_failures` locks
  // the key until now + `lockout` (failures cleared) and sets `*locked`. A
  // failure while locked, or a success, changes nothing unless `reset`
  // (a user's success clears its failures). Returns the state after it.
  struct Limits {
    uint64_t max_failures;
    absl::Duration window;
    absl::Duration lockout;
  };
  absl::StatusOr<FailureState> Record(absl::string_view scope, absl::string_view key,
                                      bool failure, bool reset, absl::Time now,
                                      const Limits& limits, bool* locked);

  // Deletes records with no failure within `window` and no lockout at `now`
  // (whichever replica sees them first; a record changed meanwhile stays).
  void Sweep(absl::Time now, absl::Duration window);
  // Keys of `scope` locked at `now`, as seen here.
  size_t Locked(absl::string_view scope, absl::Time now) const;

  static std::string KeyFor(absl::string_view scope, absl::string_view key);

 private:
  struct Cached {
    FailureState state;
    int64_t mod_revision = 0;
  };
  SharedFailures(store::Store* store, size_t max_tracked)
      : store_(store), max_tracked_(max_tracked) {}
  bool RoomForNewKey() const ABSL_LOCKS_EXCLUDED(mu_);
  void Apply(const store::KeyValue& kv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The cached state under a store key (empty if none).
  FailureState CachedState(const std::string& store_key) const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the view with the store's records; returns their revision.
  absl::StatusOr<int64_t> List() ABSL_LOCKS_EXCLUDED(mu_);
  void Replace(const std::vector<store::KeyValue>& kvs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  store::Store* const store_;
  const size_t max_tracked_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<store::WatchLoop> loop_;
  std::thread watcher_;
};

}  // namespace vpn::auth::eap
