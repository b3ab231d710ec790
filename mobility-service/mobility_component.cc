#include "mobility-service/mobility_component.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/store/store_handle.h"
#include "mobility-service/outage/outage_policy.h"

namespace vpn::mobility {

void ReadMobilityServiceConfig(config::ConfigReader& reader,
                               MobilityServiceConfig* out) {
  reader.Duration("outage_window", &out->outage_window);
  reader.Duration("liveness_timeout", &out->liveness_timeout);
  reader.Duration("liveness_persist_interval", &out->liveness_persist_interval);
  reader.Uint("path_history", 1, 1000, &out->path_history);
  store::ReadStoreConfig(reader, &out->store);
  if (out->outage_window < absl::Seconds(10)) {
    return reader.Fail("outage_window", "must be at least 10s");
  }
  if (out->liveness_timeout < absl::Seconds(1)) {
    return reader.Fail("liveness_timeout", "must be at least 1s");
  }
  if (out->liveness_timeout >= out->outage_window) {
    return reader.Fail("liveness_timeout", "must be shorter than outage_window");
  }
  if (out->liveness_persist_interval < absl::Seconds(1) ||
      out->liveness_persist_interval >= out->liveness_timeout) {
    return reader.Fail("liveness_persist_interval",
                       "must be at least 1s and shorter than liveness_timeout");
  }
}

absl::StatusOr<std::unique_ptr<MobilityComponent>> MobilityComponent::Create(
    const MobilityServiceConfig& config, prometheus::Registry& registry) {
  ManagerOptions options;
  options.outage.outage_window = config.outage_window;
  options.outage.liveness_timeout = config.liveness_timeout;
  if (absl::Status valid = ValidateOutageOptions(options.outage); !valid.ok()) return valid;
  options.persist_interval = config.liveness_persist_interval;
  options.history_limit = config.path_history;

  std::unique_ptr<MobilityComponent> component(new MobilityComponent());
  if (config.shared_store.has_value()) {
    component->store_ = config.shared_store->store;
  } else {
    absl::StatusOr<std::shared_ptr<store::Store>> opened = store::OpenConfiguredStore(config.store, "mobility-service");
    if (!opened.ok()) return opened.status();
    component->store_ = std::move(*opened);
  }
  component->manager_ = std::make_unique<MobilityManager>(
      component->store_.get(), Clock::Real(), options, registry);
  component->service_ = std::make_unique<MobilityServiceImpl>(component->manager_.get());
  component->manager_->Start();
  return component;
}

MobilityComponent::~MobilityComponent() { Stop(); }

void MobilityComponent::Stop() {
  if (manager_ != nullptr) manager_->Stop();
}

}  // namespace vpn::mobility
