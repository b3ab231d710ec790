// The crypto-only floor of one responder handshake, timed through the
// vpn::crypto interface: one key exchange (a fresh private value and the
// shared secret), one signature with the gateway key, and the IKE and
// CHILD SA key derivation.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/crypto.h"
#include "common/ipsec/transforms.h"

namespace vpn::loadgen {

struct FloorOptions {
  ipsec::TransformSet ike;  // encryption, prf, integrity, key_exchange
  ipsec::TransformSet esp;
  const crypto::PrivateKey* key = nullptr;
  crypto::SignatureScheme scheme = crypto::SignatureScheme::kRsaPkcs1Sha256;
  size_t signed_octets = 600;  // IKE_SA_INIT response + Ni + prf(SK_pr, IDr)
  int repetitions = 5;
  double min_seconds = 0.3;  // per repetition and measurement
};

// Microseconds per operation, medians over the repetitions.
struct FloorResult {
  double key_exchange_us = 0;
  double signature_us = 0;
  double derivation_us = 0;  // DeriveIkeSaKeys + DeriveChildSaKeys
  double handshake_us = 0;   // all three in one loop
};

absl::StatusOr<FloorResult> MeasureFloor(const FloorOptions& options);

std::string FloorJson(const FloorResult& result);

}  // namespace vpn::loadgen
