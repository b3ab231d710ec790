#include "esp-forwarder/esp/suites.h"

#include "absl/strings/str_cat.h"
#include "common/ipsec/transforms.h"

namespace vpn::forwarder::esp {

const std::vector<Suite>& AllSuites() {
  using namespace crypto::transform;  // NOLINT
  static const auto* suites = new std::vector<Suite>{
      {"aes128gcm16", {kEncrAesGcm16, 128, 0, false}},
      {"aes256gcm16", {kEncrAesGcm16, 256, 0, false}},
      {"aes128-sha1", {kEncrAesCbc, 128, 2, false}},
      {"aes256-sha1", {kEncrAesCbc, 256, 2, false}},
      {"aes128-sha256", {kEncrAesCbc, 128, 12, false}},
      {"aes256-sha256", {kEncrAesCbc, 256, 12, false}},
      {"aes256-sha384", {kEncrAesCbc, 256, 13, false}},
      {"aes256-sha512", {kEncrAesCbc, 256, 14, false}},
      {"3des-sha1", {kEncr3Des, 0, 2, false}},
      {"aes128gcm16-esn", {kEncrAesGcm16, 128, 0, true}},
      {"aes256gcm16-esn", {kEncrAesGcm16, 256, 0, true}},
      {"aes256-sha256-esn", {kEncrAesCbc, 256, 12, true}},
      {"3des-sha1-esn", {kEncr3Des, 0, 2, true}},
  };
  return *suites;
}

absl::StatusOr<Suite> SuiteByName(const std::string& name) {
  for (const Suite& suite : AllSuites()) {
    if (suite.name == name) return suite;
  }
  return absl::NotFoundError(absl::StrCat("unknown ESP suite '", name, "'"));
}

SaKeys TestKeys::view() const {
  return {crypto::ByteSpan(in_enc), crypto::ByteSpan(in_int), crypto::ByteSpan(out_enc),
          crypto::ByteSpan(out_int)};
}

SaKeys TestKeys::mirrored() const {
  return {crypto::ByteSpan(out_enc), crypto::ByteSpan(out_int), crypto::ByteSpan(in_enc),
          crypto::ByteSpan(in_int)};
}

absl::StatusOr<TestKeys> MakeTestKeys(const EspAlgorithms& algorithms, uint32_t seed) {
  absl::StatusOr<ipsec::KeySizes> sizes = ipsec::KeySizesFor(algorithms.ToTransformSet());
  if (!sizes.ok()) return sizes.status();
  uint32_t x = seed * 2654435761u + 1;
  auto fill = [&x](size_t n) {
    std::vector<uint8_t> v(n);
    for (uint8_t& b : v) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      b = static_cast<uint8_t>(x);
    }
    return v;
  };
  TestKeys keys;
  keys.in_enc = fill(sizes->encryption_key);
  keys.in_int = fill(sizes->integrity_key);
  keys.out_enc = fill(sizes->encryption_key);
  keys.out_int = fill(sizes->integrity_key);
  return keys;
}

SaParams MirrorParams(const SaParams& gateway) {
  SaParams client = gateway;
  client.inbound_spi = gateway.outbound_spi;
  client.outbound_spi = gateway.inbound_spi;
  client.local_ts = gateway.remote_ts;
  client.remote_ts = gateway.local_ts;
  return client;
}

}  // namespace vpn::forwarder::esp
