// Starts a throw-away single-member etcd (/usr/bin/etcd, Debian's
// etcd-server) on free loopback ports with its data in `data_dir`; for tests
// and the benchmark. Can be killed and restarted on the same dir and ports.
// Plain text by default; TLS with a server certificate; or "production
// mode": client certificates required and the services' roles enforced.
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
    // Production mode, with the files of tools/service-pki.sh in `pki_dir`:
    // TLS with etcd.crt, a client certificate from ca.crt required
    // (--client-cert-auth, --trusted-ca-file; the CN is the etcd user), and
    // `rbac_script` (tools/etcd-rbac.sh) run once etcd serves, which
    // creates the roles and enables auth. The start-up check and the script
    // use root.crt. Overrides cert_file, key_file and ca_file.
    std::string pki_dir;
    std::string rbac_script;
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
  // Production mode's PKI directory; empty otherwise.
  const std::string& pki_dir() const { return options_.pki_dir; }

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

// A file of the source tree in a test's runfiles ("tools/etcd-rbac.sh").
std::string TestRunfile(const std::string& relative);

// A production-mode etcd (Options::pki_dir) with a fresh PKI made by
// tools/service-pki.sh in `dir`/pki and data in `dir`/etcd. The test needs
// //tools:etcd_rbac as data.
absl::StatusOr<std::unique_ptr<EtcdLauncher>> StartProductionTestEtcd(
    const std::string& dir);

// Like SharedTestEtcd, in production mode, under $TEST_TMPDIR/etcd-rbac.
EtcdLauncher& SharedProductionTestEtcd();

}  // namespace vpn::store
