// Brute-force protection for password methods (an eap::AttemptLimiter).
//
// Failed attempts are counted per user name (without its domain) and per
// client address, in a sliding `failure_window`. The failure that reaches a
// limit locks that user or address for `lockout`: further attempts are
// refused (the method fails them like a wrong password, without any crypto)
// and a warning is logged for each. Refused attempts are not counted, so a
// lockout ends on time. A success resets the user's count (not the
// address's: many users may share a NAT address, an attacker among them).
//
// Unknown users are counted like known ones, so lockouts reveal nothing
// about which users exist. Addresses are IPv4 addresses (IPv4-mapped IPv6
// included) and IPv6 /64 prefixes, the smallest block a client usually
// controls. Attempts in flight count against the limit, so parallel sessions
// cannot outrun it.
//
// Memory is bounded: at most `max_tracked` user names and as many addresses
// are tracked; the least recently attempted one is forgotten first. Entries
// with neither recent failures nor a lockout are dropped by Sweep().
//
// With `shared` set (auth-service always sets it), failures and lockouts
// live in the store, so every replica applies the same limits; attempts in
// flight stay per replica. If the store cannot be written, the failure is
// counted here instead (and a warning logged).
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth-service/eap/eap_method.h"
#include "auth-service/eap/shared_failures.h"
#include "common/log/log.h"

namespace vpn::auth::eap {

struct BruteForceOptions {
  uint64_t max_failures_per_user = 5;      // 0: no per-user limit
  uint64_t max_failures_per_address = 20;  // 0: no per-address limit
  absl::Duration failure_window = absl::Minutes(15);
  absl::Duration lockout = absl::Minutes(15);
  size_t max_tracked = 100000;        // user names, and addresses, each
  std::function<absl::Time()> clock;  // test hook; absl::Now when unset
  SharedFailures* shared = nullptr;   // counts of every replica; outlives the guard
};

// Metric hooks (optional). `scope` is "user" or "address".
struct BruteForceObserver {
  std::function<void(absl::string_view scope)> on_refused;  // per refusal
  std::function<void(absl::string_view scope)> on_lockout;  // per lockout
  // From Sweep(): the number of user names or addresses locked now.
  std::function<void(absl::string_view scope, size_t locked)> on_locked;
};

class BruteForceGuard : public AttemptLimiter {
 public:
  explicit BruteForceGuard(BruteForceOptions options,
                           BruteForceObserver observer = {});

  // AttemptLimiter.
  bool Begin(absl::string_view user, ByteSpan address) override;
  void Finish(absl::string_view user, ByteSpan address,
              Outcome outcome) override;

  // Drops entries with no recent failure and no lockout, and reports the
  // locked counts. Call it every few seconds.
  void Sweep();

  // For tests.
  size_t tracked_users() const;
  size_t tracked_addresses() const;
  size_t locked_users() const;
  size_t locked_addresses() const;

 private:
  struct Entry {
    std::vector<absl::Time> failures;  // within the window, oldest first
    uint64_t pending = 0;              // attempts begun, not finished
    absl::Time locked_until = absl::InfinitePast();
    uint64_t refused = 0;                // during the current lockout
    std::list<std::string>::iterator lru;  // in Table::lru
  };
  struct Table {
    const char* scope;
    uint64_t max_failures;
    absl::flat_hash_map<std::string, Entry> entries;
    std::list<std::string> lru;  // least recently attempted first
  };
  // What a refusal or lockout logs, gathered under the lock.
  struct Event {
    const char* scope;
    uint64_t failures;
    uint64_t refused;
    absl::Time until;
  };

  absl::Time Now() const;
  Entry* Find(Table& table, const std::string& key, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entry& FindOrAdd(Table& table, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Erase(Table& table, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Refuses when locked or when failures plus attempts in flight reached
  // the limit; fills `event` then.
  bool Refuses(Table& table, const std::string& key, absl::Time now,
               Event* event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a finished attempt; true (and `event`) when it locked the key.
  bool Record(Table& table, const std::string& key, Outcome outcome,
              absl::Time now, Event* event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Record() through the shared store (or here if it fails).
  bool RecordShared(Table& table, const std::string& key, Outcome outcome,
                    absl::Time now, Event* event) ABSL_LOCKS_EXCLUDED(mu_);
  void Log(const log::Logger& log, bool refusal, const Event& event,
           absl::string_view user, ByteSpan address) const;
  static size_t Locked(const Table& table, absl::Time now);

  const BruteForceOptions options_;
  const BruteForceObserver observer_;
  const log::Logger log_{"auth-service"};

  mutable absl::Mutex mu_;
  Table users_ ABSL_GUARDED_BY(mu_);
  Table addresses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vpn::auth::eap
