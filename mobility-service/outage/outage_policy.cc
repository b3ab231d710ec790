#include "mobility-service/outage/outage_policy.h"

namespace vpn::mobility {

absl::Status ValidateOutageOptions(const OutageOptions& options) {
  if (options.outage_window < absl::Seconds(10)) {
    return absl::InvalidArgumentError("outage_window: must be at least 10s");
  }
  if (options.liveness_timeout < absl::Seconds(1)) {
    return absl::InvalidArgumentError("liveness_timeout: must be at least 1s");
  }
  if (options.liveness_timeout >= options.outage_window) {
    return absl::InvalidArgumentError(
        "liveness_timeout: must be shorter than outage_window");
  }
  return absl::OkStatus();
}

absl::string_view LivenessName(Liveness liveness) {
  switch (liveness) {
    case Liveness::kAlive:
      return "alive";
    case Liveness::kSilent:
      return "silent";
    case Liveness::kExpired:
      return "expired";
  }
  return "unknown";
}

Liveness OutageWindow::Judge(absl::Time last_seen, absl::Time now) const {
  const absl::Duration silence = now - last_seen;
  if (silence > options_.outage_window) return Liveness::kExpired;
  if (silence > options_.liveness_timeout) return Liveness::kSilent;
  return Liveness::kAlive;
}

}  // namespace vpn::mobility
