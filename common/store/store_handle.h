// A service's store and the sealer for its keying material, opened from the
// `store`, `store_tls` and `store_key_file` config fields. In `gateway` one handle is
// shared by all four components.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config/config_reader.h"
#include "common/rpc/server_options.h"
#include "common/store/sealer.h"
#include "common/store/store.h"

namespace vpn::store {

struct StoreConfig {
  std::string store;     // "embedded:<dir>" or "etcd:<host:port>[,...]"
  std::string key_file;  // 32-byte sealing key, mode 0600 or stricter
  rpc::TlsFiles tls;     // etcd only: TLS, this service's client certificate
};

struct StoreHandle {
  std::shared_ptr<Store> store;
  std::shared_ptr<Sealer> sealer;
};

// Reads `store`, `store_tls` and `store_key_file`.
void ReadStoreConfig(config::ConfigReader& reader, StoreConfig* out);

// Reads `store_tls` (cert_file, key_file, ca_file: the certificate whose CN
// is this service's etcd user) for the `store` value already read; set with
// any store but etcd it is an error. For auth-service, which reads `store`
// itself.
void ReadStoreTls(config::ConfigReader& reader, absl::string_view store,
                  rpc::TlsFiles* out);

// Opens both. Without `store`, an embedded store in a fresh temporary
// directory; without `key_file`, a random key held only in memory. Both are
// logged as warnings, since neither survives a restart.
absl::StatusOr<StoreHandle> OpenStoreHandle(const StoreConfig& config,
                                            const std::string& component);

// The store alone, for a component that never opens sealed keys; the same
// temporary fallback as OpenStoreHandle.
absl::StatusOr<std::shared_ptr<Store>> OpenConfiguredStore(const StoreConfig& config,
                                                           const std::string& component);

}  // namespace vpn::store
