// Store benchmark (a program, not a test): both backends side by side.
//   bazel run -c opt //common/store:store_benchmark [-- --seconds=3 --records=100000]
// Starts its own etcd (/usr/bin/etcd) in a temporary directory. Prints a
// Markdown table (the one in docs/benchmarks.md, section "Store").
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/store/embedded_store.h"
#include "common/store/etcd_launcher.h"
#include "common/store/etcd_store.h"

namespace vpn::store {
namespace {

constexpr size_t kRecordBytes = 600;  // a serialized SA record with sealed keys

struct Config {
  double seconds = 3;
  int records = 100000;
  int writers = 8;
};

struct Row {
  double writes_1 = 0;
  double writes_n = 0;
  double increments_per_s = 0;
  double conflict_rate = 0;
  bool counter_correct = false;
  double watch_p50_us = 0;
  double watch_p99_us = 0;
  double rss_mib = 0;
  double disk_mib = 0;
};

int64_t RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    if (absl::ConsumePrefix(&v, "VmRSS:")) {
      int64_t kib = 0;
      (void)absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(v), " kB"), &kib);
      return kib;
    }
  }
  return 0;
}

double DirMib(const std::string& dir) {
  std::string cmd = absl::StrCat("du -sk '", dir, "' 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  long kib = 0;
  if (p != nullptr) {
    if (fscanf(p, "%ld", &kib) != 1) kib = 0;
    pclose(p);
  }
  return kib / 1024.0;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Writes(Store& store, const std::string& prefix, int threads, double seconds) {
  std::atomic<int64_t> done{0};
  std::atomic<bool> stop{false};
  const std::string value(kRecordBytes, 'r');
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        if (store.Put(absl::StrCat(prefix, t, "/", i % 1000), value).ok()) ++done;
      }
    });
  }
  absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  return done.load() / absl::ToDoubleSeconds(absl::Now() - start);
}

void Contention(Store& store, const std::string& key, const Config& c, Row* row) {
  (void)store.Put(key, "0");
  std::atomic<int64_t> wins{0}, conflicts{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < c.writers; ++t) {
    ts.emplace_back([&] {
      while (!stop.load()) {
        auto kv = store.Get(key);
        if (!kv.ok()) {
          ++errors;
          continue;
        }
        int64_t n = 0;
        (void)absl::SimpleAtoi(kv->value, &n);
        auto r = store.Put(key, absl::StrCat(n + 1), {Condition::VersionIs(kv->version)});
        if (r.ok()) {
          ++wins;
        } else if (IsConflict(r.status())) {
          ++conflicts;
        } else {
          ++errors;
        }
      }
    });
  }
  absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(c.seconds));
  stop = true;
  for (auto& t : ts) t.join();
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  row->increments_per_s = wins.load() / secs;
  row->conflict_rate =
      static_cast<double>(conflicts.load()) / std::max<int64_t>(1, wins + conflicts);
  auto final_value = store.Get(key);
  int64_t n = -1;
  if (final_value.ok()) (void)absl::SimpleAtoi(final_value->value, &n);
  row->counter_correct = (n == wins.load()) && errors.load() == 0;
}

void WatchLatency(Store& store, const std::string& prefix, Row* row) {
  auto watcher = store.Watch(prefix, 0);
  if (!watcher.ok()) {
    std::fprintf(stderr, "watch failed: %s\n", watcher.status().ToString().c_str());
    return;
  }
  constexpr int kEvents = 1000;
  std::vector<double> latencies_us;
  std::thread reader([&] {
    while (static_cast<int>(latencies_us.size()) < kEvents) {
      auto e = (*watcher)->Next(absl::Seconds(10));
      if (!e.ok()) break;
      int64_t sent = 0;
      (void)absl::SimpleAtoi(e->kv.value.substr(0, e->kv.value.find(' ')), &sent);
      latencies_us.push_back((NowNs() - sent) / 1000.0);
    }
  });
  const std::string pad(kRecordBytes - 24, 'p');
  for (int i = 0; i < kEvents; ++i) {
    (void)store.Put(absl::StrCat(prefix, i % 50), absl::StrCat(NowNs(), " ", pad));
    absl::SleepFor(absl::Microseconds(500));
  }
  reader.join();
  if (latencies_us.empty()) return;
  std::sort(latencies_us.begin(), latencies_us.end());
  row->watch_p50_us = latencies_us[latencies_us.size() / 2];
  row->watch_p99_us = latencies_us[latencies_us.size() * 99 / 100];
}

// Loads `records` SA-sized records in Txns of 100; returns RSS growth of
// `pid` in MiB.
double Memory(Store& store, pid_t pid, const std::string& data_dir, int records,
              Row* row) {
  malloc_trim(0);
  int64_t before = RssKib(pid);
  std::string value(kRecordBytes, 's');
  for (int i = 0; i < records; i += 100) {
    std::vector<Op> ops;
    for (int j = i; j < std::min(records, i + 100); ++j) {
      value.replace(0, 8, absl::StrFormat("%08d", j));
      ops.push_back(Op::Put(absl::StrFormat("/mem/sa/%08d", j), value));
    }
    auto r = store.Txn(ops);
    if (!r.ok()) {
      std::fprintf(stderr, "load failed: %s\n", r.status().ToString().c_str());
      return 0;
    }
  }
  absl::SleepFor(absl::Seconds(1));  // let snapshots / etcd commits settle
  malloc_trim(0);
  row->disk_mib = DirMib(data_dir);
  row->rss_mib = (RssKib(pid) - before) / 1024.0 * (100000.0 / records);
  return row->rss_mib;
}

void RunAll(Store& store, pid_t server_pid, const std::string& data_dir,
            const Config& c, Row* row) {
  Memory(store, server_pid, data_dir, c.records, row);
  row->writes_1 = Writes(store, "/w1/", 1, c.seconds);
  row->writes_n = Writes(store, "/wn/", c.writers, c.seconds);
  Contention(store, "/counter", c, row);
  WatchLatency(store, "/watch/", row);
}

}  // namespace
}  // namespace vpn::store

int main(int argc, char** argv) {
  using namespace vpn::store;
  Config c;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--seconds=")) (void)absl::SimpleAtod(a, &c.seconds);
    if (absl::ConsumePrefix(&a, "--records=")) (void)absl::SimpleAtoi(a, &c.records);
    if (absl::ConsumePrefix(&a, "--writers=")) (void)absl::SimpleAtoi(a, &c.writers);
  }
  char tmpl[] = "/tmp/store_benchmark.XXXXXX";
  std::string root = mkdtemp(tmpl);

  Row embedded_row, etcd_row;
  {
    EmbeddedOptions options;
    options.dir = root + "/embedded";
    auto store = EmbeddedStore::Open(options);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    std::fprintf(stderr, "embedded...\n");
    RunAll(**store, getpid(), options.dir, c, &embedded_row);
  }
  {
    EtcdLauncher::Options options;
    options.data_dir = root + "/etcd";
    auto etcd = EtcdLauncher::Start(options);
    if (!etcd.ok()) {
      std::fprintf(stderr, "%s\n", etcd.status().ToString().c_str());
      return 1;
    }
    EtcdOptions eo;
    eo.endpoints = {(*etcd)->endpoint()};
    auto store = EtcdStore::Connect(eo);
    if (!store.ok()) return 1;
    std::fprintf(stderr, "etcd...\n");
    RunAll(**store, (*etcd)->pid(), options.data_dir, c, &etcd_row);
  }
  std::string cmd = absl::StrCat("rm -rf '", root, "'");
  if (system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot remove %s\n", root.c_str());

  auto line = [](const char* what, const std::string& a, const std::string& b) {
    std::printf("| %s | %s | %s |\n", what, a.c_str(), b.c_str());
  };
  std::printf("| metric | embedded | etcd 3.4.23 (local, 1 member) |\n|---|---|---|\n");
  line("writes/s, 1 writer (600 B values)", absl::StrFormat("%.0f", embedded_row.writes_1),
       absl::StrFormat("%.0f", etcd_row.writes_1));
  line(absl::StrFormat("writes/s, %d writers", c.writers).c_str(),
       absl::StrFormat("%.0f", embedded_row.writes_n),
       absl::StrFormat("%.0f", etcd_row.writes_n));
  line(absl::StrFormat("conflict rate, %d threads incrementing one key", c.writers).c_str(),
       absl::StrFormat("%.1f%%", 100 * embedded_row.conflict_rate),
       absl::StrFormat("%.1f%%", 100 * etcd_row.conflict_rate));
  line("successful increments/s (counter exact?)",
       absl::StrFormat("%.0f (%s)", embedded_row.increments_per_s,
                       embedded_row.counter_correct ? "yes" : "NO"),
       absl::StrFormat("%.0f (%s)", etcd_row.increments_per_s,
                       etcd_row.counter_correct ? "yes" : "NO"));
  line("watch propagation p50", absl::StrFormat("%.0f us", embedded_row.watch_p50_us),
       absl::StrFormat("%.0f us", etcd_row.watch_p50_us));
  line("watch propagation p99", absl::StrFormat("%.0f us", embedded_row.watch_p99_us),
       absl::StrFormat("%.0f us", etcd_row.watch_p99_us));
  line("memory per 100,000 records (RSS growth)",
       absl::StrFormat("%.0f MiB (gateway process)", embedded_row.rss_mib),
       absl::StrFormat("%.0f MiB (etcd process)", etcd_row.rss_mib));
  line("data dir after 100,000 records", absl::StrFormat("%.0f MiB", embedded_row.disk_mib),
       absl::StrFormat("%.0f MiB", etcd_row.disk_mib));
  return 0;
}
