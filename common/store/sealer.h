// Seals keying material before a record reaches any store backend.
//
// Blob format (all fields fixed size, big endian):
//   version (1 byte, = 2) || key id (4 bytes) || nonce (12 random bytes) ||
//   AES-256-GCM ciphertext || 16-byte tag
// The AAD binds the blob to the header, the record key it is stored under
// and `bound`: the caller's canonical encoding of the rest of the record
// (SealInto below: the whole record but its blob), so a blob copied into
// another record, or a record edited around its blob, fails to open.
// Version 1 blobs (AAD: the record key only) no longer open.
//
// The same key also yields, by a derivation separate from sealing, a MAC key
// for path tags (sa_seal.h): evidence that a holder of the key authorized
// an SA's endpoints, which a writer without the key copies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto/crypto.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace vpn::store {

class Sealer {
 public:
  static constexpr uint8_t kFormatVersion = 2;
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  static constexpr size_t kHeaderSize = 1 + 4 + kNonceSize;
  static constexpr size_t kPathTagSize = 16;

  // Reads the 32-byte sealing key from `path` (a mounted Kubernetes Secret in
  // production). Rejects a file that is not a regular file, is not exactly 32
  // bytes, or is readable/writable by group or others (mode looser than
  // 0600). Error messages name the file, never the key.
  static absl::StatusOr<std::unique_ptr<Sealer>> FromKeyFile(
      const std::string& path, uint32_t key_id = 1);
  static absl::StatusOr<std::unique_ptr<Sealer>> FromKey(crypto::ByteSpan key,
                                                         uint32_t key_id = 1);

  // Seals `plaintext` for the record stored under `record_key` whose other
  // authenticated fields encode to `bound`.
  absl::StatusOr<std::string> Seal(absl::string_view record_key,
                                   absl::string_view plaintext,
                                   absl::string_view bound = {}) const;
  // Opens a blob made by Seal() for the same record key and `bound`.
  // kDataLoss for a truncated, tampered or moved blob or a changed `bound`;
  // kFailedPrecondition for a blob sealed with another key id or format
  // version.
  absl::StatusOr<std::string> Open(absl::string_view record_key,
                                   absl::string_view blob,
                                   absl::string_view bound = {}) const;

  // A kPathTagSize-byte MAC over the concatenation of `parts`, under the
  // path key (HMAC-SHA-256-128; the key is prf+(sealing key, a label), so a
  // tag is never a seal or the other way round).
  absl::Status PathTag(absl::Span<const crypto::ByteSpan> parts,
                       crypto::MutableByteSpan tag) const;
  // Constant-time; false for a wrong tag or one of the wrong size.
  bool VerifyPathTag(absl::Span<const crypto::ByteSpan> parts,
                     crypto::ByteSpan tag) const;

  uint32_t key_id() const { return key_id_; }

 private:
  Sealer(std::unique_ptr<crypto::Aead> aead, std::unique_ptr<crypto::Mac> path_mac,
         uint32_t key_id)
      : aead_(std::move(aead)), path_mac_(std::move(path_mac)), key_id_(key_id) {}

  std::unique_ptr<crypto::Aead> aead_;
  std::unique_ptr<crypto::Mac> path_mac_;
  uint32_t key_id_;
};

// The canonical encoding of `record` for the AAD: a copy with the blob (and
// whatever `clear` clears) removed, serialized deterministically. Fields are
// written in field-number order and unknown fields as they were read, so
// every reader of the same bytes computes the same encoding.
template <typename Record, typename Clear>
std::string BoundEncoding(const Record& record, Clear clear) {
  Record copy = record;
  copy.clear_sealed_keys();
  clear(&copy);
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    copy.SerializeToCodedStream(&coded);
  }
  return out;
}

template <typename Record>
std::string BoundEncoding(const Record& record) {
  return BoundEncoding(record, [](Record*) {});
}

// Record helpers for protobuf records with a `bytes sealed_keys` field.
// SealInto serializes `secret` (a message holding the keying material), seals
// it for `record_key` and every other field of `record` (`bound`: its
// BoundEncoding; SA records clear the fields a writer without the key may
// change, sa_seal.h) and stores the blob in record->sealed_keys(). Call it
// after the record's last change.
template <typename Secret, typename Record>
absl::Status SealInto(const Sealer& sealer, absl::string_view record_key,
                      const Secret& secret, Record* record,
                      absl::string_view bound) {
  std::string plain;
  if (!secret.SerializeToString(&plain)) {
    return absl::InvalidArgumentError("sealer: cannot serialize secret");
  }
  absl::StatusOr<std::string> blob = sealer.Seal(record_key, plain, bound);
  crypto::SecureZero(plain.data(), plain.size());
  if (!blob.ok()) return blob.status();
  record->set_sealed_keys(*std::move(blob));
  return absl::OkStatus();
}
template <typename Secret, typename Record>
absl::Status SealInto(const Sealer& sealer, absl::string_view record_key,
                      const Secret& secret, Record* record) {
  return SealInto(sealer, record_key, secret, record, BoundEncoding(*record));
}

// The inverse of SealInto. kDataLoss if the blob does not open (the record
// was changed around it) or parse.
template <typename Secret, typename Record>
absl::StatusOr<Secret> OpenFrom(const Sealer& sealer,
                                absl::string_view record_key,
                                const Record& record, absl::string_view bound) {
  absl::StatusOr<std::string> plain =
      sealer.Open(record_key, record.sealed_keys(), bound);
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
template <typename Secret, typename Record>
absl::StatusOr<Secret> OpenFrom(const Sealer& sealer,
                                absl::string_view record_key,
                                const Record& record) {
  return OpenFrom<Secret>(sealer, record_key, record, BoundEncoding(record));
}

}  // namespace vpn::store
