#include "common/ipsec/transforms.h"

#include "absl/strings/str_cat.h"

namespace vpn::ipsec {
namespace {

using crypto::transform::kEncr3Des;
using crypto::transform::kEncrAesCbc;
using crypto::transform::kEncrAesGcm16;
using crypto::transform::kEncrChaCha20Poly1305;

std::string EncryptionName(const TransformSet& t) {
  switch (t.encryption) {
    case kEncr3Des:
      return "3des";
    case kEncrAesCbc:
      return absl::StrCat("aes", t.encryption_key_bits);
    case kEncrAesGcm16:
      return absl::StrCat("aes", t.encryption_key_bits, "gcm16");
    case kEncrChaCha20Poly1305:
      return "chacha20poly1305";
  }
  return absl::StrCat("encr", t.encryption);
}

}  // namespace

bool TransformSet::is_aead() const {
  return encryption == kEncrAesGcm16 || encryption == kEncrChaCha20Poly1305;
}

std::string TransformSet::ToString() const {
  std::string name = EncryptionName(*this);
  static constexpr const char* kIntegrity[] = {
      nullptr, "md5", "sha1", nullptr, nullptr, nullptr, nullptr,
      nullptr, nullptr, nullptr, nullptr, nullptr, "sha256", "sha384", "sha512"};
  if (integrity > 0 && integrity < 15 && kIntegrity[integrity] != nullptr) {
    absl::StrAppend(&name, "-", kIntegrity[integrity]);
  }
  static constexpr const char* kPrf[] = {nullptr,      nullptr,      "prfsha1",
                                         nullptr,      nullptr,      "prfsha256",
                                         "prfsha384",  "prfsha512"};
  if (prf > 0 && prf < 8 && kPrf[prf] != nullptr) absl::StrAppend(&name, "-", kPrf[prf]);
  switch (key_exchange) {
    case 0:
      break;
    case 2:
      absl::StrAppend(&name, "-modp1024");
      break;
    case 14:
      absl::StrAppend(&name, "-modp2048");
      break;
    case 15:
      absl::StrAppend(&name, "-modp3072");
      break;
    case 19:
      absl::StrAppend(&name, "-ecp256");
      break;
    case 20:
      absl::StrAppend(&name, "-ecp384");
      break;
    case 31:
      absl::StrAppend(&name, "-x25519");
      break;
    default:
      absl::StrAppend(&name, "-ke", key_exchange);
  }
  if (esn == 1) absl::StrAppend(&name, "-esn");
  return name;
}

absl::StatusOr<crypto::PrfAlgorithm> PrfAlgorithmFor(uint16_t prf_id) {
  switch (prf_id) {
    case 2:
      return crypto::PrfAlgorithm::kHmacSha1;
    case 5:
      return crypto::PrfAlgorithm::kHmacSha256;
    case 6:
      return crypto::PrfAlgorithm::kHmacSha384;
    case 7:
      return crypto::PrfAlgorithm::kHmacSha512;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported PRF ", prf_id));
}

absl::StatusOr<crypto::IntegrityAlgorithm> IntegrityAlgorithmFor(uint16_t integ_id) {
  switch (integ_id) {
    case 2:
      return crypto::IntegrityAlgorithm::kHmacSha1_96;
    case 12:
      return crypto::IntegrityAlgorithm::kHmacSha256_128;
    case 13:
      return crypto::IntegrityAlgorithm::kHmacSha384_192;
    case 14:
      return crypto::IntegrityAlgorithm::kHmacSha512_256;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported integrity algorithm ", integ_id));
}

absl::StatusOr<crypto::KeyExchangeGroup> KeyExchangeGroupFor(uint16_t group_id) {
  switch (group_id) {
    case 2:
      return crypto::KeyExchangeGroup::kModp1024;
    case 14:
      return crypto::KeyExchangeGroup::kModp2048;
    case 15:
      return crypto::KeyExchangeGroup::kModp3072;
    case 19:
      return crypto::KeyExchangeGroup::kEcp256;
    case 20:
      return crypto::KeyExchangeGroup::kEcp384;
    case 31:
      return crypto::KeyExchangeGroup::kCurve25519;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported key exchange group ", group_id));
}

absl::StatusOr<crypto::AeadAlgorithm> AeadAlgorithmFor(const TransformSet& t) {
  if (t.encryption == kEncrChaCha20Poly1305) return crypto::AeadAlgorithm::kChaCha20Poly1305;
  if (t.encryption == kEncrAesGcm16 && t.encryption_key_bits == 128) {
    return crypto::AeadAlgorithm::kAes128Gcm16;
  }
  if (t.encryption == kEncrAesGcm16 && t.encryption_key_bits == 256) {
    return crypto::AeadAlgorithm::kAes256Gcm16;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no AEAD for ", EncryptionName(t)));
}

absl::StatusOr<crypto::CbcAlgorithm> CbcAlgorithmFor(const TransformSet& t) {
  if (t.encryption == kEncr3Des) return crypto::CbcAlgorithm::k3DesCbc;
  if (t.encryption == kEncrAesCbc) {
    switch (t.encryption_key_bits) {
      case 128:
        return crypto::CbcAlgorithm::kAes128Cbc;
      case 192:
        return crypto::CbcAlgorithm::kAes192Cbc;
      case 256:
        return crypto::CbcAlgorithm::kAes256Cbc;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no CBC cipher for ", EncryptionName(t)));
}

absl::StatusOr<KeySizes> KeySizesFor(const TransformSet& t) {
  KeySizes sizes;
  switch (t.encryption) {
    case kEncr3Des:
      if (t.encryption_key_bits != 0) {
        return absl::InvalidArgumentError("3DES takes no Key Length attribute");
      }
      sizes.encryption_key = 24;
      break;
    case kEncrAesCbc:
    case kEncrAesGcm16:
      if (t.encryption_key_bits != 128 && t.encryption_key_bits != 192 &&
          t.encryption_key_bits != 256) {
        return absl::InvalidArgumentError(absl::StrCat(
            "AES key length must be 128, 192 or 256 bits, not ", t.encryption_key_bits));
      }
      if (t.encryption == kEncrAesGcm16 && t.encryption_key_bits == 192) {
        return absl::InvalidArgumentError("AES-GCM-192 is not supported");
      }
      sizes.encryption_key = t.encryption_key_bits / 8;
      if (t.encryption == kEncrAesGcm16) sizes.encryption_key += 4;  // salt
      break;
    case kEncrChaCha20Poly1305:
      sizes.encryption_key = 32 + 4;  // key + salt (RFC 7634)
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported encryption algorithm ", t.encryption));
  }
  if (t.is_aead()) {
    if (t.integrity != 0) {
      return absl::InvalidArgumentError("an AEAD cipher takes no integrity algorithm");
    }
  } else if (t.integrity != 0) {
    switch (t.integrity) {
      case 2:
        sizes.integrity_key = 20;
        break;
      case 12:
        sizes.integrity_key = 32;
        break;
      case 13:
        sizes.integrity_key = 48;
        break;
      case 14:
        sizes.integrity_key = 64;
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unsupported integrity algorithm ", t.integrity));
    }
  }
  if (t.prf != 0) {
    absl::StatusOr<size_t> prf_output = PrfOutputSize(t.prf);
    if (!prf_output.ok()) return prf_output.status();
    sizes.prf_output = *prf_output;
  }
  return sizes;
}

absl::StatusOr<size_t> PrfOutputSize(uint16_t prf_id) {
  switch (prf_id) {
    case 2:
      return 20;
    case 5:
      return 32;
    case 6:
      return 48;
    case 7:
      return 64;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported PRF ", prf_id));
  }
}

}  // namespace vpn::ipsec
