// On-disk record format of the embedded store's write-ahead log and
// snapshots. Every record is framed as
//   u32 payload length (LE) || u32 CRC-32C of the payload (LE) || payload
// The payload is a type byte, a u64 log sequence number (LSN) and
// type-specific fields (integers fixed-size LE, strings u32 length + bytes).
// The parser reads untrusted bytes off disk: it bounds-checks every field and
// returns kDataLoss, never crashes (see wal_fuzzer.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/store/store.h"

namespace vpn::store::wal {

constexpr size_t kFrameHeaderSize = 8;
// Larger frames are treated as corrupt (a value is far below this).
constexpr uint32_t kMaxPayloadSize = 64u << 20;

uint32_t Crc32c(absl::string_view data);

struct KvOp {
  enum class Type : uint8_t { kPut = 1, kDelete = 2 };
  Type type = Type::kPut;
  std::string key;
  std::string value;
  LeaseId lease = kNoLease;
};

struct Record {
  enum class Type : uint8_t {
    // WAL records.
    kTxn = 1,         // revision, ops, revoked_leases
    kLeaseGrant = 2,  // lease_id, ttl_ms
    kCompact = 3,     // revision = compact revision
    // Snapshot records.
    kSnapshotHeader = 10,  // revision, compact_revision, next_lease_id
    kSnapshotKv = 11,      // kv
    kSnapshotLease = 12,   // lease_id, ttl_ms
    kSnapshotEnd = 13,     // count = number of kv + lease records
  };
  Type type = Type::kTxn;
  uint64_t lsn = 0;
  int64_t revision = 0;
  std::vector<KvOp> ops;
  std::vector<LeaseId> revoked_leases;
  LeaseId lease_id = kNoLease;
  int64_t ttl_ms = 0;
  int64_t compact_revision = 0;
  LeaseId next_lease_id = 0;
  KeyValue kv;
  uint64_t count = 0;
};

// Appends the framed record to *out.
void AppendFrame(const Record& record, std::string* out);

// Parses a payload (without the frame). kDataLoss if malformed.
absl::StatusOr<Record> ParsePayload(absl::string_view payload);

struct Frame {
  Record record;
  size_t size = 0;  // bytes consumed, frame header included
};

// Decodes the frame at the start of `data`. kDataLoss with a reason for a
// truncated frame, a CRC mismatch or a malformed payload; `truncated` tells
// whether the data simply ends inside the frame (a torn write).
absl::StatusOr<Frame> DecodeFrame(absl::string_view data,
                                  bool* truncated = nullptr);

}  // namespace vpn::store::wal
