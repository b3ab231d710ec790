// Fuzz target for RFC 7383 reassembly: the input is a run of fragments, each
// [message ID (1)][number (1)][total (1)][first payload (1)][length (1)]
// [bytes]. FragmentReassembly is checked against a plain model of §2.6.1
// kept here: same outcomes, same message when complete, bounded memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>

#include "ike-service/sa/fragment_reassembly.h"

namespace {

using vpn::crypto::Bytes;
using vpn::ike::FragmentReassembly;
using vpn::ike::codec::PayloadType;
using Outcome = FragmentReassembly::Outcome;

void Check(bool condition) {
  if (!condition) std::abort();
}

// The rules, written as plainly as possible.
struct Model {
  bool collecting = false;
  uint32_t id = 0;
  uint16_t total = 0;
  std::map<uint16_t, Bytes> parts;
  PayloadType first = PayloadType::kNone;
  size_t bytes = 0;

  Outcome Add(uint32_t message_id, uint16_t number, uint16_t n, PayloadType type, const Bytes& b) {
    if (n == 0 || n > FragmentReassembly::kMaxFragments || number == 0 || number > n || b.empty()) {
      return Outcome::kIgnored;
    }
    if (collecting && message_id == id && n < total) return Outcome::kIgnored;
    if (!collecting || message_id != id || n > total) {
      *this = Model();
      collecting = true;
      id = message_id;
      total = n;
    }
    if (parts.count(number) != 0) return Outcome::kIgnored;
    if (bytes + b.size() > FragmentReassembly::kMaxBytes) {
      *this = Model();
      return Outcome::kTooLarge;
    }
    if (number == 1) first = type;
    parts[number] = b;
    bytes += b.size();
    return parts.size() < total ? Outcome::kStored : Outcome::kComplete;
  }
  Bytes Take(PayloadType* type) {
    Bytes whole;
    *type = PayloadType::kNone;
    if (collecting && parts.size() == total) {
      for (const auto& [number, part] : parts) whole.insert(whole.end(), part.begin(), part.end());
      *type = first;
    }
    *this = Model();
    return whole;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FragmentReassembly reassembly;
  Model model;
  size_t at = 0;
  size_t generated = 0;  // bounds an input's cost: enough to pass 64 KiB four times
  while (size - at >= 5 && generated < 4 * FragmentReassembly::kMaxBytes) {
    const uint32_t message_id = data[at] % 4;
    const uint16_t number = data[at + 1] % 40;
    const uint16_t total = data[at + 2] % 40;
    const PayloadType type = static_cast<PayloadType>(data[at + 3]);
    // A length byte of 192 or more repeats the bytes up to 1024 times, so
    // two fragments reach the size bound.
    const size_t length = std::min<size_t>(size - at - 5, data[at + 4] % 64);
    const size_t repeat = data[at + 4] >= 192 ? 16 * (data[at + 4] - 191) : 1;
    at += 5;
    Bytes plain;
    for (size_t r = 0; r < repeat; ++r) plain.insert(plain.end(), data + at, data + at + length);
    generated += plain.size() + 1;
    at += length;
    const Outcome got = reassembly.Add(message_id, number, total, type, plain);
    Check(got == model.Add(message_id, number, total, type, plain));
    Check(reassembly.bytes() == model.bytes && reassembly.bytes() <= FragmentReassembly::kMaxBytes);
    if (got == Outcome::kComplete) {
      PayloadType first, expected_first;
      Check(reassembly.Take(&first) == model.Take(&expected_first));
      Check(first == expected_first);
    }
  }
  return 0;
}
