#include "common/store/store_handle.h"

#include <stdlib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/store/store_factory.h"

namespace vpn::store {

void ReadStoreConfig(config::ConfigReader& reader, StoreConfig* out) {
  reader.String("store", &out->store);
  if (!out->store.empty() && !absl::StartsWith(out->store, "embedded:") &&
      !absl::StartsWith(out->store, "etcd:")) {
    reader.Fail("store", "must be embedded:<dir> or etcd:<host:port>[,...]");
  }
  ReadStoreTls(reader, out->store, &out->tls);
  reader.String("store_key_file", &out->key_file);
}

void ReadStoreTls(config::ConfigReader& reader, absl::string_view store,
                  rpc::TlsFiles* out) {
  rpc::ReadTlsFiles(reader, "store_tls", out);
  if (out->enabled() && !absl::StartsWith(store, "etcd:")) {
    reader.Fail("store_tls", "applies to an etcd store only (store: etcd:<host:port>)");
  }
}

absl::StatusOr<std::shared_ptr<Store>> OpenConfiguredStore(const StoreConfig& config,
                                                           const std::string& component) {
  std::string where = config.store;
  if (where.empty()) {
    std::string dir = absl::StrCat("/tmp/", component, "-store.XXXXXX");
    if (mkdtemp(dir.data()) == nullptr) {
      return absl::InternalError("cannot make a temporary store directory");
    }
    where = "embedded:" + dir;
    log::Logger(component).Warning(
        "no store configured; SA state will not survive a restart", {{"store", where}});
  }
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(where, config.tls);
  if (!store.ok()) return store.status();
  return std::shared_ptr<Store>(std::move(*store));
}

absl::StatusOr<StoreHandle> OpenStoreHandle(const StoreConfig& config,
                                            const std::string& component) {
  const log::Logger log(component);
  absl::StatusOr<std::shared_ptr<Store>> store = OpenConfiguredStore(config, component);
  if (!store.ok()) return store.status();
  StoreHandle handle;
  handle.store = *std::move(store);
  if (config.key_file.empty()) {
    crypto::SecretBytes key(Sealer::kKeySize);
    crypto::GetProvider().RandomBytes(key.mutable_span());
    absl::StatusOr<std::unique_ptr<Sealer>> sealer = Sealer::FromKey(key.span());
    if (!sealer.ok()) return sealer.status();
    handle.sealer = std::move(*sealer);
    log.Warning("no store_key_file configured; sealed keys will not open after a restart");
  } else {
    absl::StatusOr<std::unique_ptr<Sealer>> sealer = Sealer::FromKeyFile(config.key_file);
    if (!sealer.ok()) return sealer.status();
    handle.sealer = std::move(*sealer);
  }
  return handle;
}

}  // namespace vpn::store
