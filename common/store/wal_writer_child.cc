// Test helper for embedded_crash_test: opens an EmbeddedStore in argv[1] and
// writes unique keys "crash/<round>/<thread>/<i>" from several threads until
// killed, printing "ack <key> <revision>" on stdout after each acknowledged
// write. Segments are small, so WAL rotation and snapshots happen while it
// is being killed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/store/embedded_store.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <data dir> <round>\n", argv[0]);
    return 2;
  }
  vpn::store::EmbeddedOptions options;
  options.dir = argv[1];
  options.segment_bytes = 128 << 10;
  auto store = vpn::store::EmbeddedStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open failed: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  absl::Mutex out_mu;
  const std::string value(600, 's');
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        std::string key = absl::StrCat("crash/", argv[2], "/", t, "/", i);
        auto r = (*store)->Put(key, value);
        if (!r.ok()) {
          std::fprintf(stderr, "put failed: %s\n", r.status().ToString().c_str());
          std::_Exit(1);
        }
        std::string line = absl::StrCat("ack ", key, " ", r->revision, "\n");
        absl::MutexLock lock(&out_mu);
        // write(2), not stdio: a line is in the pipe before we go on.
        if (write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          std::_Exit(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}
