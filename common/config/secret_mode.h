// Who may read a file that holds a secret (a private key, a sealing key, NT
// hashes). Never others; the group only when it is one of this process's
// groups and only to read: that is how Kubernetes mounts a Secret for a pod
// with `fsGroup` (root-owned, mode 0440 with defaultMode 0400). Otherwise
// mode 0600 or 0400.
#pragma once

#include <sys/stat.h>

#include <string>

#include "absl/status/status.h"

namespace vpn::config {

// OK, or PermissionDenied naming the mode and what is too loose (the caller
// prefixes the file's name).
absl::Status CheckSecretMode(const struct stat& st);

}  // namespace vpn::config
