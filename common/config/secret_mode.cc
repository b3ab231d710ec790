#include "common/config/secret_mode.h"

#include <unistd.h>

#include <vector>

#include "absl/strings/str_format.h"

namespace vpn::config {
namespace {

bool IsOneOfMyGroups(gid_t gid) {
  if (gid == ::getegid()) return true;
  const int count = ::getgroups(0, nullptr);
  if (count <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  const int got = ::getgroups(count, groups.data());
  for (int i = 0; i < got; ++i) {
    if (groups[i] == gid) return true;
  }
  return false;
}

}  // namespace

absl::Status CheckSecretMode(const struct stat& st) {
  const mode_t mode = st.st_mode & 07777;
  if ((mode & 007) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "mode %04o is looser than 0600: others have access; chmod 600 it", mode));
  }
  if ((mode & 070) == 0) return absl::OkStatus();
  if ((mode & 030) == 0 && IsOneOfMyGroups(st.st_gid)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrFormat(
      "mode %04o is looser than 0600: the group may %s; chmod 600 it (a group "
      "may only read, and only one of this process's groups, e.g. a pod's fsGroup)",
      mode, (mode & 030) != 0 ? "write or execute it" : "read it and it is not one of ours"));
}

}  // namespace vpn::config
