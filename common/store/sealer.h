// Seals keying material before a record reaches any store backend.
//
// Blob format (all fields fixed size, big endian):
//   version (1 byte, = 1) || key id (4 bytes) || nonce (12 random bytes) ||
//   AES-256-GCM ciphertext || 16-byte tag
// The AAD binds the blob to the record key it is stored under (and to the
// header), so a blob copied into another record fails to open.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/crypto.h"

namespace vpn::store {

class Sealer {
 public:
  static constexpr uint8_t kFormatVersion = 1;
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  static constexpr size_t kHeaderSize = 1 + 4 + kNonceSize;

  // Reads the 32-byte sealing key from `path` (a mounted Kubernetes Secret in
  // production). Rejects a file that is not a regular file, is not exactly 32
  // bytes, or is readable/writable by group or others (mode looser than
  // 0600). Error messages name the file, never the key.
  static absl::StatusOr<std::unique_ptr<Sealer>> FromKeyFile(
      const std::string& path, uint32_t key_id = 1);
  static absl::StatusOr<std::unique_ptr<Sealer>> FromKey(crypto::ByteSpan key,
                                                         uint32_t key_id = 1);

  // Seals `plaintext` for the record stored under `record_key`.
  absl::StatusOr<std::string> Seal(absl::string_view record_key,
                                   absl::string_view plaintext) const;
  // Opens a blob made by Seal() for the same record key. kDataLoss for a
  // truncated, tampered or moved blob; kFailedPrecondition for a blob sealed
  // with another key id or format version.
  absl::StatusOr<std::string> Open(absl::string_view record_key,
                                   absl::string_view blob) const;

  uint32_t key_id() const { return key_id_; }

 private:
  Sealer(std::unique_ptr<crypto::Aead> aead, uint32_t key_id)
      : aead_(std::move(aead)), key_id_(key_id) {}

  std::unique_ptr<crypto::Aead> aead_;
  uint32_t key_id_;
};

// Record helpers for protobuf records with a `bytes sealed_keys` field.
// SealInto serializes `secret` (a message holding the keying material), seals
// it for `record_key` and stores the blob in record->sealed_keys().
template <typename Secret, typename Record>
absl::Status SealInto(const Sealer& sealer, absl::string_view record_key,
                      const Secret& secret, Record* record) {
  std::string plain;
  if (!secret.SerializeToString(&plain)) {
    return absl::InvalidArgumentError("sealer: cannot serialize secret");
  }
  absl::StatusOr<std::string> blob = sealer.Seal(record_key, plain);
  crypto::SecureZero(plain.data(), plain.size());
  if (!blob.ok()) return blob.status();
  record->set_sealed_keys(*std::move(blob));
  return absl::OkStatus();
}

// The inverse of SealInto. kDataLoss if the blob does not open or parse.
template <typename Secret, typename Record>
absl::StatusOr<Secret> OpenFrom(const Sealer& sealer,
                                absl::string_view record_key,
                                const Record& record) {
  absl::StatusOr<std::string> plain = sealer.Open(record_key, record.sealed_keys());
  if (!plain.ok()) return plain.status();
  Secret secret;
  bool parsed = secret.ParseFromString(*plain);
  crypto::SecureZero(plain->data(), plain->size());
  if (!parsed) {
    return absl::DataLossError(std::string("sealer: sealed keys of '") +
                               std::string(record_key) + "' do not parse");
  }
  return secret;
}

}  // namespace vpn::store
