// Reads a whole file named in config (certificates, keys, CRLs, CA bundles):
// a regular file (or a symlink to one, as Kubernetes mounts Secrets), of at
// most `max_size` bytes, so a path to a device, a pipe or a huge file cannot
// block or exhaust memory. Errors name the file and the reason
// ("/etc/vpn/ca.pem: Is a directory") and nothing throws.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace vpn::fs {

inline constexpr size_t kMaxConfigFileSize = 16 << 20;

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     size_t max_size = kMaxConfigFileSize);

}  // namespace vpn::fs
