// libFuzzer target for the WAL/snapshot record parser, which reads untrusted
// bytes off disk. Must never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>

#include "common/store/wal_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  // As a log: decode frames until the first error, like recovery does.
  absl::string_view rest = in;
  while (!rest.empty()) {
    bool truncated = false;
    auto frame = vpn::store::wal::DecodeFrame(rest, &truncated);
    if (!frame.ok()) break;
    if (frame->size == 0 || frame->size > rest.size()) __builtin_trap();
    rest.remove_prefix(frame->size);
  }
  // As a bare payload, so the fuzzer reaches the parser without forging CRCs.
  auto record = vpn::store::wal::ParsePayload(in);
  if (record.ok()) {
    // Re-encoding a parsed record must parse again to the same fields.
    std::string again;
    vpn::store::wal::AppendFrame(*record, &again);
    auto back = vpn::store::wal::DecodeFrame(again);
    if (!back.ok() || back->record.lsn != record->lsn ||
        back->record.ops.size() != record->ops.size()) {
      __builtin_trap();
    }
  }
  return 0;
}
