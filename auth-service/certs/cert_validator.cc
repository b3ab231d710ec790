#include "auth-service/certs/cert_validator.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vpn::auth {
namespace {

using crypto::KeyType;
using crypto::SignatureScheme;

// A DER CRL as PEM, so several CRL files can be handed over together.
std::string CrlToPem(const std::string& crl) {
  if (absl::StrContains(crl, "-----BEGIN")) return crl;
  const std::string b64 = absl::Base64Escape(crl);
  std::string pem = "-----BEGIN X509 CRL-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) {
    pem += b64.substr(i, 64) + "\n";
  }
  return pem + "-----END X509 CRL-----\n";
}

std::string AsString(crypto::ByteSpan bytes) {
  return std::string(bytes.begin(), bytes.end());
}

bool IsPrintable(absl::string_view text) {
  for (char c : text) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

const char* KeyName(KeyType type) {
  switch (type) {
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kEcP256:
      return "ECDSA P-256";
    case KeyType::kEcP384:
      return "ECDSA P-384";
    case KeyType::kEcP521:
      return "ECDSA P-521";
    case KeyType::kEd25519:
      return "Ed25519";
  }
  return "unknown";
}

}  // namespace

absl::Status VerifyAuthSignature(const crypto::PublicKey& key,
                                 uint32_t auth_method,
                                 crypto::ByteSpan signed_octets,
                                 crypto::ByteSpan auth_data) {
  SignatureScheme scheme;
  crypto::ByteSpan signature = auth_data;
  auto need = [&](KeyType type) -> absl::Status {
    if (key.type() == type) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("AUTH method ", auth_method, " needs a ", KeyName(type),
                     " key, the certificate has ", KeyName(key.type())));
  };
  switch (auth_method) {
    case crypto::auth_method::kRsaSignature:
      if (absl::Status s = need(KeyType::kRsa); !s.ok()) return s;
      scheme = SignatureScheme::kRsaPkcs1Sha1;
      break;
    case crypto::auth_method::kEcdsaSha256P256:
      if (absl::Status s = need(KeyType::kEcP256); !s.ok()) return s;
      scheme = SignatureScheme::kEcdsaP256Sha256Raw;
      break;
    case crypto::auth_method::kEcdsaSha384P384:
      if (absl::Status s = need(KeyType::kEcP384); !s.ok()) return s;
      scheme = SignatureScheme::kEcdsaP384Sha384Raw;
      break;
    case crypto::auth_method::kEcdsaSha512P521:
      if (absl::Status s = need(KeyType::kEcP521); !s.ok()) return s;
      scheme = SignatureScheme::kEcdsaP521Sha512Raw;
      break;
    case crypto::auth_method::kDigitalSignature: {
      // RFC 7427 §3: 1-octet length, AlgorithmIdentifier, signature.
      if (auth_data.empty() || auth_data.size() < 1 + size_t{auth_data[0]}) {
        return absl::InvalidArgumentError(
            "AUTH data too short for its RFC 7427 AlgorithmIdentifier");
      }
      const size_t length = auth_data[0];
      absl::StatusOr<SignatureScheme> parsed =
          crypto::SignatureSchemeFromAlgorithmIdentifier(
              auth_data.subspan(1, length));
      if (!parsed.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unsupported RFC 7427 signature algorithm: ",
                         parsed.status().message()));
      }
      scheme = *parsed;
      signature = auth_data.subspan(1 + length);
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "AUTH method ", auth_method, " is not a certificate signature"));
  }
  if (signature.empty()) {
    return absl::InvalidArgumentError("AUTH data holds no signature");
  }
  if (absl::Status s = key.Verify(scheme, signed_octets, signature); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AUTH signature does not verify with the certificate's key: ",
        s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CertValidator>> CertValidator::Load(
    const crypto::Provider& provider, const std::string& cas_pem,
    const std::vector<std::string>& crls) {
  std::string crl_pem;
  if (crls.size() == 1) {
    crl_pem = crls[0];
  } else {
    for (const std::string& crl : crls) crl_pem += CrlToPem(crl);
  }
  absl::StatusOr<std::unique_ptr<crypto::TrustStore>> trust =
      provider.NewTrustStore(cas_pem, crl_pem);
  if (!trust.ok()) return trust.status();
  std::vector<crypto::Bytes> hashes;
  absl::StatusOr<std::vector<std::unique_ptr<crypto::Certificate>>> cas =
      provider.ParseCertificatesPem(cas_pem);
  if (cas.ok()) {
    for (const auto& ca : *cas) {
      const crypto::Bytes spki = ca->public_key()->spki_der();
      const crypto::ByteSpan parts[] = {spki};
      hashes.push_back(provider.Hash(crypto::HashAlgorithm::kSha1, parts));
    }
  }
  return std::unique_ptr<CertValidator>(
      new CertValidator(provider, *std::move(trust), std::move(hashes)));
}

ValidationResult CertValidator::Validate(const CertificateAuth& auth,
                                         absl::Time now) const {
  ValidationResult result;
  auto invalid = [&result](std::string reason) {
    result.valid = false;
    result.reason = std::move(reason);
    return result;
  };
  if (auth.chain_der.empty()) return invalid("no certificate");
  if (auth.chain_der.size() > kMaxChainLength) {
    return invalid(absl::StrCat("certificate chain longer than ",
                                kMaxChainLength));
  }
  std::vector<std::unique_ptr<crypto::Certificate>> certs;
  for (size_t i = 0; i < auth.chain_der.size(); ++i) {
    auto cert = provider_.ParseCertificateDer(auth.chain_der[i]);
    if (!cert.ok()) {
      return invalid(absl::StrCat("certificate ", i, " does not parse: ",
                                  cert.status().message()));
    }
    certs.push_back(*std::move(cert));
  }
  const crypto::Certificate& leaf = *certs.front();
  result.subject = leaf.subject();

  crypto::VerifyOptions options;
  options.time = now;
  options.acceptable_ekus = {crypto::ExtendedKeyUsage::kClientAuth,
                             crypto::ExtendedKeyUsage::kIpsecIke,
                             crypto::ExtendedKeyUsage::kIkeIntermediate};
  options.require_eku_extension = false;
  const std::string identity = AsString(auth.identity);
  switch (auth.identity_type) {
    case id_type::kIpv4Addr:
      if (auth.identity.size() != 4) {
        return invalid("ID_IPV4_ADDR identity is not 4 bytes");
      }
      options.ip_address.assign(auth.identity.begin(), auth.identity.end());
      break;
    case id_type::kIpv6Addr:
      if (auth.identity.size() != 16) {
        return invalid("ID_IPV6_ADDR identity is not 16 bytes");
      }
      options.ip_address.assign(auth.identity.begin(), auth.identity.end());
      break;
    case id_type::kFqdn:
      if (identity.empty() || !IsPrintable(identity)) {
        return invalid("ID_FQDN identity is empty or not printable");
      }
      options.dns_name = identity;
      break;
    case id_type::kRfc822Addr:
      if (identity.empty() || !IsPrintable(identity)) {
        return invalid("ID_RFC822_ADDR identity is empty or not printable");
      }
      options.email = identity;
      break;
    case id_type::kDerAsn1Dn:
      if (leaf.subject_der() != crypto::Bytes(auth.identity.begin(),
                                              auth.identity.end())) {
        return invalid(absl::StrCat(
            "ID_DER_ASN1_DN identity does not equal the certificate subject ",
            result.subject));
      }
      break;
    default:
      return invalid(absl::StrCat("identity type ", auth.identity_type,
                                  " is not supported for certificates"));
  }

  std::vector<const crypto::Certificate*> intermediates;
  for (size_t i = 1; i < certs.size(); ++i) intermediates.push_back(certs[i].get());
  if (absl::Status s = trust_->Verify(leaf, intermediates, options); !s.ok()) {
    return invalid(absl::StrCat("certificate not accepted: ", s.message()));
  }

  std::unique_ptr<crypto::PublicKey> key = leaf.public_key();
  if (key == nullptr) return invalid("certificate has no usable public key");
  if (absl::Status s = VerifyAuthSignature(*key, auth.auth_method,
                                           auth.signed_octets, auth.auth_data);
      !s.ok()) {
    return invalid(std::string(s.message()));
  }
  result.valid = true;
  return result;
}

}  // namespace vpn::auth
