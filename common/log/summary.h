// Counts events by reason and writes them as one log line per interval, for
// events an attacker can cause at line rate (refused handshakes): the log
// volume stays bounded whatever the packet rate. Metrics count every event.
#ifndef VPN_COMMON_LOG_SUMMARY_H_
#define VPN_COMMON_LOG_SUMMARY_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/log/log.h"

namespace vpn::log {

class Summary {
 public:
  // Lines read `message` with "counts" ("reason=n ...", sorted by reason),
  // "total" and "seconds" (the span they cover).
  Summary(const Logger& logger, std::string message, absl::Duration interval);

  // Counts one event; writes the line (and starts over) when `interval` has
  // passed since the last one, at `now`.
  void Add(absl::string_view reason, absl::Time now = absl::Now());

 private:
  const Logger& logger_;
  const std::string message_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  std::map<std::string, uint64_t, std::less<>> counts_ ABSL_GUARDED_BY(mu_);
  absl::Time since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace vpn::log

#endif  // VPN_COMMON_LOG_SUMMARY_H_
