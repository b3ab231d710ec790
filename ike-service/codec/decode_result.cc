#include "ike-service/codec/decode_result.h"

#include "absl/strings/str_cat.h"

namespace vpn::ike::codec {

absl::string_view DecodeErrorName(DecodeError error) {
  switch (error) {
    case DecodeError::kTruncated: return "truncated";
    case DecodeError::kBadLength: return "bad length";
    case DecodeError::kBadVersion: return "bad version";
    case DecodeError::kUnsupportedCriticalPayload: return "unsupported critical payload";
    case DecodeError::kInvalidSyntax: return "invalid syntax";
    case DecodeError::kTooManyPayloads: return "too many payloads";
    case DecodeError::kTooManySubstructures: return "too many substructures";
  }
  return "unknown";
}

DecodeFailure MakeDecodeFailure(DecodeError error, std::string detail) {
  DecodeFailure failure;
  failure.error = error;
  switch (error) {
    case DecodeError::kBadVersion:
      failure.notify = NotifyType::kInvalidMajorVersion;
      break;
    case DecodeError::kUnsupportedCriticalPayload:
      failure.notify = NotifyType::kUnsupportedCriticalPayload;
      break;
    default:
      failure.notify = NotifyType::kInvalidSyntax;
      break;
  }
  failure.detail = std::move(detail);
  return failure;
}

DecodeFailure MakeUnsupportedCriticalPayload(uint8_t payload_type) {
  DecodeFailure failure =
      MakeDecodeFailure(DecodeError::kUnsupportedCriticalPayload,
                        absl::StrCat("unknown payload type ", payload_type,
                                     " with the critical bit"));
  failure.notify_data = {payload_type};
  return failure;
}

DecodeFailure AddContext(DecodeFailure failure, absl::string_view context) {
  failure.detail = absl::StrCat(context, ": ", failure.detail);
  return failure;
}

}  // namespace vpn::ike::codec
