#include "common/log/summary.h"

#include "absl/strings/str_cat.h"

namespace vpn::log {

Summary::Summary(const Logger& logger, std::string message, absl::Duration interval)
    : logger_(logger), message_(std::move(message)), interval_(interval) {}

void Summary::Add(absl::string_view reason, absl::Time now) {
  std::string counts;
  uint64_t total = 0;
  absl::Duration span;
  {
    absl::MutexLock lock(&mu_);
    if (since_ == absl::InfinitePast()) since_ = now;
    auto it = counts_.find(reason);
    if (it == counts_.end()) it = counts_.emplace(std::string(reason), 0).first;
    ++it->second;
    if (now - since_ < interval_) return;
    for (const auto& [name, n] : counts_) {
      absl::StrAppend(&counts, counts.empty() ? "" : " ", name, "=", n);
      total += n;
    }
    span = now - since_;
    counts_.clear();
    since_ = now;
  }
  logger_.Info(message_, {{"counts", counts},
                          {"total", total},
                          {"seconds", absl::ToDoubleSeconds(span)}});
}

}  // namespace vpn::log
