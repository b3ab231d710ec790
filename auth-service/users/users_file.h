// users_file: users an operator gives in a YAML file, next to the ones the
// management API keeps in the store.
//
//   users:
//     - name: alice
//       nt_hash: 44EBBA8D5312B8D611474411F56989AE  # MD4 of UTF-16LE password
//
// NT hashes only: a `password` key is refused. The file must be mode 0600
// or tighter (an NT hash is as good as the password to MS-CHAPv2). Its users
// live in memory only, in a snapshot that UserStore consults before the
// store; a reload swaps the whole snapshot, so users added through the API
// are never touched.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "common/log/log.h"

namespace vpn::auth {

// One parsed users_file. Immutable.
class FileUsers {
 public:
  // Errors give the line and the field: "line 4: users[1].nt_hash: ...".
  static absl::StatusOr<std::shared_ptr<const FileUsers>> Parse(
      absl::string_view yaml);
  // The mode check (secret_file.h), then Parse; errors start with the path.
  static absl::StatusOr<std::shared_ptr<const FileUsers>> Load(
      const std::string& path);

  // The 16-byte NT hash, or null.
  const crypto::SecretBytes* Find(absl::string_view name) const;
  std::vector<std::string> Names() const;  // sorted
  size_t size() const { return users_.size(); }

  // What changed from `before` to `after`.
  struct Diff {
    size_t added = 0;
    size_t updated = 0;  // another NT hash
    size_t removed = 0;
    bool empty() const { return added + updated + removed == 0; }
  };
  static Diff Compare(const FileUsers& before, const FileUsers& after);

 private:
  absl::flat_hash_map<std::string, crypto::SecretBytes> users_;
};

// Re-reads users_file when it changes. Poll() (the component calls it every
// 2 s) stats the file and reloads it when its inode, size or mtime changed,
// or when it was modified within the last 2 s (a write may still have been
// in progress). A good file replaces the users through `apply` (only when
// something changed); a bad or missing one keeps the previous users and is
// logged once as an error.
class UsersFileWatcher {
 public:
  struct Observer {
    // Per reload that changed the users (true) or was refused (false).
    std::function<void(bool ok)> on_reload;
    std::function<void(size_t users)> on_users;  // after each change
  };
  using Apply = std::function<void(std::shared_ptr<const FileUsers>)>;

  UsersFileWatcher(std::string path, Apply apply, Observer observer = {},
                   std::function<absl::Time()> clock = {});

  // The first load, at start; the error is not logged.
  absl::Status Load();
  // Reloads if the file changed.
  void Poll();

 private:
  struct Stamp {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const Stamp& o) const {
      return exists == o.exists && dev == o.dev && ino == o.ino &&
             size == o.size && mtime_ns == o.mtime_ns;
    }
  };

  Stamp StatFile() const;
  absl::Time Now() const;
  // Reads and applies the file; remembers the stamp.
  absl::Status Reload(const Stamp& stamp);

  const std::string path_;
  const Apply apply_;
  const Observer observer_;
  const std::function<absl::Time()> clock_;
  const log::Logger log_{"auth-service"};

  // Poll() runs on one thread; no lock needed.
  std::shared_ptr<const FileUsers> current_;
  Stamp loaded_;          // stamp of the last read
  bool recheck_ = false;  // re-read even if the stamp is unchanged
  std::string last_error_;  // the last reload error, logged once
  Stamp error_stamp_;       // of the file that gave it
};

}  // namespace vpn::auth
