// Chooses a Store backend from a config string.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/rpc/server_options.h"
#include "common/store/store.h"

namespace vpn::store {

// "embedded:<data dir>"                EmbeddedStore with default options
// "etcd:<host:port>[,<host:port>...]"  EtcdStore: TLS with the client
//                                      certificate in `tls` when enabled
//                                      (etcd's user is its CN), else plain
//                                      text without auth
// `tls` with an embedded store is refused. Use EmbeddedStore::Open /
// EtcdStore::Connect directly for more options.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(absl::string_view config,
                                                 const rpc::TlsFiles& tls = {});

}  // namespace vpn::store
