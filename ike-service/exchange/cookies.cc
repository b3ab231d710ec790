#include "ike-service/exchange/cookies.h"

#include "absl/time/clock.h"

namespace vpn::ike {

CookieJar::CookieJar(absl::Duration rotation) : rotation_(rotation) {
  absl::MutexLock lock(&mu_);
  secret_ = crypto::SecretBytes(32);
  crypto::GetProvider().RandomBytes(secret_.mutable_span());
  previous_secret_ = secret_.Copy();
  rotated_ = absl::Now();
}

void CookieJar::RotateIfDue() {
  if (absl::Now() - rotated_ < rotation_) return;
  previous_secret_ = std::move(secret_);
  secret_ = crypto::SecretBytes(32);
  crypto::GetProvider().RandomBytes(secret_.mutable_span());
  ++version_;
  rotated_ = absl::Now();
}

crypto::Bytes CookieJar::Compute(uint32_t version, crypto::ByteSpan nonce_i,
                                 const net::IpEndpoint& initiator, uint64_t spi_i) {
  const crypto::SecretBytes& secret = version == version_ ? secret_ : previous_secret_;
  uint8_t spi[8];
  for (int k = 0; k < 8; ++k) spi[k] = static_cast<uint8_t>(spi_i >> (56 - 8 * k));
  const crypto::ByteSpan parts[] = {nonce_i, initiator.address_bytes(), spi,
                                    secret.span()};
  crypto::Bytes cookie = {static_cast<uint8_t>(version >> 24),
                          static_cast<uint8_t>(version >> 16),
                          static_cast<uint8_t>(version >> 8),
                          static_cast<uint8_t>(version)};
  crypto::Bytes digest = crypto::GetProvider().Hash(crypto::HashAlgorithm::kSha256, parts);
  cookie.insert(cookie.end(), digest.begin(), digest.end());
  return cookie;
}

crypto::Bytes CookieJar::Make(crypto::ByteSpan nonce_i, const net::IpEndpoint& initiator,
                              uint64_t spi_i) {
  absl::MutexLock lock(&mu_);
  RotateIfDue();
  return Compute(version_, nonce_i, initiator, spi_i);
}

bool CookieJar::Check(crypto::ByteSpan cookie, crypto::ByteSpan nonce_i,
                      const net::IpEndpoint& initiator, uint64_t spi_i) {
  if (cookie.size() != 4 + 32) return false;
  const uint32_t version = (uint32_t{cookie[0]} << 24) | (uint32_t{cookie[1]} << 16) |
                           (uint32_t{cookie[2]} << 8) | cookie[3];
  absl::MutexLock lock(&mu_);
  RotateIfDue();
  if (version != version_ && version + 1 != version_) return false;
  return crypto::ConstantTimeEquals(cookie, Compute(version, nonce_i, initiator, spi_i));
}

}  // namespace vpn::ike
