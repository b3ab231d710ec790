#include "ike-service/management/management_service.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/store/sa_keys.h"
#include "common/store/watch_loop.h"
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

// What changed between two versions of an SA's record that an operator
// sees as an event; none for a refresh (liveness, a path tag).
absl::optional<v1::SaEvent::Kind> ChangeOf(const v1::IkeSa* before, const v1::IkeSa& after) {
  if (before == nullptr) return v1::SaEvent::UP;
  if (before->remote().SerializeAsString() != after.remote().SerializeAsString()) {
    return v1::SaEvent::ADDRESS_UPDATE;
  }
  if (!std::equal(after.child_spis().begin(), after.child_spis().end(),
                  before->child_spis().begin(), before->child_spis().end())) {
    return v1::SaEvent::REKEY;
  }
  return absl::nullopt;
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
  store::WatchLoop* running = nullptr;
  auto emit = [&](v1::SaEvent::Kind kind, const v1::IkeSa& sa) {
    v1::SaEvent out;
    out.set_kind(kind);
    *out.mutable_time() = Now();
    out.set_initiator_spi(sa.initiator_spi());
    out.set_responder_spi(sa.responder_spi());
    out.set_eap_identity(sa.eap_identity());
    *out.mutable_remote() = sa.remote();
    if (!writer->Write(out)) running->Stop();  // the caller went away
  };
  auto put = [&](const std::string& key, v1::IkeSa sa) {
    auto it = known.find(key);
    const v1::IkeSa* before = it == known.end() ? nullptr : &it->second;
    if (absl::optional<v1::SaEvent::Kind> kind = ChangeOf(before, sa)) emit(*kind, sa);
    known[key] = std::move(sa);
  };
  store::WatchHandlers handlers;
  handlers.put = [&](const store::KeyValue& kv, int64_t) {
    v1::IkeSa sa;
    if (sa.ParseFromString(kv.value)) put(kv.key, std::move(sa));
  };
  handlers.del = [&](const store::KeyValue& kv, int64_t) {
    auto it = known.find(kv.key);
    if (it == known.end()) return;
    emit(v1::SaEvent::DOWN, it->second);
    known.erase(it);
  };
  // After a resync or a broken watch: what changed meanwhile, as events.
  handlers.snapshot = [&](const std::vector<store::KeyValue>& kvs, int64_t) {
    absl::flat_hash_set<std::string> listed;
    for (const store::KeyValue& kv : kvs) {
      v1::IkeSa sa;
      if (!sa.ParseFromString(kv.value)) continue;
      listed.insert(kv.key);
      put(kv.key, std::move(sa));
    }
    for (auto it = known.begin(); it != known.end();) {
      if (listed.contains(it->first)) {
        ++it;
        continue;
      }
      emit(v1::SaEvent::DOWN, it->second);
      known.erase(it++);
    }
  };
  handlers.tick = [&] {
    if (context->IsCancelled()) running->Stop();
  };
  store::WatchLoopOptions options;
  options.what = "IKE records (event stream)";
  store::WatchLoop loop(store_, "ike/", std::move(handlers), options);
  running = &loop;
  loop.RunFrom(current->revision);
  return grpc::Status::OK;
}

}  // namespace vpn::ike
