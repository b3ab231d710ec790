#include "auth-service/signer/gateway_signer.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"

namespace vpn::auth {
namespace {

using crypto::KeyType;
using crypto::SignatureScheme;

struct Candidate {
  uint32_t hash;
  SignatureScheme scheme;
};

// RFC 7427 candidates for a key type, most preferred first.
std::vector<Candidate> Candidates(KeyType type) {
  switch (type) {
    case KeyType::kRsa:
      return {{hash_id::kSha256, SignatureScheme::kRsaPkcs1Sha256},
              {hash_id::kSha384, SignatureScheme::kRsaPkcs1Sha384},
              {hash_id::kSha512, SignatureScheme::kRsaPkcs1Sha512}};
    case KeyType::kEcP256:
      return {{hash_id::kSha256, SignatureScheme::kEcdsaSha256},
              {hash_id::kSha384, SignatureScheme::kEcdsaSha384},
              {hash_id::kSha512, SignatureScheme::kEcdsaSha512}};
    case KeyType::kEcP384:
      return {{hash_id::kSha384, SignatureScheme::kEcdsaSha384},
              {hash_id::kSha512, SignatureScheme::kEcdsaSha512},
              {hash_id::kSha256, SignatureScheme::kEcdsaSha256}};
    case KeyType::kEcP521:
      return {{hash_id::kSha512, SignatureScheme::kEcdsaSha512},
              {hash_id::kSha384, SignatureScheme::kEcdsaSha384},
              {hash_id::kSha256, SignatureScheme::kEcdsaSha256}};
    case KeyType::kEd25519:
      return {{hash_id::kIdentity, SignatureScheme::kEd25519}};
  }
  return {};
}

struct Classic {
  uint8_t method;
  SignatureScheme scheme;
};

std::optional<Classic> ClassicMethod(KeyType type) {
  switch (type) {
    case KeyType::kRsa:
      return Classic{crypto::auth_method::kRsaSignature,
                     SignatureScheme::kRsaPkcs1Sha1};
    case KeyType::kEcP256:
      return Classic{crypto::auth_method::kEcdsaSha256P256,
                     SignatureScheme::kEcdsaP256Sha256Raw};
    case KeyType::kEcP384:
      return Classic{crypto::auth_method::kEcdsaSha384P384,
                     SignatureScheme::kEcdsaP384Sha384Raw};
    case KeyType::kEcP521:
      return Classic{crypto::auth_method::kEcdsaSha512P521,
                     SignatureScheme::kEcdsaP521Sha512Raw};
    case KeyType::kEd25519:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GatewaySigner>> GatewaySigner::Load(
    const crypto::Provider& provider, absl::string_view chain_pem,
    absl::string_view key_pem) {
  auto certs = provider.ParseCertificatesPem(
      std::string_view(chain_pem.data(), chain_pem.size()));
  if (!certs.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate chain: ", certs.status().message()));
  }
  auto key =
      provider.LoadPrivateKeyPem(std::string_view(key_pem.data(), key_pem.size()));
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("private key: ", key.status().message()));
  }
  std::unique_ptr<crypto::PublicKey> leaf_key = certs->front()->public_key();
  if (leaf_key == nullptr ||
      leaf_key->spki_der() != (*key)->public_key()->spki_der()) {
    return absl::InvalidArgumentError(
        "private key does not match the first certificate of the chain");
  }
  std::vector<crypto::Bytes> chain;
  absl::Time not_after = absl::InfiniteFuture();
  for (const auto& cert : *certs) {
    chain.emplace_back(cert->der().begin(), cert->der().end());
    not_after = std::min(not_after, cert->not_after());
  }
  return std::unique_ptr<GatewaySigner>(
      new GatewaySigner(*std::move(key), std::move(chain),
                        certs->front()->subject(), not_after));
}

absl::StatusOr<GatewaySigner::Signature> GatewaySigner::Sign(
    crypto::ByteSpan signed_octets,
    absl::Span<const uint32_t> peer_hashes) const {
  if (signed_octets.empty()) {
    return absl::InvalidArgumentError("nothing to sign");
  }
  Signature out;
  if (!peer_hashes.empty()) {
    for (const Candidate& c : Candidates(key_->type())) {
      if (std::find(peer_hashes.begin(), peer_hashes.end(), c.hash) ==
          peer_hashes.end()) {
        continue;
      }
      absl::StatusOr<crypto::Bytes> algorithm =
          crypto::SignatureAlgorithmIdentifier(c.scheme);
      if (!algorithm.ok()) return algorithm.status();
      if (algorithm->size() > 255) {
        return absl::InternalError("AlgorithmIdentifier longer than 255 bytes");
      }
      absl::StatusOr<crypto::Bytes> signature = key_->Sign(c.scheme, signed_octets);
      if (!signature.ok()) return signature.status();
      out.auth_method = crypto::auth_method::kDigitalSignature;
      out.auth_data.push_back(static_cast<uint8_t>(algorithm->size()));
      out.auth_data.insert(out.auth_data.end(), algorithm->begin(),
                           algorithm->end());
      out.auth_data.insert(out.auth_data.end(), signature->begin(),
                           signature->end());
      return out;
    }
    // No common hash (e.g. only SHA-1): the classic method below.
  }
  const std::optional<Classic> classic = ClassicMethod(key_->type());
  if (!classic.has_value()) {
    return absl::FailedPreconditionError(
        "an Ed25519 gateway key needs a peer that announces the Identity "
        "hash (RFC 8420)");
  }
  absl::StatusOr<crypto::Bytes> signature =
      key_->Sign(classic->scheme, signed_octets);
  if (!signature.ok()) return signature.status();
  out.auth_method = classic->method;
  out.auth_data = *std::move(signature);
  return out;
}

}  // namespace vpn::auth
