#include "common/store/sealer.h"

#include "common/config/secret_mode.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vpn::store {
namespace {

constexpr absl::string_view kAadLabel = "vpn-store-sealed-v2";
// The path key's derivation label: a different PRF input than anything
// sealed, so the two uses of the sealing key stay apart.
constexpr absl::string_view kPathKeyLabel = "vpn-store path tag key v1";

// label || header || u32 length of the record key || record key || bound.
// The length keeps a key/bound split from being moved.
std::string Aad(absl::string_view header, absl::string_view record_key,
                absl::string_view bound) {
  const uint32_t n = static_cast<uint32_t>(record_key.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  return absl::StrCat(kAadLabel, header, absl::string_view(len, 4), record_key,
                      bound);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Sealer>> Sealer::FromKeyFile(
    const std::string& path, uint32_t key_id) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sealing key file ", path, ": cannot open: ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("sealing key file ", path, ": stat: ", strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("sealing key file ", path, " is not a regular file"));
  }
  if (absl::Status mode = config::CheckSecretMode(st); !mode.ok()) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("sealing key file ", path, ": ", mode.message()));
  }
  if (st.st_size != static_cast<off_t>(kKeySize)) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("sealing key file ", path, " holds ", st.st_size,
                     " bytes; it must hold exactly ", kKeySize,
                     " raw bytes (an AES-256 key)"));
  }
  uint8_t key[kKeySize];
  size_t got = 0;
  while (got < kKeySize) {
    ssize_t n = read(fd, key + got, kKeySize - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  if (got != kKeySize) {
    crypto::SecureZero(key, sizeof(key));
    return absl::FailedPreconditionError(absl::StrCat(
        "sealing key file ", path, ": short read (", got, " bytes)"));
  }
  auto sealer = FromKey(crypto::ByteSpan(key, kKeySize), key_id);
  crypto::SecureZero(key, sizeof(key));
  return sealer;
}

absl::StatusOr<std::unique_ptr<Sealer>> Sealer::FromKey(crypto::ByteSpan key,
                                                        uint32_t key_id) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sealing key must be ", kKeySize, " bytes, got ", key.size()));
  }
  const crypto::Provider& provider = crypto::GetProvider();
  absl::StatusOr<std::unique_ptr<crypto::Aead>> aead =
      provider.NewAead(crypto::AeadAlgorithm::kAes256Gcm16, key);
  if (!aead.ok()) return aead.status();
  absl::StatusOr<std::unique_ptr<crypto::Prf>> prf =
      provider.NewPrf(crypto::PrfAlgorithm::kHmacSha256, key);
  if (!prf.ok()) return prf.status();
  absl::StatusOr<crypto::SecretBytes> path_key =
      (*prf)->PrfPlus(crypto::AsBytes(kPathKeyLabel), kKeySize);  // zeroed when it goes
  if (!path_key.ok()) return path_key.status();
  absl::StatusOr<std::unique_ptr<crypto::Mac>> path_mac = provider.NewMac(
      crypto::IntegrityAlgorithm::kHmacSha256_128, path_key->span());
  if (!path_mac.ok()) return path_mac.status();
  return std::unique_ptr<Sealer>(
      new Sealer(*std::move(aead), *std::move(path_mac), key_id));
}

absl::Status Sealer::PathTag(absl::Span<const crypto::ByteSpan> parts,
                             crypto::MutableByteSpan tag) const {
  if (tag.size() != kPathTagSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("path tag must be ", kPathTagSize, " bytes"));
  }
  return path_mac_->Compute(parts, tag);
}

bool Sealer::VerifyPathTag(absl::Span<const crypto::ByteSpan> parts,
                           crypto::ByteSpan tag) const {
  return tag.size() == kPathTagSize && path_mac_->Verify(parts, tag);
}

absl::StatusOr<std::string> Sealer::Seal(absl::string_view record_key,
                                         absl::string_view plaintext,
                                         absl::string_view bound) const {
  std::string header(kHeaderSize, '\0');
  header[0] = static_cast<char>(kFormatVersion);
  for (int i = 0; i < 4; ++i) {
    header[1 + i] = static_cast<char>((key_id_ >> (24 - 8 * i)) & 0xff);
  }
  crypto::GetProvider().RandomBytes(absl::Span<uint8_t>(
      reinterpret_cast<uint8_t*>(&header[5]), kNonceSize));
  std::string aad = Aad(header, record_key, bound);
  absl::StatusOr<crypto::Bytes> sealed = aead_->Seal(
      crypto::AsBytes(absl::string_view(header).substr(5, kNonceSize)),
      crypto::AsBytes(plaintext), crypto::AsBytes(aad));
  if (!sealed.ok()) return sealed.status();
  std::string out = header;
  out.append(reinterpret_cast<const char*>(sealed->data()), sealed->size());
  return out;
}

absl::StatusOr<std::string> Sealer::Open(absl::string_view record_key,
                                         absl::string_view blob,
                                         absl::string_view bound) const {
  if (blob.size() < kHeaderSize + kTagSize) {
    return absl::DataLossError(
        absl::StrCat("sealed blob of '", record_key, "' is truncated (",
                     blob.size(), " bytes)"));
  }
  if (static_cast<uint8_t>(blob[0]) != kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("sealed blob of '", record_key, "' has format version ",
                     static_cast<uint8_t>(blob[0]), ", expected ",
                     kFormatVersion));
  }
  uint32_t key_id = 0;
  for (int i = 0; i < 4; ++i) {
    key_id = (key_id << 8) | static_cast<uint8_t>(blob[1 + i]);
  }
  if (key_id != key_id_) {
    return absl::FailedPreconditionError(
        absl::StrCat("sealed blob of '", record_key, "' was sealed with key id ",
                     key_id, ", this sealer has key id ", key_id_));
  }
  std::string aad = Aad(blob.substr(0, kHeaderSize), record_key, bound);
  absl::StatusOr<crypto::Bytes> plain =
      aead_->Open(crypto::AsBytes(blob.substr(5, kNonceSize)),
                  crypto::AsBytes(blob.substr(kHeaderSize)), crypto::AsBytes(aad));
  if (!plain.ok()) {
    return absl::DataLossError(absl::StrCat(
        "sealed blob of '", record_key,
        "' failed authentication (the record was changed around it, or the "
        "blob moved from another record)"));
  }
  std::string out(reinterpret_cast<const char*>(plain->data()), plain->size());
  crypto::SecureZero(plain->data(), plain->size());
  return out;
}

}  // namespace vpn::store
