#include "ike-service/sa/keymat.h"

namespace vpn::ike {
namespace {

constexpr char kKeyPad[] = "Key Pad for IKEv2";  // RFC 7296 §2.15, no NUL

// Hands out consecutive slices of a prf+ output, in the order §2.14 and
// §2.17 take them.
class KeyStream {
 public:
  explicit KeyStream(crypto::SecretBytes stream) : stream_(std::move(stream)) {}
  crypto::SecretBytes Take(size_t length) {
    crypto::SecretBytes part = stream_.Slice(offset_, length);
    offset_ += length;
    return part;
  }

 private:
  crypto::SecretBytes stream_;
  size_t offset_ = 0;
};

void AppendSpi(uint64_t spi, crypto::Bytes* out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<uint8_t>(spi >> shift));
  }
}

absl::StatusOr<IkeSaKeys> ExpandIkeSaKeys(const ipsec::TransformSet& transforms,
                                          const crypto::SecretBytes& skeyseed,
                                          crypto::ByteSpan nonce_i,
                                          crypto::ByteSpan nonce_r, uint64_t spi_i,
                                          uint64_t spi_r) {
  absl::StatusOr<ipsec::KeySizes> sizes = ipsec::KeySizesFor(transforms);
  if (!sizes.ok()) return sizes.status();
  absl::StatusOr<crypto::PrfAlgorithm> prf_algorithm =
      ipsec::PrfAlgorithmFor(transforms.prf);
  if (!prf_algorithm.ok()) return prf_algorithm.status();
  absl::StatusOr<std::unique_ptr<crypto::Prf>> prf =
      crypto::GetProvider().NewPrf(*prf_algorithm, skeyseed.span());
  if (!prf.ok()) return prf.status();

  crypto::Bytes seed(nonce_i.begin(), nonce_i.end());
  seed.insert(seed.end(), nonce_r.begin(), nonce_r.end());
  AppendSpi(spi_i, &seed);
  AppendSpi(spi_r, &seed);
  const size_t total = 3 * sizes->prf_output + 2 * sizes->integrity_key +
                       2 * sizes->encryption_key;
  absl::StatusOr<crypto::SecretBytes> stream = (*prf)->PrfPlus(seed, total);
  if (!stream.ok()) return stream.status();

  KeyStream take(std::move(*stream));
  IkeSaKeys keys;
  keys.sk_d = take.Take(sizes->prf_output);
  keys.sk_ai = take.Take(sizes->integrity_key);
  keys.sk_ar = take.Take(sizes->integrity_key);
  keys.sk_ei = take.Take(sizes->encryption_key);
  keys.sk_er = take.Take(sizes->encryption_key);
  keys.sk_pi = take.Take(sizes->prf_output);
  keys.sk_pr = take.Take(sizes->prf_output);
  return keys;
}

}  // namespace

absl::StatusOr<IkeSaKeys> DeriveIkeSaKeys(const ipsec::TransformSet& transforms,
                                          crypto::ByteSpan nonce_i,
                                          crypto::ByteSpan nonce_r,
                                          crypto::ByteSpan shared_secret,
                                          uint64_t spi_i, uint64_t spi_r) {
  absl::StatusOr<crypto::PrfAlgorithm> prf_algorithm =
      ipsec::PrfAlgorithmFor(transforms.prf);
  if (!prf_algorithm.ok()) return prf_algorithm.status();
  // HMAC PRFs take Ni | Nr whole as the key (§2.14).
  crypto::Bytes nonces(nonce_i.begin(), nonce_i.end());
  nonces.insert(nonces.end(), nonce_r.begin(), nonce_r.end());
  absl::StatusOr<std::unique_ptr<crypto::Prf>> prf =
      crypto::GetProvider().NewPrf(*prf_algorithm, nonces);
  if (!prf.ok()) return prf.status();
  const crypto::SecretBytes skeyseed = (*prf)->Compute(shared_secret);
  return ExpandIkeSaKeys(transforms, skeyseed, nonce_i, nonce_r, spi_i, spi_r);
}

absl::StatusOr<IkeSaKeys> DeriveRekeyedIkeSaKeys(
    uint16_t old_prf, crypto::ByteSpan old_sk_d,
    const ipsec::TransformSet& transforms, crypto::ByteSpan nonce_i,
    crypto::ByteSpan nonce_r, crypto::ByteSpan shared_secret, uint64_t spi_i,
    uint64_t spi_r) {
  absl::StatusOr<crypto::PrfAlgorithm> prf_algorithm = ipsec::PrfAlgorithmFor(old_prf);
  if (!prf_algorithm.ok()) return prf_algorithm.status();
  absl::StatusOr<std::unique_ptr<crypto::Prf>> prf =
      crypto::GetProvider().NewPrf(*prf_algorithm, old_sk_d);
  if (!prf.ok()) return prf.status();
  crypto::SecretBytes skeyseed((*prf)->output_size());
  const crypto::ByteSpan parts[] = {shared_secret, nonce_i, nonce_r};
  if (absl::Status s = (*prf)->Compute(parts, skeyseed.mutable_span()); !s.ok()) {
    return s;
  }
  return ExpandIkeSaKeys(transforms, skeyseed, nonce_i, nonce_r, spi_i, spi_r);
}

absl::StatusOr<ChildSaKeys> DeriveChildSaKeys(
    uint16_t ike_prf, crypto::ByteSpan sk_d, const ipsec::TransformSet& esp,
    crypto::ByteSpan shared_secret, crypto::ByteSpan nonce_i,
    crypto::ByteSpan nonce_r) {
  absl::StatusOr<ipsec::KeySizes> sizes = ipsec::KeySizesFor(esp);
  if (!sizes.ok()) return sizes.status();
  absl::StatusOr<crypto::PrfAlgorithm> prf_algorithm = ipsec::PrfAlgorithmFor(ike_prf);
  if (!prf_algorithm.ok()) return prf_algorithm.status();
  absl::StatusOr<std::unique_ptr<crypto::Prf>> prf =
      crypto::GetProvider().NewPrf(*prf_algorithm, sk_d);
  if (!prf.ok()) return prf.status();
  crypto::Bytes seed(shared_secret.begin(), shared_secret.end());
  seed.insert(seed.end(), nonce_i.begin(), nonce_i.end());
  seed.insert(seed.end(), nonce_r.begin(), nonce_r.end());
  absl::StatusOr<crypto::SecretBytes> keymat = (*prf)->PrfPlus(
      seed, 2 * (sizes->encryption_key + sizes->integrity_key));
  crypto::SecureZero(seed.data(), seed.size());
  if (!keymat.ok()) return keymat.status();
  KeyStream take(std::move(*keymat));
  ChildSaKeys keys;
  keys.encryption_i = take.Take(sizes->encryption_key);
  keys.integrity_i = take.Take(sizes->integrity_key);
  keys.encryption_r = take.Take(sizes->encryption_key);
  keys.integrity_r = take.Take(sizes->integrity_key);
  return keys;
}

absl::StatusOr<crypto::Bytes> SharedKeyAuth(uint16_t prf, crypto::ByteSpan secret,
                                            crypto::ByteSpan signed_octets) {
  absl::StatusOr<crypto::PrfAlgorithm> algorithm = ipsec::PrfAlgorithmFor(prf);
  if (!algorithm.ok()) return algorithm.status();
  absl::StatusOr<std::unique_ptr<crypto::Prf>> outer =
      crypto::GetProvider().NewPrf(*algorithm, secret);
  if (!outer.ok()) return outer.status();
  const crypto::SecretBytes pad_key = (*outer)->Compute(crypto::ByteSpan(
      reinterpret_cast<const uint8_t*>(kKeyPad), sizeof(kKeyPad) - 1));
  absl::StatusOr<std::unique_ptr<crypto::Prf>> inner =
      crypto::GetProvider().NewPrf(*algorithm, pad_key.span());
  if (!inner.ok()) return inner.status();
  const crypto::SecretBytes auth = (*inner)->Compute(signed_octets);
  return crypto::Bytes(auth.span().begin(), auth.span().end());
}

absl::StatusOr<crypto::SecretBytes> MacedId(uint16_t prf, crypto::ByteSpan sk_p,
                                            crypto::ByteSpan id_body) {
  absl::StatusOr<crypto::PrfAlgorithm> algorithm = ipsec::PrfAlgorithmFor(prf);
  if (!algorithm.ok()) return algorithm.status();
  absl::StatusOr<std::unique_ptr<crypto::Prf>> mac =
      crypto::GetProvider().NewPrf(*algorithm, sk_p);
  if (!mac.ok()) return mac.status();
  return (*mac)->Compute(id_body);
}

absl::StatusOr<crypto::Bytes> SignedOctets(uint16_t prf, crypto::ByteSpan real_message,
                                           crypto::ByteSpan nonce, crypto::ByteSpan sk_p,
                                           crypto::ByteSpan id_body) {
  absl::StatusOr<crypto::SecretBytes> maced_id = MacedId(prf, sk_p, id_body);
  if (!maced_id.ok()) return maced_id.status();
  crypto::Bytes octets(real_message.begin(), real_message.end());
  octets.insert(octets.end(), nonce.begin(), nonce.end());
  octets.insert(octets.end(), maced_id->span().begin(), maced_id->span().end());
  return octets;
}

}  // namespace vpn::ike
