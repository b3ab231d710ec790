// Fuzz target for the IKEv2 codec.
//
// Each input is tried two ways:
//   - as a whole datagram: DecodeMessage; on success EncodeMessage, decode
//     again, and both the decoded messages and the encodings must be equal;
//   - as an inner payload chain: the first byte is the first payload type,
//     the rest the chain (what the SA code passes after decrypting SK).
// Any mismatch aborts.
//
// `tools/fuzz.sh message_fuzzer SECONDS` runs it under libFuzzer;
// message_fuzzer_regression_test runs it over testdata/message_fuzzer_corpus/
// plus a fixed set of mutations of it.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "ike-service/codec/message.h"

namespace {

using vpn::ike::codec::DecodeMessage;
using vpn::ike::codec::DecodePayloadChain;
using vpn::ike::codec::EncodeMessage;
using vpn::ike::codec::EncodePayloadChain;
using vpn::ike::codec::PayloadType;

void Check(bool condition) {
  if (!condition) std::abort();
}

void FuzzMessage(absl::Span<const uint8_t> input) {
  auto decoded = DecodeMessage(input);
  if (!decoded.ok()) return;
  const std::vector<uint8_t> encoded = EncodeMessage(*decoded);
  Check(!encoded.empty());
  auto redecoded = DecodeMessage(encoded);
  Check(redecoded.ok());
  Check(*redecoded == *decoded);
  Check(EncodeMessage(*redecoded) == encoded);
}

void FuzzPayloadChain(absl::Span<const uint8_t> input) {
  if (input.empty()) return;
  const auto first_type = static_cast<PayloadType>(input[0]);
  auto decoded = DecodePayloadChain(first_type, input.subspan(1));
  if (!decoded.ok()) return;
  const std::vector<uint8_t> encoded = EncodePayloadChain(*decoded);
  Check(encoded.empty() == decoded->empty());
  const PayloadType encoded_first = decoded->empty() ? PayloadType::kNone : first_type;
  auto redecoded = DecodePayloadChain(encoded_first, encoded);
  Check(redecoded.ok());
  Check(*redecoded == *decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::Span<const uint8_t> input(data, size);
  FuzzMessage(input);
  FuzzPayloadChain(input);
  return 0;
}
