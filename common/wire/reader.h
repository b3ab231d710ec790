#pragma once

// Bounds-checked big-endian byte reader and writer. The reader never reads
// past its span: every Read* returns false and leaves the position unchanged
// when too few bytes remain.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace vpn::wire {

class Reader {
 public:
  explicit Reader(absl::Span<const uint8_t> data) : data_(data) {}

  size_t remaining() const { return data_.size() - offset_; }
  size_t offset() const { return offset_; }
  bool empty() const { return remaining() == 0; }

  bool ReadU8(uint8_t* value);
  bool ReadU16(uint16_t* value);
  bool ReadU32(uint32_t* value);
  bool ReadU64(uint64_t* value);
  // A view of the next `size` bytes (valid as long as the underlying data).
  bool ReadSpan(size_t size, absl::Span<const uint8_t>* bytes);
  // A copy of the next `size` bytes.
  bool ReadBytes(size_t size, std::vector<uint8_t>* bytes);
  bool Skip(size_t size);
  // Everything that is left; the reader is empty afterwards.
  absl::Span<const uint8_t> ReadRest();

 private:
  absl::Span<const uint8_t> data_;
  size_t offset_ = 0;
};

// Appends to a caller-owned buffer. Length fields are written as placeholders
// and patched once the length is known; a value that does not fit its field
// marks the writer as failed (ok() == false) instead of truncating.
class Writer {
 public:
  explicit Writer(std::vector<uint8_t>* out) : out_(out) {}

  size_t size() const { return out_->size(); }
  bool ok() const { return ok_; }
  void Fail() { ok_ = false; }

  void WriteU8(uint8_t value);
  void WriteU16(uint16_t value);
  void WriteU32(uint32_t value);
  void WriteU64(uint64_t value);
  void WriteBytes(absl::Span<const uint8_t> bytes);
  void WriteZeros(size_t count);
  // Writes `value` if it fits in the field, else writes 0 and fails.
  void WriteCountU8(size_t value);
  void WriteCountU16(size_t value);

  // Overwrite two or four bytes at `offset` (an earlier placeholder).
  void PatchU16(size_t offset, size_t value);
  void PatchU32(size_t offset, size_t value);

 private:
  std::vector<uint8_t>* out_;
  bool ok_ = true;
};

}  // namespace vpn::wire
