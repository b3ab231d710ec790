// Starts a throw-away single-member etcd (/usr/bin/etcd, Debian's
// etcd-server) on free loopback ports with its data in `data_dir`; for tests
// and the benchmark. Can be killed and restarted on the same dir and ports.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vpn::store {

class EtcdLauncher {
 public:
  struct Options {
    std::string data_dir;
    // TLS for clients: server certificate and key (PEM), and the CA that
    // signed them (used for the health check).
    std::string cert_file;
    std::string key_file;
    std::string ca_file;
    std::vector<std::string> extra_args;
  };

  static absl::StatusOr<std::unique_ptr<EtcdLauncher>> Start(Options options);
  ~EtcdLauncher();

  // SIGKILLs etcd (no graceful shutdown) and waits for it.
  void Kill();
  // Starts it again on the same data dir and ports; waits until healthy.
  absl::Status Restart();

  std::string endpoint() const;  // "127.0.0.1:<port>"
  pid_t pid() const { return pid_; }
  const std::string& data_dir() const { return options_.data_dir; }

 private:
  explicit EtcdLauncher(Options options) : options_(std::move(options)) {}
  absl::Status Spawn();
  absl::Status WaitHealthy();

  Options options_;
  int client_port_ = 0;
  int peer_port_ = 0;
  pid_t pid_ = -1;
};

// One etcd for a whole test binary, started on first use with its data in
// $TEST_TMPDIR/etcd; aborts the test binary if it cannot start.
EtcdLauncher& SharedTestEtcd();

}  // namespace vpn::store
