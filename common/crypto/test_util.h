// Helpers shared by the crypto tests.
#pragma once

#include <string>
#include <string_view>

#include "common/crypto/crypto.h"

namespace vpn::crypto::testing {

// Hex (whitespace allowed) to bytes; aborts the test binary on bad input.
Bytes Hex(std::string_view hex);
std::string ToHex(ByteSpan bytes);
Bytes ToBytes(std::string_view text);

// Runs a shell command; returns its stdout, or an error with its stderr.
absl::StatusOr<std::string> Run(const std::string& command);
// A fresh directory under TEST_TMPDIR.
std::string MakeTempDir(const std::string& name);
void WriteFile(const std::string& path, std::string_view contents);
std::string ReadFile(const std::string& path);

// The `openssl` command line tool (OpenSSL 3, a different library).
inline constexpr char kOpenssl[] = "/usr/bin/openssl";

}  // namespace vpn::crypto::testing
