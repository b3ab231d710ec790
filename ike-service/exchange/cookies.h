// Stateless cookies (RFC 7296 §2.6): once too many SAs are half-open, an
// IKE_SA_INIT must echo a cookie the gateway can check without state.
#pragma once

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/crypto/crypto.h"
#include "common/net/ip_endpoint.h"

namespace vpn::ike {

class CookieJar {
 public:
  explicit CookieJar(absl::Duration rotation = absl::Minutes(5));

  // Cookie = <version> | SHA-256(Ni | IPi | SPIi | <secret>).
  crypto::Bytes Make(crypto::ByteSpan nonce_i, const net::IpEndpoint& initiator,
                     uint64_t spi_i);
  // Accepts cookies of the current and the previous secret.
  bool Check(crypto::ByteSpan cookie, crypto::ByteSpan nonce_i,
             const net::IpEndpoint& initiator, uint64_t spi_i);

 private:
  crypto::Bytes Compute(uint32_t version, crypto::ByteSpan nonce_i,
                        const net::IpEndpoint& initiator, uint64_t spi_i)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RotateIfDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration rotation_;
  absl::Mutex mu_;
  uint32_t version_ ABSL_GUARDED_BY(mu_) = 0;
  crypto::SecretBytes secret_ ABSL_GUARDED_BY(mu_);
  crypto::SecretBytes previous_secret_ ABSL_GUARDED_BY(mu_);
  absl::Time rotated_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vpn::ike
