#include "common/wire/reader.h"

namespace vpn::wire {

namespace {

uint64_t LoadBigEndian(const uint8_t* bytes, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) value = (value << 8) | bytes[i];
  return value;
}

void StoreBigEndian(uint64_t value, size_t size, uint8_t* bytes) {
  for (size_t i = 0; i < size; ++i) {
    bytes[size - 1 - i] = static_cast<uint8_t>(value >> (8 * i));
  }
}

}  // namespace

bool Reader::ReadU8(uint8_t* value) {
  if (remaining() < 1) return false;
  *value = data_[offset_];
  offset_ += 1;
  return true;
}

bool Reader::ReadU16(uint16_t* value) {
  if (remaining() < 2) return false;
  *value = static_cast<uint16_t>(LoadBigEndian(data_.data() + offset_, 2));
  offset_ += 2;
  return true;
}

bool Reader::ReadU32(uint32_t* value) {
  if (remaining() < 4) return false;
  *value = static_cast<uint32_t>(LoadBigEndian(data_.data() + offset_, 4));
  offset_ += 4;
  return true;
}

bool Reader::ReadU64(uint64_t* value) {
  if (remaining() < 8) return false;
  *value = LoadBigEndian(data_.data() + offset_, 8);
  offset_ += 8;
  return true;
}

bool Reader::ReadSpan(size_t size, absl::Span<const uint8_t>* bytes) {
  if (remaining() < size) return false;
  *bytes = data_.subspan(offset_, size);
  offset_ += size;
  return true;
}

bool Reader::ReadBytes(size_t size, std::vector<uint8_t>* bytes) {
  absl::Span<const uint8_t> view;
  if (!ReadSpan(size, &view)) return false;
  bytes->assign(view.begin(), view.end());
  return true;
}

bool Reader::Skip(size_t size) {
  if (remaining() < size) return false;
  offset_ += size;
  return true;
}

absl::Span<const uint8_t> Reader::ReadRest() {
  absl::Span<const uint8_t> rest = data_.subspan(offset_);
  offset_ = data_.size();
  return rest;
}

void Writer::WriteU8(uint8_t value) { out_->push_back(value); }

void Writer::WriteU16(uint16_t value) {
  uint8_t bytes[2];
  StoreBigEndian(value, 2, bytes);
  out_->insert(out_->end(), bytes, bytes + 2);
}

void Writer::WriteU32(uint32_t value) {
  uint8_t bytes[4];
  StoreBigEndian(value, 4, bytes);
  out_->insert(out_->end(), bytes, bytes + 4);
}

void Writer::WriteU64(uint64_t value) {
  uint8_t bytes[8];
  StoreBigEndian(value, 8, bytes);
  out_->insert(out_->end(), bytes, bytes + 8);
}

void Writer::WriteBytes(absl::Span<const uint8_t> bytes) {
  out_->insert(out_->end(), bytes.begin(), bytes.end());
}

void Writer::WriteZeros(size_t count) { out_->insert(out_->end(), count, 0); }

void Writer::WriteCountU8(size_t value) {
  if (value > 0xff) {
    Fail();
    value = 0;
  }
  WriteU8(static_cast<uint8_t>(value));
}

void Writer::WriteCountU16(size_t value) {
  if (value > 0xffff) {
    Fail();
    value = 0;
  }
  WriteU16(static_cast<uint16_t>(value));
}

void Writer::PatchU16(size_t offset, size_t value) {
  if (value > 0xffff || offset + 2 > out_->size()) {
    Fail();
    return;
  }
  StoreBigEndian(value, 2, out_->data() + offset);
}

void Writer::PatchU32(size_t offset, size_t value) {
  if (value > 0xffffffffu || offset + 4 > out_->size()) {
    Fail();
    return;
  }
  StoreBigEndian(value, 4, out_->data() + offset);
}

}  // namespace vpn::wire
