#include "auth-service/auth_component.h"

#include <ftw.h>
#include <stdlib.h>

#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth-service/auth_service_impl.h"
#include "auth-service/certs/cert_validator.h"
#include "auth-service/eap/brute_force_guard.h"
#include "auth-service/eap/eap_session.h"
#include "auth-service/eap/mschapv2_server.h"
#include "auth-service/secret_file.h"
#include "auth-service/signer/gateway_signer.h"
#include "auth-service/users/user_store.h"
#include "auth-service/users/users_file.h"
#include "common/crypto/crypto.h"
#include "common/fs/read_file.h"
#include "common/log/log.h"
#include "common/store/sealer.h"
#include "common/store/store_factory.h"
#include "common/store/store_handle.h"

namespace vpn::auth {
namespace {

const log::Logger& Log() {
  static const log::Logger* log = new log::Logger("auth-service");
  return *log;
}

bool Persistent(const AuthServiceConfig& config) {
  return !config.store.empty() || !config.data_dir.empty();
}

absl::StatusOr<std::unique_ptr<GatewaySigner>> LoadSigner(
    const AuthServiceConfig& config, std::string* failed_field) {
  *failed_field = "gateway_cert_file";
  absl::StatusOr<std::string> chain = fs::ReadFile(config.gateway_cert_file);
  if (!chain.ok()) return chain.status();
  *failed_field = "gateway_key_file";
  absl::StatusOr<std::string> key = ReadSecretFile(config.gateway_key_file);
  if (!key.ok()) return key.status();
  auto signer = GatewaySigner::Load(crypto::GetProvider(), *chain, *key);
  crypto::SecureZero(key->data(), key->size());
  if (!signer.ok() &&
      absl::StartsWith(signer.status().message(), "certificate chain")) {
    *failed_field = "gateway_cert_file";
  }
  return signer;
}

absl::StatusOr<std::unique_ptr<CertValidator>> LoadValidator(
    const AuthServiceConfig& config, std::string* failed_field) {
  *failed_field = "ca_file";
  absl::StatusOr<std::string> cas = fs::ReadFile(config.ca_file);
  if (!cas.ok()) return cas.status();
  std::vector<std::string> crls;
  *failed_field = "crl_files";
  for (const std::string& path : config.crl_files) {
    absl::StatusOr<std::string> crl = fs::ReadFile(path);
    if (!crl.ok()) return crl.status();
    crls.push_back(*std::move(crl));
  }
  auto validator = CertValidator::Load(crypto::GetProvider(), *cas, crls);
  if (!validator.ok() && crls.empty()) *failed_field = "ca_file";
  return validator;
}

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  return std::remove(path);
}

}  // namespace

void ReadAuthServiceConfig(config::ConfigReader& reader, AuthServiceConfig* out) {
  reader.String("store", &out->store);
  store::ReadStoreTls(reader, out->store, &out->store_tls);
  reader.String("data_dir", &out->data_dir);
  reader.String("credentials_key_file", &out->credentials_key_file);
  reader.String("gateway_cert_file", &out->gateway_cert_file);
  reader.String("gateway_key_file", &out->gateway_key_file);
  reader.String("ca_file", &out->ca_file);
  reader.StringList("crl_files", &out->crl_files);
  reader.Duration("eap_session_ttl", &out->eap_session_ttl);
  reader.Uint("eap_max_sessions", 1, 1000000, &out->eap_max_sessions);
  reader.Uint("eap_max_sessions_per_address", 1, 1000000, &out->eap_max_sessions_per_address);
  reader.Uint("eap_retries", 0, 5, &out->eap_retries);
  reader.Bool("eap_failure_request", &out->eap_failure_request);
  reader.Uint("max_failures_per_user", 0, 1000000, &out->max_failures_per_user);
  reader.Uint("max_failures_per_address", 0, 1000000,
              &out->max_failures_per_address);
  reader.Duration("failure_window", &out->failure_window);
  reader.Duration("lockout", &out->lockout);
  reader.Uint("failure_tracking_limit", 100, 10000000,
              &out->failure_tracking_limit);
  reader.String("users_file", &out->users_file);

  if (!out->store.empty() && !absl::StartsWith(out->store, "embedded:") &&
      !absl::StartsWith(out->store, "etcd:")) {
    reader.Fail("store", "must be \"embedded:<dir>\" or \"etcd:<host:port>,...\"");
  }
  if (!out->store.empty() && !out->data_dir.empty()) {
    reader.Fail("data_dir", "set either store or data_dir, not both");
  }
  if (Persistent(*out) && out->credentials_key_file.empty()) {
    reader.Fail("credentials_key_file",
                "required when store or data_dir is set (it seals the stored "
                "NT hashes)");
  }
  if (!out->credentials_key_file.empty()) {
    absl::Status mode = CheckSecretFileMode(out->credentials_key_file);
    if (!mode.ok()) {
      reader.Fail("credentials_key_file", mode.message());
    } else if (auto sealer = store::Sealer::FromKeyFile(out->credentials_key_file);
               !sealer.ok()) {
      reader.Fail("credentials_key_file", sealer.status().message());
    }
  }
  if (out->gateway_cert_file.empty() != out->gateway_key_file.empty()) {
    reader.Fail(out->gateway_cert_file.empty() ? "gateway_cert_file"
                                               : "gateway_key_file",
                "gateway_cert_file and gateway_key_file go together");
  } else if (!out->gateway_cert_file.empty()) {
    std::string field;
    if (auto signer = LoadSigner(*out, &field); !signer.ok()) {
      reader.Fail(field, signer.status().message());
    }
  }
  if (!out->crl_files.empty() && out->ca_file.empty()) {
    reader.Fail("crl_files", "needs ca_file");
  } else if (!out->ca_file.empty()) {
    std::string field;
    if (auto validator = LoadValidator(*out, &field); !validator.ok()) {
      reader.Fail(field, validator.status().message());
    }
  }
  if (out->eap_session_ttl < absl::Seconds(5) ||
      out->eap_session_ttl > absl::Hours(1)) {
    reader.Fail("eap_session_ttl", "must be between 5s and 1h");
  }
  if (out->failure_window < absl::Seconds(1) ||
      out->failure_window > absl::Hours(24)) {
    reader.Fail("failure_window", "must be between 1s and 24h");
  }
  if (out->lockout < absl::Seconds(1) || out->lockout > absl::Hours(24)) {
    reader.Fail("lockout", "must be between 1s and 24h");
  }
  if (!out->users_file.empty()) {
    if (auto users = FileUsers::Load(out->users_file); !users.ok()) {
      reader.Fail("users_file", users.status().message());
    }
  }
}

AuthComponent::AuthComponent(AuthServiceConfig config)
    : config_(std::move(config)) {}

AuthComponent::~AuthComponent() {
  Stop();
  service_.reset();
  sessions_.reset();
  guard_.reset();
  shared_failures_.reset();
  users_file_.reset();
  users_.reset();
  store_.reset();
  if (!temporary_dir_.empty()) {
    nftw(temporary_dir_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
  }
}

std::vector<grpc::Service*> AuthComponent::services() {
  return {service_.get()};
}

v1::Auth::Service* AuthComponent::auth_service() { return service_.get(); }

void AuthComponent::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (sweeper_.joinable()) sweeper_.join();
}

absl::StatusOr<std::unique_ptr<AuthComponent>> AuthComponent::Create(
    const AuthServiceConfig& config, prometheus::Registry& registry) {
  std::unique_ptr<AuthComponent> component(new AuthComponent(config));
  const crypto::Provider& provider = crypto::GetProvider();

  // The user store and its sealing key.
  std::string store_config = config.store;
  if (store_config.empty() && !config.data_dir.empty()) {
    store_config = "embedded:" + config.data_dir;
  }
  if (store_config.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir =
        absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                     "/auth-service.XXXXXX");
    if (mkdtemp(dir.data()) == nullptr) {
      return absl::InternalError("cannot create a temporary user store");
    }
    component->temporary_dir_ = dir;
    store_config = "embedded:" + dir;
    Log().Warning(
        "no store or data_dir configured: users live in a temporary store "
        "and are lost at exit",
        {{"dir", dir}});
  }
  absl::StatusOr<std::unique_ptr<store::Store>> store =
      store::OpenStore(store_config, config.store_tls);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("store: ", store.status().message()));
  }
  component->store_ = *std::move(store);

  std::unique_ptr<store::Sealer> sealer;
  if (!config.credentials_key_file.empty()) {
    auto from_file = store::Sealer::FromKeyFile(config.credentials_key_file);
    if (!from_file.ok()) {
      return absl::Status(from_file.status().code(),
                          absl::StrCat("credentials_key_file: ",
                                       from_file.status().message()));
    }
    sealer = *std::move(from_file);
  } else {
    if (Persistent(config)) {
      return absl::InvalidArgumentError(
          "credentials_key_file: required when store or data_dir is set");
    }
    crypto::SecretBytes key(store::Sealer::kKeySize);
    provider.RandomBytes(key.mutable_span());
    sealer = *store::Sealer::FromKey(key.span());
    Log().Warning("no credentials_key_file configured: stored NT hashes are "
                  "sealed with a random per-process key");
  }
  component->users_ =
      std::make_unique<UserStore>(*component->store_, std::move(sealer));

  // The gateway identity and the client trust anchors.
  if (!config.gateway_cert_file.empty()) {
    std::string field;
    auto signer = LoadSigner(config, &field);
    if (!signer.ok()) {
      return absl::Status(signer.status().code(),
                          absl::StrCat(field, ": ", signer.status().message()));
    }
    component->signer_ = *std::move(signer);
  }
  if (!config.ca_file.empty()) {
    std::string field;
    auto validator = LoadValidator(config, &field);
    if (!validator.ok()) {
      return absl::Status(
          validator.status().code(),
          absl::StrCat(field, ": ", validator.status().message()));
    }
    component->validator_ = *std::move(validator);
  }

  component->metrics_ = std::make_unique<AuthMetrics>(registry);
  if (component->signer_ != nullptr) {
    component->metrics_->GatewayCertificateNotAfter(component->signer_->not_after());
  }
  AuthMetrics* metrics = component->metrics_.get();
  UserStore* users = component->users_.get();

  // Users from users_file, then whenever it changes.
  if (!config.users_file.empty()) {
    UsersFileWatcher::Observer file_observer;
    file_observer.on_reload = [metrics](bool ok) {
      metrics->UsersFileReload(ok);
    };
    file_observer.on_users = [metrics](size_t n) { metrics->UsersFileUsers(n); };
    component->users_file_ = std::make_unique<UsersFileWatcher>(
        config.users_file,
        [users](std::shared_ptr<const FileUsers> file_users) {
          users->SetFileUsers(std::move(file_users));
        },
        file_observer);
    if (absl::Status loaded = component->users_file_->Load(); !loaded.ok()) {
      return absl::Status(loaded.code(),
                          absl::StrCat("users_file: ", loaded.message()));
    }
  }

  // Brute-force protection.
  eap::BruteForceOptions limits;
  limits.max_failures_per_user = config.max_failures_per_user;
  limits.max_failures_per_address = config.max_failures_per_address;
  limits.failure_window = config.failure_window;
  limits.lockout = config.lockout;
  limits.max_tracked = config.failure_tracking_limit;
  // Counted in the store, so every replica applies the same limits.
  component->shared_failures_ =
      eap::SharedFailures::Start(component->store_.get(), 2 * config.failure_tracking_limit);
  limits.shared = component->shared_failures_.get();
  eap::BruteForceObserver guard_observer;
  guard_observer.on_refused = [metrics](absl::string_view scope) {
    metrics->BruteForceRefusal(scope);
  };
  guard_observer.on_lockout = [metrics](absl::string_view scope) {
    metrics->BruteForceLockout(scope);
  };
  guard_observer.on_locked = [metrics](absl::string_view scope, size_t n) {
    metrics->BruteForceLocked(scope, n);
  };
  component->guard_ =
      std::make_unique<eap::BruteForceGuard>(limits, guard_observer);

  // EAP.
  eap::MsChapV2Options mschapv2;
  mschapv2.retries = static_cast<int>(config.eap_retries);
  mschapv2.failure_request = config.eap_failure_request;
  mschapv2.limiter = component->guard_.get();
  eap::SessionOptions session_options;
  session_options.ttl = config.eap_session_ttl;
  session_options.max_sessions = config.eap_max_sessions;
  session_options.max_sessions_per_address = config.eap_max_sessions_per_address;
  eap::SessionObserver observer;
  observer.on_result = [metrics](absl::string_view r) { metrics->EapResult(r); };
  observer.on_active = [metrics](size_t n) { metrics->EapSessionsActive(n); };
  component->sessions_ = std::make_unique<eap::SessionManager>(
      provider,
      [&provider, users, mschapv2](const eap::PeerInfo& peer) {
        return std::make_unique<eap::MsChapV2Server>(provider, *users, mschapv2,
                                                     peer.address);
      },
      session_options, observer);

  component->service_ = std::make_unique<AuthServiceImpl>(
      *component->sessions_, *component->users_, component->signer_.get(),
      component->validator_.get(), *metrics);

  AuthComponent* self = component.get();
  component->sweeper_ = std::thread([self] {
    log::SetThreadName("auth-sweep");
    for (uint64_t tick = 1;
         !self->stop_.WaitForNotificationWithTimeout(absl::Seconds(1));
         ++tick) {
      self->sessions_->Sweep();
      self->guard_->Sweep();
      if (self->users_file_ != nullptr && tick % 2 == 0) {
        self->users_file_->Poll();
      }
    }
  });

  Log().Info(
      "auth-service configured",
      {{"store", component->temporary_dir_.empty() ? store_config
                                                   : "temporary"},
       {"gateway_certificate",
        component->signer_ ? component->signer_->subject() : "none"},
       {"client_ca", config.ca_file.empty() ? "none" : config.ca_file},
       {"crl_files", config.crl_files.size()},
       {"eap_retries", config.eap_retries},
       {"users_file", config.users_file.empty() ? "none" : config.users_file},
       {"max_failures_per_user", config.max_failures_per_user},
       {"max_failures_per_address", config.max_failures_per_address},
       {"failure_window_seconds", absl::ToInt64Seconds(config.failure_window)},
       {"lockout_seconds", absl::ToInt64Seconds(config.lockout)}});
  return component;
}

}  // namespace vpn::auth
