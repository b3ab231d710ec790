#include "common/store/store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vpn::store {

bool Condition::Matches(int64_t current_version, int64_t current_mod_revision) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kMustNotExist:
      return current_version == 0;
    case Kind::kVersionEquals:
      return current_version == version;
    case Kind::kModRevisionEquals:
      return current_version != 0 && current_mod_revision == version;
  }
  return false;
}

std::string Condition::ToString() const {
  switch (kind) {
    case Kind::kAny:
      return "any version";
    case Kind::kMustNotExist:
      return "key absent";
    case Kind::kVersionEquals:
      return absl::StrCat("version ", version);
    case Kind::kModRevisionEquals:
      return absl::StrCat("last written at revision ", version);
  }
  return "?";
}

Op Op::Put(std::string key, std::string value, Condition condition,
           LeaseId lease) {
  Op op;
  op.type = Type::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.condition = condition;
  op.lease = lease;
  return op;
}

Op Op::Delete(std::string key, Condition condition) {
  Op op;
  op.type = Type::kDelete;
  op.key = std::move(key);
  op.condition = condition;
  return op;
}

Op Op::Check(std::string key, Condition condition) {
  Op op;
  op.type = Type::kCheck;
  op.key = std::move(key);
  op.condition = condition;
  return op;
}

namespace {
constexpr absl::string_view kConflictPrefix = "store conflict: ";
}  // namespace

bool IsConflict(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         absl::StartsWith(status.message(), kConflictPrefix);
}

absl::Status ConflictError(absl::string_view key, const Condition& condition,
                           int64_t found_version) {
  return absl::FailedPreconditionError(absl::StrCat(
      kConflictPrefix, "key '", key, "' expected ", condition.ToString(),
      ", found ",
      found_version == 0 ? std::string("key absent")
                         : absl::StrCat("version ", found_version)));
}

void WatchCanceller::Track(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watcher_ = watcher;
  if (cancelled_ && watcher_ != nullptr) watcher_->Cancel();
}

void WatchCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (watcher_ != nullptr) watcher_->Cancel();
}

}  // namespace vpn::store
