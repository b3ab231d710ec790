// Fuzz target for "seq/" records read back from the store: the input's first
// line is a key, the rest its value. Whatever parses must be exactly what the
// encoders write, so a damaged record can never read as a lower outbound
// mark (which would repeat a sequence number, the AES-GCM IV).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "esp-forwarder/sa_table/seq_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const absl::string_view key = input.substr(0, newline);
  const absl::string_view value =
      newline == absl::string_view::npos ? absl::string_view() : input.substr(newline + 1);
  uint32_t spi = 0;
  if (vpn::forwarder::SpiFromSeqKey(key, &spi) && vpn::forwarder::SeqKey(spi) != key) {
    std::abort();
  }
  if (absl::optional<vpn::forwarder::SeqMarks> marks = vpn::forwarder::DecodeSeqMarks(value)) {
    if (vpn::forwarder::EncodeSeqMarks(*marks) != value) std::abort();
  }
  return 0;
}
