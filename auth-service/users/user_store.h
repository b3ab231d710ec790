// The user database: one record per user under "users/<name>" in the
// versioned store, holding only the NT hash of the password, sealed with the
// credentials key. Plaintext passwords are hashed on arrival and wiped; no
// password or hash is ever logged.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "auth-service/eap/eap_method.h"
#include "common/crypto/crypto.h"
#include "common/store/sealer.h"
#include "common/store/store.h"

namespace vpn::auth {

struct UserInfo {
  std::string name;
  bool disabled = false;
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
  absl::Status Put(absl::string_view name, absl::string_view password);
  absl::Status PutNtHash(absl::string_view name, crypto::ByteSpan nt_hash);
  // kNotFound when the user does not exist.
  absl::Status Delete(absl::string_view name);
  absl::StatusOr<std::vector<UserInfo>> List();

  // eap::CredentialSource.
  absl::StatusOr<crypto::SecretBytes> NtHash(absl::string_view user) override;

 private:
  static std::string Key(absl::string_view name);

  store::Store& store_;
  const std::unique_ptr<store::Sealer> sealer_;
};

}  // namespace vpn::auth
