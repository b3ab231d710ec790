#include "auth-service/users/user_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "auth-service/users/user_record.pb.h"
#include "auth-service/users/users_file.h"
#include "common/crypto/mschapv2.h"

namespace vpn::auth {
namespace {

constexpr size_t kNtHashSize = 16;
constexpr size_t kMaxNameSize = 256;

// Wipes the hash a UserSecret message holds.
void Wipe(UserSecret* secret) {
  std::string* hash = secret->mutable_nt_hash();
  crypto::SecureZero(hash->data(), hash->size());
  hash->clear();
}

}  // namespace

UserStore::UserStore(store::Store& store, std::unique_ptr<store::Sealer> sealer)
    : store_(store), sealer_(std::move(sealer)) {}

std::string UserStore::Key(absl::string_view name) {
  return absl::StrCat(kPrefix, name);
}

void UserStore::SetFileUsers(std::shared_ptr<const FileUsers> users) {
  absl::MutexLock lock(&file_mu_);
  file_users_ = std::move(users);
}

std::shared_ptr<const FileUsers> UserStore::file_users() const {
  absl::MutexLock lock(&file_mu_);
  return file_users_;
}

absl::Status UserStore::CheckNotFromFile(absl::string_view name) const {
  const std::shared_ptr<const FileUsers> file = file_users();
  if (file != nullptr && file->Find(name) != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "user '", name, "' is managed by users_file; change it there"));
  }
  return absl::OkStatus();
}

absl::Status UserStore::ValidateName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameSize) {
    return absl::InvalidArgumentError("user name must be 1 to 256 bytes");
  }
  if (name.front() == ' ' || name.back() == ' ') {
    return absl::InvalidArgumentError(
        "user name must not start or end with a space");
  }
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '/' || c == '\\') {
      return absl::InvalidArgumentError(
          "user name must not contain control characters, '/' or '\\'");
    }
  }
  return absl::OkStatus();
}

absl::Status UserStore::Put(absl::string_view name, absl::string_view password) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  if (absl::Status s = CheckNotFromFile(name); !s.ok()) return s;
  if (password.empty()) {
    return absl::InvalidArgumentError("password must not be empty");
  }
  absl::StatusOr<crypto::SecretBytes> unicode =
      crypto::mschapv2::PasswordToUnicode(
          std::string_view(password.data(), password.size()));
  if (!unicode.ok()) return unicode.status();
  const crypto::SecretBytes hash =
      crypto::mschapv2::NtPasswordHash(crypto::GetProvider(), unicode->span());
  return PutNtHash(name, hash.span());
}

absl::Status UserStore::PutNtHash(absl::string_view name,
                                  crypto::ByteSpan nt_hash) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  if (nt_hash.size() != kNtHashSize) {
    return absl::InvalidArgumentError("NT hash must be 16 bytes");
  }
  if (absl::Status s = CheckNotFromFile(name); !s.ok()) return s;
  const std::string key = Key(name);
  UserSecret secret;
  secret.set_nt_hash(nt_hash.data(), nt_hash.size());
  UserRecord record;
  record.set_name(std::string(name));
  absl::Status sealed = store::SealInto(*sealer_, key, secret, &record);
  Wipe(&secret);
  if (!sealed.ok()) return sealed;
  absl::StatusOr<store::WriteResult> written =
      store::PutProto(store_, key, record);
  return written.ok() ? absl::OkStatus() : written.status();
}

absl::Status UserStore::Delete(absl::string_view name) {
  if (absl::Status s = ValidateName(name); !s.ok()) {
    return absl::NotFoundError("no such user");
  }
  if (absl::Status s = CheckNotFromFile(name); !s.ok()) return s;
  absl::StatusOr<store::WriteResult> deleted = store_.Delete(Key(name));
  if (absl::IsNotFound(deleted.status())) {
    return absl::NotFoundError(absl::StrCat("no user '", name, "'"));
  }
  return deleted.ok() ? absl::OkStatus() : deleted.status();
}

absl::StatusOr<std::vector<UserInfo>> UserStore::List() {
  absl::StatusOr<store::ListResult> listed = store_.List(kPrefix);
  if (!listed.ok()) return listed.status();
  const std::shared_ptr<const FileUsers> file = file_users();
  std::vector<UserInfo> users;
  for (const store::KeyValue& kv : listed->kvs) {
    UserRecord record;
    if (!record.ParseFromString(kv.value)) continue;  // not ours; skip
    std::string name = kv.key.substr(sizeof(kPrefix) - 1);
    if (file != nullptr && file->Find(name) != nullptr) continue;  // shadowed
    users.push_back({std::move(name), record.disabled(), false});
  }
  if (file != nullptr) {
    for (std::string& name : file->Names()) {
      users.push_back({std::move(name), false, true});
    }
    std::sort(users.begin(), users.end(),
              [](const UserInfo& a, const UserInfo& b) { return a.name < b.name; });
  }
  return users;
}

absl::StatusOr<crypto::SecretBytes> UserStore::NtHash(absl::string_view user) {
  if (!ValidateName(user).ok()) return absl::NotFoundError("no such user");
  if (const std::shared_ptr<const FileUsers> file = file_users();
      file != nullptr) {
    if (const crypto::SecretBytes* hash = file->Find(user); hash != nullptr) {
      return hash->Copy();
    }
  }
  const std::string key = Key(user);
  absl::StatusOr<store::Versioned<UserRecord>> record =
      store::GetProto<UserRecord>(store_, key);
  if (!record.ok()) return record.status();  // kNotFound for unknown users
  if (record->record.disabled()) return absl::NotFoundError("user disabled");
  absl::StatusOr<UserSecret> secret =
      store::OpenFrom<UserSecret>(*sealer_, key, record->record);
  if (!secret.ok()) {
    return absl::DataLossError(absl::StrCat("credentials of '", user,
                                            "' do not open: ",
                                            secret.status().message()));
  }
  if (secret->nt_hash().size() != kNtHashSize) {
    Wipe(&*secret);
    return absl::DataLossError(
        absl::StrCat("credentials of '", user, "' are malformed"));
  }
  crypto::SecretBytes hash(crypto::ByteSpan(
      reinterpret_cast<const uint8_t*>(secret->nt_hash().data()), kNtHashSize));
  Wipe(&*secret);
  return hash;
}

}  // namespace vpn::auth
