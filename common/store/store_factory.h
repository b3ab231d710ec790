// Chooses a Store backend from a config string.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/store/store.h"

namespace vpn::store {

// "embedded:<data dir>"                EmbeddedStore with default options
// "etcd:<host:port>[,<host:port>...]"  EtcdStore, plain text, no auth
// Use EmbeddedStore::Open / EtcdStore::Connect directly for more options.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(absl::string_view config);

}  // namespace vpn::store
