#include "common/store/store_factory.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/store/embedded_store.h"
#include "common/store/etcd_store.h"

namespace vpn::store {

absl::StatusOr<std::unique_ptr<Store>> OpenStore(absl::string_view config,
                                                 const rpc::TlsFiles& tls) {
  absl::string_view rest = config;
  if (absl::ConsumePrefix(&rest, "embedded:")) {
    if (tls.enabled()) {
      return absl::InvalidArgumentError("store TLS applies to an etcd store only");
    }
    if (rest.empty()) {
      return absl::InvalidArgumentError("store config 'embedded:' needs a data dir");
    }
    EmbeddedOptions options;
    options.dir = std::string(rest);
    auto store = EmbeddedStore::Open(options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(*store));
  }
  if (absl::ConsumePrefix(&rest, "etcd:")) {
    EtcdOptions options;
    options.tls = tls;
    for (absl::string_view e : absl::StrSplit(rest, ',', absl::SkipWhitespace())) {
      options.endpoints.emplace_back(absl::StripAsciiWhitespace(e));
    }
    if (options.endpoints.empty()) {
      return absl::InvalidArgumentError("store config 'etcd:' needs host:port endpoints");
    }
    auto store = EtcdStore::Connect(options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(*store));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "store config '", config,
      "' must be 'embedded:<data dir>' or 'etcd:<host:port>[,<host:port>...]'"));
}

}  // namespace vpn::store
