#include "ike-service/sa/fragment_reassembly.h"

namespace vpn::ike {

void FragmentReassembly::Reset() {
  total_ = 0;
  first_payload_ = codec::PayloadType::kNone;
  parts_.clear();
  received_ = 0;
  bytes_ = 0;
}

FragmentReassembly::Outcome FragmentReassembly::Add(uint32_t message_id, uint16_t number,
                                                    uint16_t total,
                                                    codec::PayloadType first_payload,
                                                    crypto::Bytes plain) {
  if (!ValidNumbering(number, total) || plain.empty()) return Outcome::kIgnored;
  if (total_ != 0 && message_id == message_id_ && total < total_) return Outcome::kIgnored;
  if (total_ == 0 || message_id != message_id_ || total > total_) {
    Reset();
    message_id_ = message_id;
    total_ = total;
    parts_.resize(total);
  }
  crypto::Bytes& part = parts_[number - 1];
  if (!part.empty()) return Outcome::kIgnored;
  if (bytes_ + plain.size() > kMaxBytes) {
    Reset();
    return Outcome::kTooLarge;
  }
  if (number == 1) first_payload_ = first_payload;
  bytes_ += plain.size();
  part = std::move(plain);
  return ++received_ < total_ ? Outcome::kStored : Outcome::kComplete;
}

crypto::Bytes FragmentReassembly::Take(codec::PayloadType* first_payload) {
  crypto::Bytes whole;
  if (total_ != 0 && received_ == total_) {
    whole.reserve(bytes_);
    for (const crypto::Bytes& part : parts_) whole.insert(whole.end(), part.begin(), part.end());
    *first_payload = first_payload_;
  } else {
    *first_payload = codec::PayloadType::kNone;
  }
  Reset();
  return whole;
}

}  // namespace vpn::ike
