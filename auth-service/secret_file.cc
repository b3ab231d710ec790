#include "auth-service/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/config/secret_mode.h"
#include "common/fs/read_file.h"

namespace vpn::auth {

absl::Status CheckSecretFileMode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat(path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  if (absl::Status mode = config::CheckSecretMode(st); !mode.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": ", mode.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  if (absl::Status s = CheckSecretFileMode(path); !s.ok()) return s;
  return fs::ReadFile(path);
}

}  // namespace vpn::auth
