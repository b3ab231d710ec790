// Helpers for auth-service tests: shell commands, files, a test PKI.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/crypto.h"

namespace vpn::auth::testing {

// Runs `command` with sh; its stdout, or an error with the exit code and
// output (stderr is merged into stdout).
absl::StatusOr<std::string> Run(const std::string& command);

// A fresh directory under TEST_TMPDIR.
std::string MakeTempDir(absl::string_view name);
void WriteFile(const std::string& path, absl::string_view contents);
std::string ReadFile(const std::string& path);

crypto::Bytes FromHex(absl::string_view hex);
std::string ToHex(crypto::ByteSpan bytes);

// Generates the test PKI (see make_test_pki.sh) in a fresh directory and
// returns it.
absl::StatusOr<std::string> MakeTestPki();

// The DER certificates of a PEM file, in order.
std::vector<crypto::Bytes> ChainDer(const std::string& pem_path);

// An IKE_SA_INIT response as the gateway sends one: SA (aes256-sha1-modp1024
// with the PRF `prf`), KE, Nonce; `flags` and `exchange` as given, so tests
// can make a request or another exchange.
std::string IkeSaInitResponse(uint16_t prf = 2, uint8_t flags = 0x20, uint8_t exchange = 34);

// RFC 4754 r||s to a DER Ecdsa-Sig-Value (for the openssl CLI).
crypto::Bytes RawEcdsaToDer(crypto::ByteSpan raw);

}  // namespace vpn::auth::testing
