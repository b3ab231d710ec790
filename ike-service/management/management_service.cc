#include "ike-service/management/management_service.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/store/sa_keys.h"
#include "google/protobuf/util/time_util.h"

namespace vpn::ike {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

google::protobuf::Timestamp Now() {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(absl::Now()));
}

}  // namespace

void Redact(v1::IkeSa* sa) {
  sa->clear_sealed_keys();
  sa->clear_last_response();
  sa->clear_pending_request();
  sa->clear_return_routability_cookie();
}

void Redact(v1::ChildSa* sa) { sa->clear_sealed_keys(); }

grpc::Status ManagementService::ListSas(grpc::ServerContext*,
                                        const v1::ListSasRequest* request,
                                        v1::ListSasReply* reply) {
  absl::StatusOr<store::ListResult> listed = store_->List("ike/");
  if (!listed.ok()) return ToGrpc(listed.status());
  for (const store::KeyValue& kv : listed->kvs) {
    v1::IkeSa sa;
    if (!sa.ParseFromString(kv.value)) continue;
    if (!request->eap_identity().empty() && sa.eap_identity() != request->eap_identity()) {
      continue;
    }
    Redact(&sa);
    sa.mutable_meta()->set_version(kv.version);
    sa.mutable_meta()->set_mod_revision(kv.mod_revision);
    *reply->add_ike_sas() = std::move(sa);
  }
  return grpc::Status::OK;
}

grpc::Status ManagementService::GetSa(grpc::ServerContext*, const v1::GetSaRequest* request,
                                      v1::GetSaReply* reply) {
  absl::StatusOr<store::Versioned<v1::IkeSa>> sa = store::GetProto<v1::IkeSa>(
      *store_, store::IkeSaKey(request->initiator_spi(), request->responder_spi()));
  if (!sa.ok()) return ToGrpc(sa.status());
  *reply->mutable_ike_sa() = sa->record;
  Redact(reply->mutable_ike_sa());
  reply->mutable_ike_sa()->mutable_meta()->set_version(sa->version);
  for (uint32_t spi : sa->record.child_spis()) {
    absl::StatusOr<store::Versioned<v1::ChildSa>> child = store::GetProto<v1::ChildSa>(
        *store_, store::ChildSaKey(spi));
    if (!child.ok()) continue;
    v1::ChildSa* out = reply->add_child_sas();
    *out = child->record;
    Redact(out);
  }
  return grpc::Status::OK;
}

grpc::Status ManagementService::TerminateSa(grpc::ServerContext*,
                                            const v1::TerminateSaRequest* request,
                                            v1::TerminateSaReply*) {
  return ToGrpc(terminate_(request->initiator_spi(), request->responder_spi()));
}

grpc::Status ManagementService::GetCounters(grpc::ServerContext*,
                                            const v1::GetCountersRequest*,
                                            v1::GetCountersReply* reply) {
  absl::StatusOr<store::ListResult> ike = store_->List("ike/");
  if (!ike.ok()) return ToGrpc(ike.status());
  absl::StatusOr<store::ListResult> child = store_->List(store::kChildSaPrefix);
  if (!child.ok()) return ToGrpc(child.status());
  reply->set_ike_sas(ike->kvs.size());
  reply->set_child_sas(child->kvs.size());
  return grpc::Status::OK;
}

grpc::Status ManagementService::WatchEvents(grpc::ServerContext* context,
                                            const v1::WatchEventsRequest*,
                                            grpc::ServerWriter<v1::SaEvent>* writer) {
  absl::StatusOr<store::ListResult> current = store_->List("ike/");
  if (!current.ok()) return ToGrpc(current.status());
  // What each SA looked like, to tell an address update from a refresh.
  absl::flat_hash_map<std::string, v1::IkeSa> known;
  for (const store::KeyValue& kv : current->kvs) {
    v1::IkeSa sa;
    if (sa.ParseFromString(kv.value)) known[kv.key] = sa;
  }
  absl::StatusOr<std::unique_ptr<store::Watcher>> watcher =
      store_->Watch("ike/", current->revision + 1);
  if (!watcher.ok()) return ToGrpc(watcher.status());
  while (!context->IsCancelled()) {
    absl::StatusOr<store::WatchEvent> event = (*watcher)->Next(absl::Milliseconds(500));
    if (absl::IsDeadlineExceeded(event.status())) continue;
    if (!event.ok()) return ToGrpc(event.status());
    if (event->type == store::WatchEvent::Type::kResync) {
      known.clear();
      for (const store::KeyValue& kv : event->snapshot) {
        v1::IkeSa sa;
        if (sa.ParseFromString(kv.value)) known[kv.key] = sa;
      }
      continue;
    }
    v1::SaEvent out;
    *out.mutable_time() = Now();
    if (event->type == store::WatchEvent::Type::kDelete) {
      auto it = known.find(event->kv.key);
      if (it == known.end()) continue;
      out.set_kind(v1::SaEvent::DOWN);
      out.set_initiator_spi(it->second.initiator_spi());
      out.set_responder_spi(it->second.responder_spi());
      out.set_eap_identity(it->second.eap_identity());
      *out.mutable_remote() = it->second.remote();
      known.erase(it);
    } else {
      v1::IkeSa sa;
      if (!sa.ParseFromString(event->kv.value)) continue;
      auto it = known.find(event->kv.key);
      if (it == known.end()) {
        out.set_kind(v1::SaEvent::UP);
      } else if (it->second.remote().SerializeAsString() != sa.remote().SerializeAsString()) {
        out.set_kind(v1::SaEvent::ADDRESS_UPDATE);
      } else if (it->second.child_spis_size() != sa.child_spis_size() ||
                 !std::equal(sa.child_spis().begin(), sa.child_spis().end(),
                             it->second.child_spis().begin())) {
        out.set_kind(v1::SaEvent::REKEY);
      } else {
        known[event->kv.key] = sa;
        continue;
      }
      out.set_initiator_spi(sa.initiator_spi());
      out.set_responder_spi(sa.responder_spi());
      out.set_eap_identity(sa.eap_identity());
      *out.mutable_remote() = sa.remote();
      known[event->kv.key] = std::move(sa);
    }
    if (!writer->Write(out)) break;
  }
  return grpc::Status::OK;
}

}  // namespace vpn::ike
