// Runs a function with the calling thread inside a named network namespace
// (/run/netns/NAME, as `ip netns add` makes them). Sockets keep the
// namespace they were created in, so one thread can drive sockets of the
// client, gateway and LAN namespaces.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vpn::forwarder::bench {

template <typename F>
absl::Status InNetns(const std::string& name, F&& f) {
  if (name.empty()) {
    f();
    return absl::OkStatus();
  }
  const int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (self < 0 || target < 0 || setns(target, CLONE_NEWNET) != 0) {
    if (self >= 0) close(self);
    if (target >= 0) close(target);
    return absl::UnavailableError(absl::StrCat("cannot enter network namespace ", name));
  }
  f();
  setns(self, CLONE_NEWNET);
  close(self);
  close(target);
  return absl::OkStatus();
}

}  // namespace vpn::forwarder::bench
