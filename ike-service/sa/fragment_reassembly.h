// Reassembly of one IKE message's Encrypted Fragment payloads (RFC 7383
// §2.6), after each fragment's integrity check. One per IKE SA and
// direction; the responder and the load generator's initiator share it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/crypto/crypto.h"
#include "ike-service/codec/constants.h"

namespace vpn::ike {

class FragmentReassembly {
 public:
  // A message in more fragments, or of more bytes, is refused: it is held
  // in memory until complete.
  static constexpr uint16_t kMaxFragments = 32;
  static constexpr size_t kMaxBytes = 64 * 1024;

  explicit FragmentReassembly(uint16_t max_fragments = kMaxFragments)
      : max_fragments_(max_fragments) {}

  // Numbering a fragment must have to be worth decrypting.
  bool ValidNumbering(uint16_t number, uint16_t total) const {
    return total >= 1 && total <= max_fragments_ && number >= 1 && number <= total;
  }

  enum class Outcome {
    kStored,    // kept; more are missing
    kComplete,  // the message is whole: Take() it
    kIgnored,   // a duplicate, empty, or of an older fragmentation (fewer
                // fragments than the one being collected, §2.6.1)
    kTooLarge,  // over kMaxBytes: everything collected is dropped
  };

  // Adds fragment `number` of `total` (ValidNumbering) of the message with
  // `message_id`, decrypted. `first_payload` (the inner chain's first type)
  // counts in fragment 1 only. A fragment of another message, or of the same
  // message split into more fragments (a retransmit after a smaller path
  // MTU), starts over.
  Outcome Add(uint32_t message_id, uint16_t number, uint16_t total,
              codec::PayloadType first_payload, crypto::Bytes plain);

  // After kComplete: the inner payload chain and its first type. Resets.
  crypto::Bytes Take(codec::PayloadType* first_payload);

  // Bytes held for the message being collected.
  size_t bytes() const { return bytes_; }

 private:
  void Reset();

  uint16_t max_fragments_;
  uint32_t message_id_ = 0;
  uint16_t total_ = 0;  // 0: collecting nothing
  codec::PayloadType first_payload_ = codec::PayloadType::kNone;
  std::vector<crypto::Bytes> parts_;  // by fragment number - 1
  size_t received_ = 0;
  size_t bytes_ = 0;
};

}  // namespace vpn::ike
