#include "tools/ike_loadgen/crypto_floor.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "absl/strings/str_format.h"
#include "ike-service/sa/keymat.h"

namespace vpn::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

// Median over `repetitions` of the mean time of `op` (µs), each repetition
// running for at least `min_seconds`.
absl::StatusOr<double> Time(const FloorOptions& options, const std::function<absl::Status()>& op) {
  std::vector<double> samples;
  for (int r = 0; r < options.repetitions; ++r) {
    int64_t count = 0;
    const Clock::time_point start = Clock::now();
    double elapsed = 0;
    do {
      if (absl::Status status = op(); !status.ok()) return status;
      ++count;
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < options.min_seconds);
    samples.push_back(1e6 * elapsed / count);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace

absl::StatusOr<FloorResult> MeasureFloor(const FloorOptions& options) {
  const crypto::Provider& provider = crypto::GetProvider();
  absl::StatusOr<crypto::KeyExchangeGroup> group =
      ipsec::KeyExchangeGroupFor(options.ike.key_exchange);
  if (!group.ok()) return group.status();
  absl::StatusOr<std::unique_ptr<crypto::KeyExchange>> peer = provider.NewKeyExchange(*group);
  if (!peer.ok()) return peer.status();
  const crypto::Bytes peer_public((*peer)->public_value().begin(), (*peer)->public_value().end());
  crypto::Bytes octets(options.signed_octets);
  provider.RandomBytes(absl::MakeSpan(octets));
  crypto::Bytes nonce_i(32), nonce_r(32);
  provider.RandomBytes(absl::MakeSpan(nonce_i));
  provider.RandomBytes(absl::MakeSpan(nonce_r));
  crypto::SecretBytes shared;

  auto key_exchange = [&]() -> absl::Status {
    absl::StatusOr<std::unique_ptr<crypto::KeyExchange>> ours = provider.NewKeyExchange(*group);
    if (!ours.ok()) return ours.status();
    absl::StatusOr<crypto::SecretBytes> secret = (*ours)->ComputeSharedSecret(peer_public);
    if (!secret.ok()) return secret.status();
    shared = *std::move(secret);
    return absl::OkStatus();
  };
  auto sign = [&]() -> absl::Status { return options.key->Sign(options.scheme, octets).status(); };
  auto derive = [&]() -> absl::Status {
    absl::StatusOr<ike::IkeSaKeys> keys = ike::DeriveIkeSaKeys(
        options.ike, nonce_i, nonce_r, shared.span(), 0x0102030405060708, 0x1112131415161718);
    if (!keys.ok()) return keys.status();
    return ike::DeriveChildSaKeys(options.ike.prf, keys->sk_d.span(), options.esp, {}, nonce_i,
                                  nonce_r)
        .status();
  };
  if (absl::Status status = key_exchange(); !status.ok()) return status;

  FloorResult result;
  absl::StatusOr<double> t = Time(options, key_exchange);
  if (!t.ok()) return t.status();
  result.key_exchange_us = *t;
  if (!(t = Time(options, sign)).ok()) return t.status();
  result.signature_us = *t;
  if (!(t = Time(options, derive)).ok()) return t.status();
  result.derivation_us = *t;
  t = Time(options, [&]() -> absl::Status {
    if (absl::Status s = key_exchange(); !s.ok()) return s;
    if (absl::Status s = sign(); !s.ok()) return s;
    return derive();
  });
  if (!t.ok()) return t.status();
  result.handshake_us = *t;
  return result;
}

std::string FloorJson(const FloorResult& r) {
  return absl::StrFormat(
      "{\"key_exchange_us\": %.3f, \"signature_us\": %.3f, \"derivation_us\": %.3f, "
      "\"handshake_us\": %.3f}",
      r.key_exchange_us, r.signature_us, r.derivation_us, r.handshake_us);
}

}  // namespace vpn::loadgen
