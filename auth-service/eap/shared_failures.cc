#include "auth-service/eap/shared_failures.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth-service/eap/failure_record.pb.h"
#include "common/crypto/crypto.h"
#include "common/log/log.h"

namespace vpn::auth::eap {
namespace {

constexpr char kPrefix[] = "auth/failures/";
constexpr int kAttempts = 8;  // compare-on-version retries of one Record

const log::Logger& Log() {
  static const log::Logger* log = new log::Logger("auth-service");
  return *log;
}

FailureState FromRecord(const FailureRecord& record) {
  FailureState state;
  for (int64_t ms : record.failures_unix_ms()) state.failures.push_back(absl::FromUnixMillis(ms));
  if (record.locked_until_unix_ms() != 0) {
    state.locked_until = absl::FromUnixMillis(record.locked_until_unix_ms());
  }
  return state;
}

std::string ToValue(const FailureState& state) {
  FailureRecord record;
  for (absl::Time t : state.failures) record.add_failures_unix_ms(absl::ToUnixMillis(t));
  if (state.locked_until != absl::InfinitePast()) {
    record.set_locked_until_unix_ms(absl::ToUnixMillis(state.locked_until));
  }
  return record.SerializeAsString();
}

void DropStale(FailureState& state, absl::Time now, absl::Duration window) {
  auto fresh = std::find_if(state.failures.begin(), state.failures.end(),
                            [&](absl::Time t) { return t > now - window; });
  state.failures.erase(state.failures.begin(), fresh);
  if (state.locked_until <= now) state.locked_until = absl::InfinitePast();
}

}  // namespace

std::string SharedFailures::KeyFor(absl::string_view scope, absl::string_view key) {
  const uint8_t zero = 0;
  const crypto::Bytes digest = crypto::GetProvider().Hash(
      crypto::HashAlgorithm::kSha256,
      {crypto::ByteSpan(reinterpret_cast<const uint8_t*>(scope.data()), scope.size()),
       crypto::ByteSpan(&zero, 1),
       crypto::ByteSpan(reinterpret_cast<const uint8_t*>(key.data()), key.size())});
  const std::string hex = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
  return absl::StrCat(kPrefix, scope, "/", hex.substr(0, 32));
}

std::unique_ptr<SharedFailures> SharedFailures::Start(store::Store* store, size_t max_tracked) {
  std::unique_ptr<SharedFailures> shared(new SharedFailures(store, max_tracked));
  SharedFailures* self = shared.get();
  // The counts before the first attempt, if the store answers now; the
  // loop watches from there, or lists (and keeps trying) on its own.
  absl::StatusOr<int64_t> listed = self->List();
  if (!listed.ok()) {
    Log().Warning("cannot read the shared failure counts yet; counting here until the store answers",
                  {{"error", listed.status().message()}});
  }
  const int64_t from = listed.ok() ? *listed : -1;
  store::WatchHandlers handlers;
  handlers.snapshot = [self](const std::vector<store::KeyValue>& kvs, int64_t) {
    absl::MutexLock lock(&self->mu_);
    self->Replace(kvs);
  };
  handlers.put = [self](const store::KeyValue& kv, int64_t) {
    absl::MutexLock lock(&self->mu_);
    self->Apply(kv);
  };
  handlers.del = [self](const store::KeyValue& kv, int64_t revision) {
    absl::MutexLock lock(&self->mu_);
    if (auto it = self->cache_.find(kv.key);
        it != self->cache_.end() && it->second.mod_revision <= revision) {
      self->cache_.erase(it);
    }
  };
  store::WatchLoopOptions options;
  options.what = "shared failure counts";
  shared->loop_ = std::make_unique<store::WatchLoop>(store, kPrefix, std::move(handlers), options);
  shared->watcher_ = std::thread([self, from] {
    log::SetThreadName("auth-failures");
    self->loop_->RunFrom(from);
  });
  return shared;
}

absl::StatusOr<int64_t> SharedFailures::List() {
  absl::StatusOr<store::ListResult> listed = store_->List(kPrefix);
  if (!listed.ok()) return listed.status();
  absl::MutexLock lock(&mu_);
  Replace(listed->kvs);
  return listed->revision;
}

void SharedFailures::Replace(const std::vector<store::KeyValue>& kvs) {
  cache_.clear();
  for (const store::KeyValue& kv : kvs) Apply(kv);
}

SharedFailures::~SharedFailures() {
  if (loop_ != nullptr) loop_->Stop();
  if (watcher_.joinable()) watcher_.join();
}

void SharedFailures::Apply(const store::KeyValue& kv) {
  FailureRecord record;
  if (!record.ParseFromString(kv.value)) return;
  Cached& cached = cache_[kv.key];
  if (kv.mod_revision < cached.mod_revision) return;  // older than what we have
  cached = {FromRecord(record), kv.mod_revision};
}

FailureState SharedFailures::CachedState(const std::string& store_key) const {
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(store_key);
  return it == cache_.end() ? FailureState{} : it->second.state;
}

FailureState SharedFailures::Get(absl::string_view scope, absl::string_view key, absl::Time now,
                                 absl::Duration window) const {
  FailureState state = CachedState(KeyFor(scope, key));
  DropStale(state, now, window);
  return state;
}

absl::StatusOr<FailureState> SharedFailures::Record(absl::string_view scope,
                                                    absl::string_view key, bool failure,
                                                    bool reset, absl::Time now,
                                                    const Limits& limits, bool* locked) {
  *locked = false;
  const std::string store_key = KeyFor(scope, key);
  if (!failure && !reset) return CachedState(store_key);  // nothing to change: no store access
  absl::Status status;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    FailureState state;
    int64_t mod_revision = 0;  // 0: no record
    absl::StatusOr<store::KeyValue> stored = store_->Get(store_key);
    if (stored.ok()) {
      FailureRecord record;
      if (record.ParseFromString(stored->value)) state = FromRecord(record);
      mod_revision = stored->mod_revision;
    } else if (!absl::IsNotFound(stored.status())) {
      return stored.status();
    }
    DropStale(state, now, limits.window);
    bool changed = false;
    if (failure && state.locked_until <= now) {
      state.failures.push_back(now);
      changed = true;
      if (limits.max_failures > 0 && state.failures.size() >= limits.max_failures) {
        state.locked_until = now + limits.lockout;
        state.failures.clear();
        *locked = true;
      }
    } else if (!failure && reset && !state.failures.empty()) {
      state.failures.clear();
      changed = true;
    }
    if (!changed) return state;
    const bool empty = state.failures.empty() && state.locked_until <= now;
    if (!empty && mod_revision == 0 && !RoomForNewKey()) {
      return absl::ResourceExhaustedError("too many user names and addresses tracked");
    }
    // By mod revision, not version: a record swept and created again starts
    // at version 1 again and must not be overwritten from an old read.
    const store::Condition same = mod_revision == 0
                                      ? store::Condition::CreateOnly()
                                      : store::Condition::ModRevisionIs(mod_revision);
    absl::StatusOr<store::WriteResult> written =
        empty ? (mod_revision == 0 ? absl::StatusOr<store::WriteResult>(store::WriteResult{})
                                   : store_->Delete(store_key, same))
              : store_->Put(store_key, ToValue(state), {same});
    if (written.ok()) {
      absl::MutexLock lock(&mu_);
      if (empty) {
        cache_.erase(store_key);
      } else {
        Cached& cached = cache_[store_key];
        if (written->revision >= cached.mod_revision) {
          cached = {state, written->revision};
        }
      }
      return state;
    }
    status = written.status();
    if (!store::IsConflict(status) && !absl::IsNotFound(status)) return status;
    *locked = false;  // another replica wrote first: again from its record
  }
  return status;
}

void SharedFailures::Sweep(absl::Time now, absl::Duration window) {
  std::vector<std::pair<std::string, int64_t>> idle;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, cached] : cache_) {
      FailureState state = cached.state;
      DropStale(state, now, window);
      if (state.failures.empty() && state.locked_until == absl::InfinitePast()) {
        idle.emplace_back(key, cached.mod_revision);
      }
    }
  }
  for (const auto& [key, mod_revision] : idle) {
    // Changed since (a new failure): kept. Gone already: fine.
    (void)store_->Delete(key, store::Condition::ModRevisionIs(mod_revision));
  }
}

bool SharedFailures::RoomForNewKey() const {
  absl::MutexLock lock(&mu_);
  return cache_.size() < max_tracked_;
}

size_t SharedFailures::Locked(absl::string_view scope, absl::Time now) const {
  const std::string prefix = absl::StrCat(kPrefix, scope, "/");
  size_t locked = 0;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, cached] : cache_) {
    if (absl::StartsWith(key, prefix) && cached.state.locked_until > now) ++locked;
  }
  return locked;
}

}  // namespace vpn::auth::eap
