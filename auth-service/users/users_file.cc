#include "auth-service/users/users_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "auth-service/secret_file.h"
#include "auth-service/users/user_store.h"
#include "yaml-cpp/yaml.h"

namespace vpn::auth {
namespace {

constexpr size_t kNtHashHexSize = 32;
constexpr absl::Duration kSettle = absl::Seconds(2);

int Line(const YAML::Node& node) { return node.Mark().line + 1; }

absl::Status Error(const YAML::Node& node, absl::string_view field,
                   absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("line ", Line(node), ": ", field, ": ", problem));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}

// 32 hex digits to 16 bytes; false when `hex` is anything else.
bool DecodeNtHash(const std::string& hex, crypto::SecretBytes* out) {
  if (hex.size() != kNtHashHexSize) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  crypto::SecretBytes hash(kNtHashHexSize / 2);
  for (size_t i = 0; i < hash.size(); ++i) {
    hash.mutable_span()[i] =
        static_cast<uint8_t>(HexValue(hex[2 * i]) << 4 | HexValue(hex[2 * i + 1]));
  }
  *out = std::move(hash);
  return true;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const FileUsers>> FileUsers::Parse(
    absl::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", e.mark.line + 1, ": ", e.msg));
  }
  // An empty file is an error, not "no users": a file being rewritten in
  // place reads empty for a moment.
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        "must be a mapping with a 'users' list (users: [] for none)");
  }
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key != "users") {
      return Error(kv.first, key, "unknown field (expected 'users')");
    }
  }
  const YAML::Node& const_root = root;  // const operator[] never inserts
  const YAML::Node list = const_root["users"];
  if (!list.IsSequence()) {
    return Error(list, "users",
                 "must be a list of {name, nt_hash} (users: [] for none)");
  }
  auto users = std::shared_ptr<FileUsers>(new FileUsers());
  absl::flat_hash_map<std::string, int> lines;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& const_list = list;
    const YAML::Node entry = const_list[i];
    const std::string at = absl::StrCat("users[", i, "]");
    if (!entry.IsMap()) {
      return Error(entry, at, "must be a mapping with name and nt_hash");
    }
    for (const auto& kv : entry) {
      const std::string key = kv.first.Scalar();
      if (key == "password") {
        return Error(kv.first, absl::StrCat(at, ".password"),
                     "plaintext passwords are not accepted; give nt_hash, the "
                     "MD4 of the UTF-16LE password (see README)");
      }
      if (key != "name" && key != "nt_hash") {
        return Error(kv.first, absl::StrCat(at, ".", key),
                     "unknown field (expected name and nt_hash)");
      }
    }
    const YAML::Node name = entry["name"];
    const YAML::Node nt_hash = entry["nt_hash"];
    if (!name.IsDefined() || !name.IsScalar()) {
      return Error(name.IsDefined() ? name : entry, absl::StrCat(at, ".name"),
                   "required, a string");
    }
    if (absl::Status valid = UserStore::ValidateName(name.Scalar());
        !valid.ok()) {
      return Error(name, absl::StrCat(at, ".name"), valid.message());
    }
    if (!nt_hash.IsDefined() || !nt_hash.IsScalar()) {
      return Error(nt_hash.IsDefined() ? nt_hash : entry,
                   absl::StrCat(at, ".nt_hash"), "required, 32 hex digits");
    }
    crypto::SecretBytes hash;
    if (!DecodeNtHash(nt_hash.Scalar(), &hash)) {
      return Error(nt_hash, absl::StrCat(at, ".nt_hash"),
                   "must be 32 hex digits (the MD4 of the UTF-16LE password)");
    }
    auto [it, added] = lines.emplace(name.Scalar(), Line(name));
    if (!added) {
      return Error(name, absl::StrCat(at, ".name"),
                   absl::StrCat("'", name.Scalar(), "' is already on line ",
                                it->second));
    }
    users->users_.emplace(name.Scalar(), std::move(hash));
  }
  return std::shared_ptr<const FileUsers>(std::move(users));
}

absl::StatusOr<std::shared_ptr<const FileUsers>> FileUsers::Load(
    const std::string& path) {
  absl::StatusOr<std::string> text = ReadSecretFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::shared_ptr<const FileUsers>> users = Parse(*text);
  crypto::SecureZero(text->data(), text->size());
  if (!users.ok()) {
    return absl::Status(users.status().code(),
                        absl::StrCat(path, ": ", users.status().message()));
  }
  return users;
}

const crypto::SecretBytes* FileUsers::Find(absl::string_view name) const {
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : &it->second;
}

std::vector<std::string> FileUsers::Names() const {
  std::vector<std::string> names;
  names.reserve(users_.size());
  for (const auto& [name, hash] : users_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

FileUsers::Diff FileUsers::Compare(const FileUsers& before,
                                   const FileUsers& after) {
  Diff diff;
  for (const auto& [name, hash] : after.users_) {
    const crypto::SecretBytes* old = before.Find(name);
    if (old == nullptr) {
      ++diff.added;
    } else if (!crypto::ConstantTimeEquals(old->span(), hash.span())) {
      ++diff.updated;
    }
  }
  for (const auto& [name, hash] : before.users_) {
    if (after.Find(name) == nullptr) ++diff.removed;
  }
  return diff;
}

UsersFileWatcher::UsersFileWatcher(std::string path, Apply apply,
                                   Observer observer,
                                   std::function<absl::Time()> clock)
    : path_(std::move(path)),
      apply_(std::move(apply)),
      observer_(std::move(observer)),
      clock_(std::move(clock)) {}

absl::Time UsersFileWatcher::Now() const {
  return clock_ ? clock_() : absl::Now();
}

UsersFileWatcher::Stamp UsersFileWatcher::StatFile() const {
  Stamp stamp;
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) return stamp;
  stamp.exists = true;
  stamp.dev = st.st_dev;
  stamp.ino = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                   st.st_mtim.tv_nsec;
  return stamp;
}

absl::Status UsersFileWatcher::Reload(const Stamp& stamp) {
  loaded_ = stamp;
  recheck_ = stamp.exists &&
             Now() - absl::FromUnixNanos(stamp.mtime_ns) < kSettle;
  absl::StatusOr<std::shared_ptr<const FileUsers>> users =
      FileUsers::Load(path_);
  if (!users.ok()) return users.status();
  if (current_ != nullptr) {
    const FileUsers::Diff diff = FileUsers::Compare(*current_, **users);
    if (diff.empty()) return absl::OkStatus();  // e.g. touched, or rechecked
    log_.Info("users_file reloaded",
              {{"path", path_},
               {"users", (*users)->size()},
               {"added", diff.added},
               {"updated", diff.updated},
               {"removed", diff.removed}});
  } else {
    log_.Info("users_file loaded", {{"path", path_}, {"users", (*users)->size()}});
  }
  current_ = *users;
  apply_(current_);
  if (observer_.on_users) observer_.on_users(current_->size());
  return absl::OkStatus();
}

absl::Status UsersFileWatcher::Load() { return Reload(StatFile()); }

void UsersFileWatcher::Poll() {
  const Stamp stamp = StatFile();
  if (stamp == loaded_ && !recheck_) return;
  const std::shared_ptr<const FileUsers> previous = current_;
  const size_t before = previous != nullptr ? previous->size() : 0;
  absl::Status reloaded = Reload(stamp);
  if (!reloaded.ok()) {
    // Once per version of the file: a recheck of it stays quiet.
    const std::string error(reloaded.message());
    if (error != last_error_ || !(stamp == error_stamp_)) {
      last_error_ = error;
      error_stamp_ = stamp;
      log_.Error("users_file reload failed; keeping the previous users",
                 {{"field", "users_file"},
                  {"error", error},
                  {"users", before}});
      if (observer_.on_reload) observer_.on_reload(false);
    }
    return;
  }
  last_error_.clear();
  if (current_ != previous && observer_.on_reload) observer_.on_reload(true);
}

}  // namespace vpn::auth
