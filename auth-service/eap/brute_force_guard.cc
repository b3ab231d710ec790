#include "auth-service/eap/brute_force_guard.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "auth-service/eap/eap_session.h"

namespace vpn::auth::eap {
namespace {

constexpr size_t kMaxUserKeySize = 256;  // longer names are invalid anyway

constexpr char kUser[] = "user";
constexpr char kAddress[] = "address";

std::string UserKey(absl::string_view user) {
  return std::string(user.substr(0, kMaxUserKeySize));
}

std::string UntilForLog(absl::Time until) {
  if (until == absl::InfinitePast()) return "attempts in flight";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", until, absl::UTCTimeZone());
}

}  // namespace

BruteForceGuard::BruteForceGuard(BruteForceOptions options,
                                 BruteForceObserver observer)
    : options_(std::move(options)), observer_(std::move(observer)) {
  absl::MutexLock lock(&mu_);
  users_.scope = kUser;
  users_.max_failures = options_.max_failures_per_user;
  addresses_.scope = kAddress;
  addresses_.max_failures = options_.max_failures_per_address;
}

absl::Time BruteForceGuard::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

BruteForceGuard::Entry* BruteForceGuard::Find(Table& table,
                                              const std::string& key,
                                              absl::Time now) {
  auto it = table.entries.find(key);
  if (it == table.entries.end()) return nullptr;
  Entry& entry = it->second;
  std::vector<absl::Time>& failures = entry.failures;
  size_t stale = 0;
  while (stale < failures.size() &&
         failures[stale] <= now - options_.failure_window) {
    ++stale;
  }
  failures.erase(failures.begin(), failures.begin() + stale);
  if (entry.locked_until != absl::InfinitePast() && entry.locked_until <= now) {
    entry.locked_until = absl::InfinitePast();  // the lockout is over
    entry.refused = 0;
  }
  return &entry;
}

BruteForceGuard::Entry& BruteForceGuard::FindOrAdd(Table& table,
                                                   const std::string& key) {
  auto it = table.entries.find(key);
  if (it != table.entries.end()) {
    table.lru.splice(table.lru.end(), table.lru, it->second.lru);
    return it->second;
  }
  if (table.entries.size() >= options_.max_tracked && !table.lru.empty()) {
    table.entries.erase(table.lru.front());
    table.lru.pop_front();
  }
  table.lru.push_back(key);
  Entry& entry = table.entries[key];
  entry.lru = std::prev(table.lru.end());
  return entry;
}

void BruteForceGuard::Erase(Table& table, const std::string& key) {
  auto it = table.entries.find(key);
  if (it == table.entries.end()) return;
  table.lru.erase(it->second.lru);
  table.entries.erase(it);
}

bool BruteForceGuard::Refuses(Table& table, const std::string& key,
                              absl::Time now, Event* event) {
  Entry* entry = Find(table, key, now);
  size_t failures = entry != nullptr ? entry->failures.size() : 0;
  const uint64_t pending = entry != nullptr ? entry->pending : 0;
  absl::Time locked_until =
      entry != nullptr ? entry->locked_until : absl::InfinitePast();
  if (options_.shared != nullptr) {
    const FailureState shared =
        options_.shared->Get(table.scope, key, now, options_.failure_window);
    failures += shared.failures.size();
    locked_until = std::max(locked_until, shared.locked_until);
  }
  const bool locked = locked_until > now;
  if (!locked && failures + pending < table.max_failures) return false;
  if (entry == nullptr) entry = &FindOrAdd(table, key);
  ++entry->refused;
  table.lru.splice(table.lru.end(), table.lru, entry->lru);
  *event = {table.scope, locked ? table.max_failures : failures,
            entry->refused, locked ? locked_until : absl::InfinitePast()};
  return true;
}

bool BruteForceGuard::Record(Table& table, const std::string& key,
                             Outcome outcome, absl::Time now, Event* event) {
  Entry* entry = Find(table, key, now);
  if (entry == nullptr) {
    if (outcome != Outcome::kFailure) return false;
    entry = &FindOrAdd(table, key);  // forgotten while in flight
  }
  if (entry->pending > 0) --entry->pending;
  if (outcome == Outcome::kFailure && entry->locked_until <= now) {
    entry->failures.push_back(now);
    table.lru.splice(table.lru.end(), table.lru, entry->lru);
    if (entry->failures.size() >= table.max_failures) {
      entry->locked_until = now + options_.lockout;
      entry->refused = 0;
      *event = {table.scope, entry->failures.size(), 0, entry->locked_until};
      entry->failures.clear();
      return true;
    }
    return false;
  }
  const bool reset = outcome == Outcome::kSuccess && &table == &users_;
  if (reset || (entry->failures.empty() && entry->pending == 0 &&
                entry->locked_until <= now)) {
    Erase(table, key);
  }
  return false;
}

bool BruteForceGuard::RecordShared(Table& table, const std::string& key,
                                   Outcome outcome, absl::Time now,
                                   Event* event) {
  bool locked = false;
  absl::StatusOr<FailureState> shared = options_.shared->Record(
      table.scope, key, outcome == Outcome::kFailure,
      /*reset=*/outcome == Outcome::kSuccess && &table == &users_, now,
      {table.max_failures, options_.failure_window, options_.lockout}, &locked);
  absl::MutexLock lock(&mu_);
  if (!shared.ok()) {
    // A full shared table (many addresses guessing) is expected under an
    // attack: counted here without a line per attempt.
    if (!absl::IsResourceExhausted(shared.status())) {
      log_.Warning("cannot count the attempt in the store; counting it here only",
                   {{"scope", table.scope}, {"error", shared.status().message()}});
    }
    return Record(table, key, outcome, now, event);
  }
  if (Entry* entry = Find(table, key, now); entry != nullptr) {
    if (entry->pending > 0) --entry->pending;
    if (entry->pending == 0 && entry->failures.empty() &&
        entry->locked_until <= now) {
      Erase(table, key);
    }
  }
  if (locked) *event = {table.scope, table.max_failures, 0, shared->locked_until};
  return locked;
}

bool BruteForceGuard::Begin(absl::string_view user, ByteSpan address) {
  const absl::Time now = Now();
  const std::string user_key = UserKey(user);
  const std::string address_key = ClientAddressKey(address);
  const bool by_user = options_.max_failures_per_user > 0 && !user_key.empty();
  const bool by_address =
      options_.max_failures_per_address > 0 && !address_key.empty();
  Event event;
  bool refused;
  {
    absl::MutexLock lock(&mu_);
    refused = (by_user && Refuses(users_, user_key, now, &event)) ||
              (by_address && Refuses(addresses_, address_key, now, &event));
    if (!refused) {
      if (by_user) ++FindOrAdd(users_, user_key).pending;
      if (by_address) ++FindOrAdd(addresses_, address_key).pending;
    }
  }
  if (refused) {
    Log(log_, /*refusal=*/true, event, user, address);
    if (observer_.on_refused) observer_.on_refused(event.scope);
  }
  return !refused;
}

void BruteForceGuard::Finish(absl::string_view user, ByteSpan address,
                             Outcome outcome) {
  const absl::Time now = Now();
  const std::string user_key = UserKey(user);
  const std::string address_key = ClientAddressKey(address);
  const bool by_user = options_.max_failures_per_user > 0 && !user_key.empty();
  const bool by_address =
      options_.max_failures_per_address > 0 && !address_key.empty();
  Event events[2];
  size_t lockouts = 0;
  if (options_.shared != nullptr) {
    // Store writes, outside the lock.
    if (by_user && RecordShared(users_, user_key, outcome, now, &events[lockouts])) {
      ++lockouts;
    }
    if (by_address &&
        RecordShared(addresses_, address_key, outcome, now, &events[lockouts])) {
      ++lockouts;
    }
  } else {
    absl::MutexLock lock(&mu_);
    if (by_user && Record(users_, user_key, outcome, now, &events[lockouts])) {
      ++lockouts;
    }
    if (by_address &&
        Record(addresses_, address_key, outcome, now, &events[lockouts])) {
      ++lockouts;
    }
  }
  for (size_t i = 0; i < lockouts; ++i) {
    Log(log_, /*refusal=*/false, events[i], user, address);
    if (observer_.on_lockout) observer_.on_lockout(events[i].scope);
  }
}

void BruteForceGuard::Log(const log::Logger& log, bool refusal,
                          const Event& event, absl::string_view user,
                          ByteSpan address) const {
  if (refusal) {
    log.Warning("EAP attempt refused: too many failed attempts",
                {{"scope", event.scope},
                 {"user", Printable(user)},
                 {"address", AddressForLog(address)},
                 {"failures", event.failures},
                 {"refused", event.refused},
                 {"locked_until", UntilForLog(event.until)}});
  } else {
    log.Warning("brute-force lockout: further attempts are refused",
                {{"scope", event.scope},
                 {"user", Printable(user)},
                 {"address", AddressForLog(address)},
                 {"failures", event.failures},
                 {"window_seconds",
                  absl::ToInt64Seconds(options_.failure_window)},
                 {"locked_until", UntilForLog(event.until)}});
  }
}

void BruteForceGuard::Sweep() {
  const absl::Time now = Now();
  size_t locked[2] = {0, 0};
  {
    absl::MutexLock lock(&mu_);
    Table* tables[2] = {&users_, &addresses_};
    for (size_t i = 0; i < 2; ++i) {
      Table& table = *tables[i];
      for (auto it = table.entries.begin(); it != table.entries.end();) {
        Entry& entry = *Find(table, it->first, now);
        if (entry.locked_until > now) ++locked[i];
        if (entry.failures.empty() && entry.pending == 0 &&
            entry.locked_until <= now) {
          table.lru.erase(entry.lru);
          table.entries.erase(it++);
        } else {
          ++it;
        }
      }
    }
  }
  if (options_.shared != nullptr) {
    options_.shared->Sweep(now, options_.failure_window);
    locked[0] += options_.shared->Locked(kUser, now);
    locked[1] += options_.shared->Locked(kAddress, now);
  }
  if (observer_.on_locked) {
    observer_.on_locked(kUser, locked[0]);
    observer_.on_locked(kAddress, locked[1]);
  }
}

size_t BruteForceGuard::Locked(const Table& table, absl::Time now) {
  size_t locked = 0;
  for (const auto& [key, entry] : table.entries) {
    if (entry.locked_until > now) ++locked;
  }
  return locked;
}

size_t BruteForceGuard::tracked_users() const {
  absl::MutexLock lock(&mu_);
  return users_.entries.size();
}

size_t BruteForceGuard::tracked_addresses() const {
  absl::MutexLock lock(&mu_);
  return addresses_.entries.size();
}

size_t BruteForceGuard::locked_users() const {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  return Locked(users_, now);
}

size_t BruteForceGuard::locked_addresses() const {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  return Locked(addresses_, now);
}

}  // namespace vpn::auth::eap
