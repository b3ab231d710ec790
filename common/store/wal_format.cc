#include "common/store/wal_format.h"

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vpn::store::wal {
namespace {

// Upper bounds on element counts, so a forged count cannot make us allocate
// much before the bounds checks fail.
constexpr uint32_t kMaxOps = 1u << 20;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

void PutU8(uint8_t v, std::string* out) { out->push_back(static_cast<char>(v)); }
void PutU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutI64(int64_t v, std::string* out) { PutU64(static_cast<uint64_t>(v), out); }
void PutStr(absl::string_view s, std::string* out) {
  PutU32(static_cast<uint32_t>(s.size()), out);
  out->append(s.data(), s.size());
}

uint32_t LoadU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Bounds-checked little-endian reader over untrusted bytes.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool U8(uint8_t* v) {
    if (data_.size() - pos_ < 1) return Fail();
    *v = static_cast<uint8_t>(data_[pos_++]);
    return true;
  }
  bool U32(uint32_t* v) {
    if (data_.size() - pos_ < 4) return Fail();
    *v = LoadU32(data_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool U64(uint64_t* v) {
    if (data_.size() - pos_ < 8) return Fail();
    uint64_t r = 0;
    for (int i = 7; i >= 0; --i) r = (r << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    *v = r;
    pos_ += 8;
    return true;
  }
  bool I64(int64_t* v) {
    uint64_t u;
    if (!U64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool Str(std::string* s) {
    uint32_t n;
    if (!U32(&n)) return false;
    if (data_.size() - pos_ < n) return Fail();
    s->assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Count(uint32_t* n, size_t min_element_size) {
    if (!U32(n)) return false;
    if (*n > kMaxOps || static_cast<uint64_t>(*n) * min_element_size >
                            data_.size() - pos_) {
      return Fail();
    }
    return true;
  }
  bool AtEnd() const { return pos_ == data_.size(); }
  bool failed() const { return failed_; }

 private:
  bool Fail() {
    failed_ = true;
    return false;
  }
  absl::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

absl::Status Malformed(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("malformed record: ", what));
}

}  // namespace

uint32_t Crc32c(absl::string_view data) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) {
    crc = table[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

void AppendFrame(const Record& r, std::string* out) {
  std::string p;
  PutU8(static_cast<uint8_t>(r.type), &p);
  PutU64(r.lsn, &p);
  switch (r.type) {
    case Record::Type::kTxn:
      PutI64(r.revision, &p);
      PutU32(static_cast<uint32_t>(r.ops.size()), &p);
      for (const KvOp& op : r.ops) {
        PutU8(static_cast<uint8_t>(op.type), &p);
        PutStr(op.key, &p);
        if (op.type == KvOp::Type::kPut) {
          PutStr(op.value, &p);
          PutI64(op.lease, &p);
        }
      }
      PutU32(static_cast<uint32_t>(r.revoked_leases.size()), &p);
      for (LeaseId id : r.revoked_leases) PutI64(id, &p);
      break;
    case Record::Type::kLeaseGrant:
    case Record::Type::kSnapshotLease:
      PutI64(r.lease_id, &p);
      PutI64(r.ttl_ms, &p);
      break;
    case Record::Type::kCompact:
      PutI64(r.revision, &p);
      break;
    case Record::Type::kSnapshotHeader:
      PutI64(r.revision, &p);
      PutI64(r.compact_revision, &p);
      PutI64(r.next_lease_id, &p);
      break;
    case Record::Type::kSnapshotKv:
      PutStr(r.kv.key, &p);
      PutStr(r.kv.value, &p);
      PutI64(r.kv.create_revision, &p);
      PutI64(r.kv.mod_revision, &p);
      PutI64(r.kv.version, &p);
      PutI64(r.kv.lease, &p);
      break;
    case Record::Type::kSnapshotEnd:
      PutU64(r.count, &p);
      break;
  }
  PutU32(static_cast<uint32_t>(p.size()), out);
  PutU32(Crc32c(p), out);
  out->append(p);
}

absl::StatusOr<Record> ParsePayload(absl::string_view payload) {
  Reader in(payload);
  Record r;
  uint8_t type;
  if (!in.U8(&type) || !in.U64(&r.lsn)) return Malformed("short header");
  r.type = static_cast<Record::Type>(type);
  switch (r.type) {
    case Record::Type::kTxn: {
      uint32_t n;
      if (!in.I64(&r.revision) || !in.Count(&n, 5)) return Malformed("txn header");
      r.ops.reserve(n);
      for (uint32_t i = 0; i < n; ++i) {
        KvOp op;
        uint8_t op_type;
        if (!in.U8(&op_type) || !in.Str(&op.key)) return Malformed("txn op");
        if (op_type == static_cast<uint8_t>(KvOp::Type::kPut)) {
          op.type = KvOp::Type::kPut;
          if (!in.Str(&op.value) || !in.I64(&op.lease)) return Malformed("put op");
        } else if (op_type == static_cast<uint8_t>(KvOp::Type::kDelete)) {
          op.type = KvOp::Type::kDelete;
        } else {
          return Malformed(absl::StrCat("unknown op type ", op_type));
        }
        r.ops.push_back(std::move(op));
      }
      if (!in.Count(&n, 8)) return Malformed("revoked lease count");
      r.revoked_leases.resize(n);
      for (uint32_t i = 0; i < n; ++i) {
        if (!in.I64(&r.revoked_leases[i])) return Malformed("revoked lease");
      }
      break;
    }
    case Record::Type::kLeaseGrant:
    case Record::Type::kSnapshotLease:
      if (!in.I64(&r.lease_id) || !in.I64(&r.ttl_ms)) return Malformed("lease");
      break;
    case Record::Type::kCompact:
      if (!in.I64(&r.revision)) return Malformed("compact");
      break;
    case Record::Type::kSnapshotHeader:
      if (!in.I64(&r.revision) || !in.I64(&r.compact_revision) ||
          !in.I64(&r.next_lease_id)) {
        return Malformed("snapshot header");
      }
      break;
    case Record::Type::kSnapshotKv:
      if (!in.Str(&r.kv.key) || !in.Str(&r.kv.value) ||
          !in.I64(&r.kv.create_revision) || !in.I64(&r.kv.mod_revision) ||
          !in.I64(&r.kv.version) || !in.I64(&r.kv.lease)) {
        return Malformed("snapshot kv");
      }
      break;
    case Record::Type::kSnapshotEnd:
      if (!in.U64(&r.count)) return Malformed("snapshot end");
      break;
    default:
      return Malformed(absl::StrCat("unknown record type ", type));
  }
  if (!in.AtEnd()) return Malformed("trailing bytes");
  return r;
}

absl::StatusOr<Frame> DecodeFrame(absl::string_view data, bool* truncated) {
  if (truncated != nullptr) *truncated = false;
  if (data.size() < kFrameHeaderSize) {
    if (truncated != nullptr) *truncated = true;
    return absl::DataLossError(absl::StrCat(
        "truncated record header (", data.size(), " of ", kFrameHeaderSize,
        " bytes)"));
  }
  uint32_t len = LoadU32(data.data());
  uint32_t crc = LoadU32(data.data() + 4);
  if (len > kMaxPayloadSize) {
    return absl::DataLossError(
        absl::StrCat("record length ", len, " exceeds the limit"));
  }
  if (data.size() - kFrameHeaderSize < len) {
    if (truncated != nullptr) *truncated = true;
    return absl::DataLossError(absl::StrCat(
        "truncated record (", data.size() - kFrameHeaderSize, " of ", len,
        " payload bytes)"));
  }
  absl::string_view payload = data.substr(kFrameHeaderSize, len);
  if (Crc32c(payload) != crc) {
    return absl::DataLossError("record CRC mismatch");
  }
  absl::StatusOr<Record> record = ParsePayload(payload);
  if (!record.ok()) return record.status();
  Frame frame;
  frame.record = *std::move(record);
  frame.size = kFrameHeaderSize + len;
  return frame;
}

}  // namespace vpn::store::wal
