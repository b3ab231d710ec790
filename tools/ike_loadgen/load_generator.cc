#include "tools/ike_loadgen/load_generator.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace vpn::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// A connected non-blocking UDP socket; -1 on error (errno set).
int OpenSocket(const std::string& bind_address, const net::IpEndpoint& remote) {
  const int fd =
      socket(remote.is_v6() ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_storage address{};
  if (!bind_address.empty()) {
    absl::StatusOr<net::IpEndpoint> local = net::IpEndpoint::Parse(bind_address);
    if (!local.ok()) {
      close(fd);
      errno = EINVAL;
      return -1;
    }
    const socklen_t length = local->ToSockaddr(&address);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
      close(fd);
      return -1;
    }
  }
  const socklen_t length = remote.ToSockaddr(&address);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Shared by the event loops: how many attempts may still start.
struct Budget {
  std::atomic<int64_t> remaining{0};
  bool by_count = true;
  Clock::time_point end;

  bool Take() {
    if (!by_count) return Clock::now() < end;
    return remaining.fetch_sub(1) > 0;
  }
};

class EventLoop {
 public:
  EventLoop(const LoadOptions& options, const InitiatorConfig& config, int slots, Budget* budget)
      : options_(options), config_(config), budget_(budget) {
    slots_.reserve(slots);
    for (int i = 0; i < slots; ++i) slots_.push_back(std::make_unique<Slot>(&config_));
  }

  ~EventLoop() {
    for (auto& slot : slots_) {
      if (slot->fd500 >= 0) close(slot->fd500);
      if (slot->fd4500 >= 0) close(slot->fd4500);
    }
    if (epoll_ >= 0) close(epoll_);
  }

  LoadReport Run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < slots_.size(); ++i) StartNext(i);
    uint8_t buffer[65536];
    epoll_event events[64];
    while (active_ > 0) {
      const Clock::time_point now = Clock::now();
      Clock::time_point next = now + std::chrono::milliseconds(100);
      for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& slot = *slots_[i];
        if (!slot.active) continue;
        if (slot.deadline <= now) {
          Expire(i);
          if (!slot.active) continue;
        }
        next = std::min(next, slot.deadline);
      }
      const int wait_ms = static_cast<int>(std::ceil(
          std::max(0.0, std::chrono::duration<double, std::milli>(next - Clock::now()).count())));
      const int n = epoll_wait(epoll_, events, 64, wait_ms);
      for (int e = 0; e < n; ++e) {
        const size_t index = events[e].data.u64 >> 1;
        const bool natt = events[e].data.u64 & 1;
        Slot& slot = *slots_[index];
        const int fd = natt ? slot.fd4500 : slot.fd500;
        for (;;) {
          const ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
          if (got < 0) break;  // EAGAIN, or ICMP errors: the retransmit timer copes
          crypto::ByteSpan datagram(buffer, static_cast<size_t>(got));
          if (natt) {
            // Non-ESP marker; anything else is ESP or a keepalive.
            if (datagram.size() < 4 || datagram[0] | datagram[1] | datagram[2] | datagram[3]) {
              continue;
            }
            datagram.remove_prefix(4);
          }
          if (slot.active) OnDatagram(index, datagram);
        }
      }
    }
    std::sort(report_.latency_ms.begin(), report_.latency_ms.end());
    return std::move(report_);
  }

 private:
  struct Slot {
    explicit Slot(const InitiatorConfig* config) : initiator(config) {}
    Initiator initiator;
    int fd500 = -1, fd4500 = -1;
    net::IpEndpoint local;
    bool active = false;
    Clock::time_point started, deadline;
    int tries = 0;
    uint64_t request_count = 0;
  };

  void StartNext(size_t index) {
    Slot& slot = *slots_[index];
    if (slot.active) {
      slot.active = false;
      --active_;
    }
    if (!budget_->Take()) return;
    ++report_.attempted;
    if (slot.fd500 < 0) {
      slot.fd500 = OpenSocket(options_.bind_address, options_.remote);
      if (slot.fd500 < 0 || !Watch(slot.fd500, index, false)) {
        RecordFailure(absl::StrCat("socket: ", std::strerror(errno)));
        return;
      }
      sockaddr_storage address{};
      socklen_t length = sizeof(address);
      getsockname(slot.fd500, reinterpret_cast<sockaddr*>(&address), &length);
      slot.local = *net::IpEndpoint::FromSockaddr(reinterpret_cast<sockaddr*>(&address), length);
    }
    uint64_t spi = 0;
    while (spi == 0) {
      crypto::GetProvider().RandomBytes(
          absl::MakeSpan(reinterpret_cast<uint8_t*>(&spi), sizeof(spi)));
    }
    absl::StatusOr<crypto::Bytes> request = slot.initiator.Start(spi, slot.local, options_.remote);
    if (!request.ok()) {
      RecordFailure(absl::StrCat("start: ", request.status().message()));
      return;
    }
    slot.active = true;
    ++active_;
    slot.started = Clock::now();
    Send(index, *request, /*new_request=*/true);
  }

  bool Watch(int fd, size_t index, bool natt) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = (static_cast<uint64_t>(index) << 1) | (natt ? 1 : 0);
    return epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) == 0;
  }

  void Send(size_t index, const crypto::Bytes& datagram, bool new_request) {
    Slot& slot = *slots_[index];
    if (new_request) {
      slot.tries = 0;
      slot.request_count = slot.initiator.request_count();
      slot.deadline = Clock::now() + options_.timeout;
    }
    int fd = slot.fd500;
    if (slot.initiator.udp_encapsulation()) {
      if (slot.fd4500 < 0) {
        net::IpEndpoint natt = options_.remote;
        natt.set_port(options_.natt_port);
        slot.fd4500 = OpenSocket(options_.bind_address, natt);
        if (slot.fd4500 < 0 || !Watch(slot.fd4500, index, true)) {
          slot.initiator.Fail(absl::StrCat("socket 4500: ", std::strerror(errno)));
          return;  // the caller sees kFailed
        }
      }
      fd = slot.fd4500;
      static constexpr uint8_t kMarker[4] = {0, 0, 0, 0};
      iovec parts[2] = {{const_cast<uint8_t*>(kMarker), 4},
                        {const_cast<uint8_t*>(datagram.data()), datagram.size()}};
      msghdr message{};
      message.msg_iov = parts;
      message.msg_iovlen = 2;
      (void)sendmsg(fd, &message, 0);
      return;
    }
    (void)send(fd, datagram.data(), datagram.size(), 0);  // losses are retransmitted
  }

  void OnDatagram(size_t index, crypto::ByteSpan datagram) {
    Slot& slot = *slots_[index];
    Initiator& initiator = slot.initiator;
    const bool was_encapsulated = initiator.udp_encapsulation();
    const crypto::Bytes out = initiator.Receive(datagram);
    if (!was_encapsulated && initiator.udp_encapsulation()) ++report_.udp_encapsulated;
    if (!out.empty()) Send(index, out, initiator.request_count() != slot.request_count);
    if (initiator.state() == Initiator::State::kEstablished) {
      ++report_.established;
      report_.latency_ms.push_back(1000 * Seconds(Clock::now() - slot.started));
      if (report_.ike_transforms.empty()) {
        report_.ike_transforms = initiator.ike_transforms().ToString();
        report_.esp_transforms = initiator.esp_transforms().ToString();
        report_.virtual_ip = initiator.virtual_ip();
      }
      if (options_.keep) {
        Finish(index);
        return;
      }
      Send(index, initiator.BeginDelete(), true);
    }
    if (initiator.state() == Initiator::State::kDone ||
        initiator.state() == Initiator::State::kFailed) {
      Finish(index);
    }
  }

  void Expire(size_t index) {
    Slot& slot = *slots_[index];
    if (slot.tries >= options_.retransmits) {
      slot.initiator.Fail("timeout in " + slot.initiator.phase());
      Finish(index);
      return;
    }
    ++slot.tries;
    ++report_.retransmits;
    slot.deadline = Clock::now() + options_.timeout * (1 << std::min(slot.tries, 10));
    Send(index, slot.initiator.last_request(), false);
    if (slot.initiator.state() == Initiator::State::kFailed) Finish(index);
  }

  void Finish(size_t index) {
    Slot& slot = *slots_[index];
    const Initiator& initiator = slot.initiator;
    report_.ke_retries += initiator.ke_retries();
    report_.cookie_retries += initiator.cookie_retries();
    if (initiator.state() == Initiator::State::kFailed) {
      RecordFailure(initiator.failure());
    } else if (initiator.state() == Initiator::State::kDone) {
      ++report_.deleted;
    }
    StartNext(index);
  }

  void RecordFailure(const std::string& reason) {
    ++report_.failed;
    ++report_.failures[reason];
  }

  const LoadOptions& options_;
  const InitiatorConfig& config_;
  Budget* budget_;
  std::vector<std::unique_ptr<Slot>> slots_;
  int epoll_ = -1;
  int active_ = 0;
  LoadReport report_;
};

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

double LoadReport::LatencyPercentile(double p) const {
  if (latency_ms.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100 * latency_ms.size()));
  return latency_ms[std::min(latency_ms.size() - 1, rank == 0 ? 0 : rank - 1)];
}

void LoadReport::Merge(LoadReport other) {
  attempted += other.attempted;
  established += other.established;
  deleted += other.deleted;
  failed += other.failed;
  for (const auto& [reason, count] : other.failures) failures[reason] += count;
  latency_ms.insert(latency_ms.end(), other.latency_ms.begin(), other.latency_ms.end());
  std::sort(latency_ms.begin(), latency_ms.end());
  retransmits += other.retransmits;
  ke_retries += other.ke_retries;
  cookie_retries += other.cookie_retries;
  udp_encapsulated += other.udp_encapsulated;
  if (ike_transforms.empty()) {
    ike_transforms = std::move(other.ike_transforms);
    esp_transforms = std::move(other.esp_transforms);
    virtual_ip = std::move(other.virtual_ip);
  }
}

LoadReport RunLoad(const LoadOptions& options, const InitiatorConfig& config) {
  Budget budget;
  budget.by_count = options.handshakes > 0;
  budget.remaining = options.handshakes;
  budget.end = Clock::now() + options.duration;
  const int threads = std::max(1, std::min(options.threads, options.parallel));
  const double cpu_before = ProcessCpuSeconds();
  const Clock::time_point start = Clock::now();
  LoadReport total;
  absl::Mutex mu;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    const int slots = options.parallel / threads + (t < options.parallel % threads ? 1 : 0);
    workers.emplace_back([&, slots] {
      EventLoop loop(options, config, slots, &budget);
      LoadReport part = loop.Run();
      absl::MutexLock lock(&mu);
      total.Merge(std::move(part));
    });
  }
  for (std::thread& worker : workers) worker.join();
  total.elapsed_s = Seconds(Clock::now() - start);
  total.loadgen_cpu_s = ProcessCpuSeconds() - cpu_before;
  return total;
}

std::string ReportText(const LoadReport& r) {
  std::string out = absl::StrFormat(
      "attempted %d, established %d, deleted %d, failed %d in %.3f s\n"
      "handshakes/s %.1f; latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n"
      "retransmits %d, INVALID_KE retries %d, COOKIE retries %d, moved to 4500: %d\n"
      "load generator CPU %.3f s (%.3f ms per handshake)\n",
      r.attempted, r.established, r.deleted, r.failed, r.elapsed_s, r.handshakes_per_second(),
      r.LatencyPercentile(50), r.LatencyPercentile(90), r.LatencyPercentile(99),
      r.LatencyPercentile(100), r.retransmits, r.ke_retries, r.cookie_retries, r.udp_encapsulated,
      r.loadgen_cpu_s, r.established > 0 ? 1000 * r.loadgen_cpu_s / r.established : 0.0);
  if (!r.ike_transforms.empty()) {
    absl::StrAppend(&out, "negotiated IKE ", r.ike_transforms, ", ESP ", r.esp_transforms,
                    "; e.g. virtual IP ", r.virtual_ip, "\n");
  }
  for (const auto& [reason, count] : r.failures) {
    absl::StrAppend(&out, "failure x", count, ": ", reason, "\n");
  }
  return out;
}

std::string ReportJson(const LoadReport& r) {
  std::string failures;
  for (const auto& [reason, count] : r.failures) {
    absl::StrAppend(&failures, failures.empty() ? "" : ", ", JsonString(reason), ": ", count);
  }
  return absl::StrFormat(
      "{\"attempted\": %d, \"established\": %d, \"deleted\": %d, \"failed\": %d, "
      "\"failures\": {%s}, \"elapsed_s\": %.6f, \"handshakes_per_s\": %.3f, "
      "\"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
      "\"retransmits\": %d, \"ke_retries\": %d, \"cookie_retries\": %d, "
      "\"udp_encapsulated\": %d, \"loadgen_cpu_s\": %.6f, \"ike\": %s, \"esp\": %s, "
      "\"virtual_ip\": %s}",
      r.attempted, r.established, r.deleted, r.failed, failures, r.elapsed_s,
      r.handshakes_per_second(), r.LatencyPercentile(50), r.LatencyPercentile(90),
      r.LatencyPercentile(99), r.LatencyPercentile(100), r.retransmits, r.ke_retries,
      r.cookie_retries, r.udp_encapsulated, r.loadgen_cpu_s, JsonString(r.ike_transforms),
      JsonString(r.esp_transforms), JsonString(r.virtual_ip));
}

}  // namespace vpn::loadgen
