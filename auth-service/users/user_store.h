// The user database: one record per user under "users/<name>" in the
// versioned store, holding only the NT hash of the password, sealed with the
// credentials key. Plaintext passwords are hashed on arrival and wiped; no
// password or hash is ever logged.
//
// Users from users_file (users_file.h) are a separate in-memory snapshot,
// consulted first: a file user shadows a stored user of the same name, and
// Put/Delete refuse names the file manages (edit the file instead), so the
// file and the API never change each other's users.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "auth-service/eap/eap_method.h"
#include "common/crypto/crypto.h"
#include "common/store/sealer.h"
#include "common/store/store.h"

namespace vpn::auth {

class FileUsers;

struct UserInfo {
  std::string name;
  bool disabled = false;
  bool from_file = false;  // managed by users_file
};

class UserStore : public eap::CredentialSource {
 public:
  static constexpr char kPrefix[] = "users/";

  // `store` must outlive this object.
  UserStore(store::Store& store, std::unique_ptr<store::Sealer> sealer);

  // 1-256 bytes; no control characters, '/' or '\' (the MS-CHAPv2 domain
  // separator), no leading or trailing space.
  static absl::Status ValidateName(absl::string_view name);

  // Creates or replaces a user; the password is UTF-8, at most 256 chars.
  // kFailedPrecondition for a users_file user.
  absl::Status Put(absl::string_view name, absl::string_view password);
  absl::Status PutNtHash(absl::string_view name, crypto::ByteSpan nt_hash);
  // kNotFound when the user does not exist; kFailedPrecondition for a
  // users_file user.
  absl::Status Delete(absl::string_view name);
  // Stored and file users, sorted by name, each name once.
  absl::StatusOr<std::vector<UserInfo>> List();

  // Replaces the users_file snapshot (null: none).
  void SetFileUsers(std::shared_ptr<const FileUsers> users);

  // eap::CredentialSource.
  absl::StatusOr<crypto::SecretBytes> NtHash(absl::string_view user) override;

 private:
  static std::string Key(absl::string_view name);
  std::shared_ptr<const FileUsers> file_users() const;
  // kFailedPrecondition when users_file manages `name`.
  absl::Status CheckNotFromFile(absl::string_view name) const;

  store::Store& store_;
  const std::unique_ptr<store::Sealer> sealer_;
  mutable absl::Mutex file_mu_;
  std::shared_ptr<const FileUsers> file_users_ ABSL_GUARDED_BY(file_mu_);
};

}  // namespace vpn::auth
