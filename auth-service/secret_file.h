// Reading files that hold secrets (private keys): they must be regular files
// that neither group nor others can read or write (mode 0600 or tighter).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vpn::auth {

// OK, or an error naming the path and the problem (missing, not a regular
// file, mode looser than 0600).
absl::Status CheckSecretFileMode(const std::string& path);

// CheckSecretFileMode, then the contents.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// Any readable file.
absl::StatusOr<std::string> ReadPublicFile(const std::string& path);

}  // namespace vpn::auth
