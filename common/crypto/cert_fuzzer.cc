// Fuzz target for the certificate parser and its accessors. Built with a
// plain main() (fuzzer_main.cc) for the seed-corpus regression test, or with
// -fsanitize=fuzzer for libFuzzer (see BUILD).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/crypto/crypto.h"

namespace {

void Exercise(const vpn::crypto::Certificate& cert) {
  (void)cert.subject();
  (void)cert.issuer();
  (void)cert.subject_der();
  (void)cert.serial_hex();
  (void)cert.not_before();
  (void)cert.not_after();
  (void)cert.subject_alt_names();
  (void)cert.has_extended_key_usage();
  (void)cert.HasExtendedKeyUsage(
      vpn::crypto::ExtendedKeyUsage::kIkeIntermediate);
  (void)cert.is_ca();
  if (auto key = cert.public_key()) (void)key->spki_der();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vpn::crypto::Provider& provider = vpn::crypto::GetProvider();
  if (auto cert = provider.ParseCertificateDer({data, size}); cert.ok()) {
    Exercise(**cert);
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto certs = provider.ParseCertificatesPem(text); certs.ok()) {
    for (const auto& cert : *certs) Exercise(*cert);
    // Also as a CA bundle, with the input doubling as CRL data.
    if (auto store = provider.NewTrustStore(text, ""); store.ok()) {
      (void)(*store)->Verify(*certs->front(), {}, vpn::crypto::VerifyOptions());
    }
  }
  return 0;
}
