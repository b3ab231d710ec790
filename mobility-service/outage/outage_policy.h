// The outage window (Windows "VPN Reconnect"): a client that goes silent is
// not dropped. Past `liveness_timeout` its SA is DORMANT (kept, keys and
// virtual IP included, so it resumes without EAP from any address); past
// `outage_window` of silence it is cleaned up. Both are measured from the
// last time the client was seen. Pure logic, no I/O.
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vpn::mobility {

struct OutageOptions {
  // Silence after which an SA is marked DORMANT.
  absl::Duration liveness_timeout = absl::Minutes(2);
  // Silence after which a DORMANT SA is deleted and its address released.
  absl::Duration outage_window = absl::Minutes(30);
};

// What `liveness_timeout` and `outage_window` must satisfy; the error names
// the config field.
absl::Status ValidateOutageOptions(const OutageOptions& options);

enum class Liveness {
  kAlive,    // seen within liveness_timeout
  kSilent,   // silent past liveness_timeout: DORMANT
  kExpired,  // silent past outage_window: clean up
};

absl::string_view LivenessName(Liveness liveness);

class OutageWindow {
 public:
  // `started`: when the tracker started. Until liveness_timeout after it,
  // silence is not judged (Settled() is false): after a restart the
  // reporters need that long to report every live SA again.
  OutageWindow(OutageOptions options, absl::Time started)
      : options_(options), started_(started) {}

  Liveness Judge(absl::Time last_seen, absl::Time now) const;
  bool Settled(absl::Time now) const {
    return now - started_ >= options_.liveness_timeout;
  }
  absl::Time DormantAt(absl::Time last_seen) const {
    return last_seen + options_.liveness_timeout;
  }
  absl::Time ExpiresAt(absl::Time last_seen) const {
    return last_seen + options_.outage_window;
  }
  const OutageOptions& options() const { return options_; }

 private:
  const OutageOptions options_;
  const absl::Time started_;
};

}  // namespace vpn::mobility
