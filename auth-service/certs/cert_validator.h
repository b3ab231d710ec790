// Validates a client's certificate authentication (RFC 7296 §2.15, §3.8):
// the chain leads to a configured CA (CRLs checked when loaded), the leaf's
// validity period and EKU (clientAuth, ipsecIKE, IKE intermediate, any, or
// no EKU extension) are acceptable, the leaf matches IDi, and the AUTH
// payload verifies with the leaf's key. Never fails on garbage input: every
// problem is an invalid result with a precise reason.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/crypto/crypto.h"

namespace vpn::auth {

// RFC 7296 §3.5 ID types.
namespace id_type {
inline constexpr uint32_t kIpv4Addr = 1;
inline constexpr uint32_t kFqdn = 2;
inline constexpr uint32_t kRfc822Addr = 3;
inline constexpr uint32_t kIpv6Addr = 5;
inline constexpr uint32_t kDerAsn1Dn = 9;
}  // namespace id_type

struct CertificateAuth {
  std::vector<crypto::ByteSpan> chain_der;  // end-entity first
  crypto::ByteSpan identity;                // IDi payload data
  uint32_t identity_type = 0;
  uint32_t auth_method = 0;
  crypto::ByteSpan signed_octets;
  crypto::ByteSpan auth_data;
};

struct ValidationResult {
  bool valid = false;
  std::string reason;   // when invalid
  std::string subject;  // the leaf's subject, once parsed
};

class CertValidator {
 public:
  static constexpr size_t kMaxChainLength = 8;

  // `cas_pem`: one or more CA certificates. `crls`: the contents of zero or
  // more CRL files, each PEM (any number of CRLs) or one DER CRL.
  static absl::StatusOr<std::unique_ptr<CertValidator>> Load(
      const crypto::Provider& provider, const std::string& cas_pem,
      const std::vector<std::string>& crls);

  ValidationResult Validate(const CertificateAuth& auth,
                            absl::Time now = absl::Now()) const;

  // SHA-1 of each trusted CA's SubjectPublicKeyInfo: what a CERTREQ names
  // (RFC 7296 §3.7).
  const std::vector<crypto::Bytes>& authority_hashes() const { return authority_hashes_; }

 private:
  CertValidator(const crypto::Provider& provider,
                std::unique_ptr<crypto::TrustStore> trust,
                std::vector<crypto::Bytes> authority_hashes)
      : provider_(provider), trust_(std::move(trust)),
        authority_hashes_(std::move(authority_hashes)) {}

  const crypto::Provider& provider_;
  std::unique_ptr<crypto::TrustStore> trust_;
  std::vector<crypto::Bytes> authority_hashes_;
};

// Checks `auth_data` over `signed_octets` with `key` for AUTH methods 1,
// 9-11 and 14 (RFC 7427 AlgorithmIdentifier || signature). OK or an error
// whose message is the reason.
absl::Status VerifyAuthSignature(const crypto::PublicKey& key,
                                 uint32_t auth_method,
                                 crypto::ByteSpan signed_octets,
                                 crypto::ByteSpan auth_data);

}  // namespace vpn::auth
