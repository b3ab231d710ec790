// auth-service: EAP and certificate authentication. The only component that
// holds user credentials and the gateway's private key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/config/config_reader.h"
#include "common/rpc/component.h"
#include "common/rpc/server_options.h"
#include "prometheus/registry.h"
#include "proto/vpn/v1/auth.grpc.pb.h"

namespace vpn::store {
class Store;
}

namespace vpn::auth {

class AuthMetrics;
class AuthServiceImpl;
class CertValidator;
class GatewaySigner;
class UserStore;
class UsersFileWatcher;
namespace eap {
class BruteForceGuard;
class SharedFailures;
class SessionManager;
}

struct AuthServiceConfig {
  rpc::ServerOptions server;
  // Where users live: "embedded:<dir>" or "etcd:<host:port>[,...]". When
  // empty, an embedded store in `data_dir`; when both are empty, a
  // temporary store that is deleted at exit (a warning says so).
  std::string store;
  rpc::TlsFiles store_tls;  // etcd only: TLS, this service's client certificate
  std::string data_dir;
  // 32-byte key (mode 0600) sealing the NT hashes; required with a
  // persistent store, else a random per-process key.
  std::string credentials_key_file;
  // The gateway's identity: PEM chain (leaf first) and PEM key (mode 0600).
  std::string gateway_cert_file;
  std::string gateway_key_file;
  // Trust anchors and CRLs for client certificates.
  std::string ca_file;
  std::vector<std::string> crl_files;
  // EAP sessions.
  absl::Duration eap_session_ttl = absl::Seconds(60);
  uint64_t eap_max_sessions = 10000;
  uint64_t eap_max_sessions_per_address = 128;
  uint64_t eap_retries = 0;          // MSCHAPv2 retries after a wrong password
  bool eap_failure_request = false;  // end with an R=0 Failure request
  // Brute-force protection (eap/brute_force_guard.h): failed attempts per
  // user name and per client address (IPv6: per /64) within the window,
  // past which that user or address is refused for `lockout`. 0 disables.
  uint64_t max_failures_per_user = 5;
  uint64_t max_failures_per_address = 20;
  absl::Duration failure_window = absl::Minutes(15);
  absl::Duration lockout = absl::Minutes(15);
  uint64_t failure_tracking_limit = 100000;  // names, and addresses, tracked
  // YAML users with NT hashes (users/users_file.h), mode 0600; re-read when
  // it changes. Its users shadow stored ones and are read-only to the API.
  std::string users_file;
};

void ReadAuthServiceConfig(config::ConfigReader& reader, AuthServiceConfig* out);

class AuthComponent : public rpc::Component {
 public:
  static absl::StatusOr<std::unique_ptr<AuthComponent>> Create(
      const AuthServiceConfig& config, prometheus::Registry& registry);
  ~AuthComponent() override;

  std::vector<grpc::Service*> services() override;
  void Stop() override;
  // For `gateway`, which calls it directly.
  v1::Auth::Service* auth_service();

 private:
  explicit AuthComponent(AuthServiceConfig config);

  AuthServiceConfig config_;
  std::string temporary_dir_;  // removed on destruction
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<UserStore> users_;
  std::unique_ptr<GatewaySigner> signer_;
  std::unique_ptr<CertValidator> validator_;
  std::unique_ptr<AuthMetrics> metrics_;
  std::unique_ptr<UsersFileWatcher> users_file_;  // when configured
  std::unique_ptr<eap::SharedFailures> shared_failures_;
  std::unique_ptr<eap::BruteForceGuard> guard_;
  std::unique_ptr<eap::SessionManager> sessions_;
  std::unique_ptr<AuthServiceImpl> service_;
  absl::Notification stop_;
  // Housekeeping: sweeps sessions and the guard each second, polls
  // users_file every 2 s.
  std::thread sweeper_;
};

}  // namespace vpn::auth
