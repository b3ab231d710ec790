#include "auth-service/testing/test_util.h"

#include <cstdio>
#include <fstream>
#include <iterator>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/testing/child_process.h"

namespace vpn::auth::testing {

absl::StatusOr<std::string> Run(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen failed");
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  if (status != 0) {
    return absl::UnknownError(
        absl::StrCat("`", command, "` exited with ", status, ": ", output));
  }
  return output;
}

std::string MakeTempDir(absl::string_view name) {
  return vpn::testing::MakeTempDir(name);
}

void WriteFile(const std::string& path, absl::string_view contents) {
  std::ofstream(path, std::ios::binary) << contents;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

crypto::Bytes FromHex(absl::string_view hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  return crypto::Bytes(bytes.begin(), bytes.end());
}

std::string ToHex(crypto::ByteSpan bytes) {
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

absl::StatusOr<std::string> MakeTestPki() {
  const std::string dir = MakeTempDir("pki");
  absl::StatusOr<std::string> made =
      Run(absl::StrCat("sh ",
                       vpn::testing::RunfilePath(
                           "auth-service/testing/make_test_pki.sh"),
                       " ", dir));
  if (!made.ok()) {
    return absl::InternalError(absl::StrCat(made.status().message(), "\n",
                                            ReadFile(dir + "/openssl.log")));
  }
  return dir;
}

std::vector<crypto::Bytes> ChainDer(const std::string& pem_path) {
  std::vector<crypto::Bytes> chain;
  auto certs = crypto::GetProvider().ParseCertificatesPem(ReadFile(pem_path));
  if (!certs.ok()) return chain;
  for (const auto& cert : *certs) {
    chain.emplace_back(cert->der().begin(), cert->der().end());
  }
  return chain;
}

namespace {

void AppendInteger(crypto::ByteSpan value, crypto::Bytes* out) {
  size_t i = 0;
  while (i + 1 < value.size() && value[i] == 0) ++i;
  crypto::Bytes integer(value.begin() + i, value.end());
  if (integer[0] & 0x80) integer.insert(integer.begin(), 0);
  out->push_back(0x02);
  out->push_back(static_cast<uint8_t>(integer.size()));
  out->insert(out->end(), integer.begin(), integer.end());
}

}  // namespace

crypto::Bytes RawEcdsaToDer(crypto::ByteSpan raw) {
  crypto::Bytes body;
  AppendInteger(raw.first(raw.size() / 2), &body);
  AppendInteger(raw.subspan(raw.size() / 2), &body);
  crypto::Bytes der = {0x30};
  if (body.size() >= 0x80) der.push_back(0x81);
  der.push_back(static_cast<uint8_t>(body.size()));
  der.insert(der.end(), body.begin(), body.end());
  return der;
}

namespace {

std::string Be16(size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }

std::string Payload(uint8_t next, const std::string& body) {
  return std::string(1, static_cast<char>(next)) + '\0' + Be16(4 + body.size()) + body;
}

std::string Transform(bool last, uint8_t type, uint16_t id, const std::string& attrs = "") {
  return std::string(1, last ? 0 : 3) + '\0' + Be16(8 + attrs.size()) +
         static_cast<char>(type) + '\0' + Be16(id) + attrs;
}

}  // namespace

std::string IkeSaInitResponse(uint16_t prf, uint8_t flags, uint8_t exchange) {
  const std::string transforms =
      Transform(false, 1, 12, std::string("\x80\x0e\x01\x00", 4)) + Transform(false, 2, prf) +
      Transform(false, 3, 2) + Transform(true, 4, 2);
  const std::string proposal = std::string("\0\0", 2) + Be16(8 + transforms.size()) +
                               std::string("\x01\x01\x00\x04", 4) + transforms;
  const std::string payloads =
      Payload(34, proposal) + Payload(40, Be16(2) + std::string(2, '\0') + std::string(128, 'k')) +
      Payload(0, std::string(32, 'r'));
  std::string header = std::string(8, '\x11') + std::string(8, '\x22');
  header += static_cast<char>(33);  // SA
  header += '\x20';                 // IKEv2
  header += static_cast<char>(exchange);
  header += static_cast<char>(flags);
  header += std::string(4, '\0');  // message ID
  header += std::string(2, '\0') + Be16(28 + payloads.size());
  return header + payloads;
}

}  // namespace vpn::auth::testing
