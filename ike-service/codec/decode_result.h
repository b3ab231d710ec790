#pragma once

// Typed decode errors and the notify a responder answers them with.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/variant.h"
#include "ike-service/codec/constants.h"

namespace vpn::ike::codec {

enum class DecodeError {
  kTruncated,                   // the data ends before a header or declared length
  kBadLength,                   // a length field disagrees with its content
  kBadVersion,                  // IKE major version other than 2
  kUnsupportedCriticalPayload,  // unknown payload type with the critical bit
  kInvalidSyntax,               // a value out of range or a rule of the RFC broken
  kTooManyPayloads,             // more than kMaxPayloads in one chain
  kTooManySubstructures,        // proposals, transforms, attributes, selectors...
};

absl::string_view DecodeErrorName(DecodeError error);

struct DecodeFailure {
  DecodeError error = DecodeError::kInvalidSyntax;
  // What RFC 7296 prescribes in reply: INVALID_MAJOR_VERSION (5),
  // UNSUPPORTED_CRITICAL_PAYLOAD (1) or INVALID_SYNTAX (7). RFC 7296 3.10.1
  // allows INVALID_SYNTAX only in a reply to a message whose integrity was
  // verified; that decision belongs to the caller.
  NotifyType notify = NotifyType::kInvalidSyntax;
  // Notification data: the one-octet payload type for
  // UNSUPPORTED_CRITICAL_PAYLOAD, else empty.
  std::vector<uint8_t> notify_data;
  // Where and what, for logs; never sent to the peer.
  std::string detail;
};

// A failure for `error`, with the notify that error maps to.
DecodeFailure MakeDecodeFailure(DecodeError error, std::string detail);
DecodeFailure MakeUnsupportedCriticalPayload(uint8_t payload_type);
// Prefixes the detail with where the failure happened ("SA payload: ...").
DecodeFailure AddContext(DecodeFailure failure, absl::string_view context);

// Either a decoded value or a DecodeFailure.
template <typename T>
class DecodeResult {
 public:
  DecodeResult(T value) : state_(std::move(value)) {}              // NOLINT
  DecodeResult(DecodeFailure failure) : state_(std::move(failure)) {}  // NOLINT

  bool ok() const { return absl::holds_alternative<T>(state_); }

  // Must only be called when ok().
  const T& value() const& { return absl::get<T>(state_); }
  T& value() & { return absl::get<T>(state_); }
  T&& value() && { return absl::get<T>(std::move(state_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // Must only be called when !ok().
  const DecodeFailure& failure() const& { return absl::get<DecodeFailure>(state_); }
  DecodeFailure&& failure() && {
    return absl::get<DecodeFailure>(std::move(state_));
  }

 private:
  absl::variant<T, DecodeFailure> state_;
};

}  // namespace vpn::ike::codec
