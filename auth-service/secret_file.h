// Reading files that hold secrets (private keys): regular files that others
// cannot access, and a group only read when it is one of ours
// (common/config/secret_mode.h).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vpn::auth {

// OK, or an error naming the path and the problem (missing, not a regular
// file, mode too loose).
absl::Status CheckSecretFileMode(const std::string& path);

// CheckSecretFileMode, then the contents (fs::ReadFile).
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace vpn::auth
