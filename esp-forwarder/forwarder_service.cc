#include "esp-forwarder/forwarder_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/store/sa_keys.h"

namespace vpn::forwarder {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (store::IsConflict(status)) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, std::string(status.message()));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

void Fill(const SaEntry& entry, v1::SaCounters* out) {
  const esp::SaCounters counters = entry.sa->counters();
  out->set_inbound_spi(entry.sa->inbound_spi());
  out->set_outbound_spi(entry.sa->outbound_spi());
  out->set_bytes_in(counters.bytes_in);
  out->set_bytes_out(counters.bytes_out);
  out->set_packets_in(counters.packets_in);
  out->set_packets_out(counters.packets_out);
  out->set_replay_drops(counters.replay_drops);
  out->set_auth_failures(counters.auth_failures);
}

}  // namespace

grpc::Status ForwarderService::Write(const v1::InstallSaRequest& request, bool create) {
  if (store_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this forwarder has no store; SAs are installed from the store");
  }
  const v1::ChildSa& record = request.child_sa();
  if (record.inbound_spi() == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "child_sa.inbound_spi: must not be 0");
  }
  if (record.sealed_keys().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "child_sa.sealed_keys: missing (keys are sealed before they are written)");
  }
  store::PutOptions options;
  const std::string key = store::ChildSaKey(record.inbound_spi());
  if (create) {
    options.condition = store::Condition::CreateOnly();
  } else {
    absl::StatusOr<store::KeyValue> current = store_->Get(key);
    if (!current.ok()) return ToGrpc(current.status());
    options.condition = store::Condition::VersionIs(current->version);
  }
  return ToGrpc(store_->Put(key, record.SerializeAsString(), options).status());
}

grpc::Status ForwarderService::InstallSa(grpc::ServerContext*,
                                         const v1::InstallSaRequest* request,
                                         v1::InstallSaReply*) {
  return Write(*request, /*create=*/true);
}

grpc::Status ForwarderService::UpdateSa(grpc::ServerContext*, const v1::InstallSaRequest* request,
                                        v1::InstallSaReply*) {
  return Write(*request, /*create=*/false);
}

grpc::Status ForwarderService::RemoveSa(grpc::ServerContext*, const v1::RemoveSaRequest* request,
                                        v1::RemoveSaReply*) {
  if (store_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this forwarder has no store; SAs are removed from the store");
  }
  if (request->inbound_spi() == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "inbound_spi: must not be 0");
  }
  return ToGrpc(store_->Delete(store::ChildSaKey(request->inbound_spi())).status());
}

grpc::Status ForwarderService::Counters(grpc::ServerContext*, const v1::CountersRequest* request,
                                        v1::CountersReply* reply) {
  std::shared_ptr<const SaSnapshot> snapshot = table_->Current();
  if (request->inbound_spi() != 0) {
    const SaEntry* entry = snapshot->Inbound(request->inbound_spi());
    if (entry == nullptr) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no CHILD SA with inbound SPI ", request->inbound_spi()));
    }
    Fill(*entry, reply->add_sas());
    return grpc::Status::OK;
  }
  for (const std::shared_ptr<const SaEntry>& entry : snapshot->All()) Fill(*entry, reply->add_sas());
  return grpc::Status::OK;
}

}  // namespace vpn::forwarder
