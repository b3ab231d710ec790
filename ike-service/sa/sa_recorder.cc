#include "ike-service/sa/sa_recorder.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/store/sa_keys.h"
#include "google/protobuf/util/time_util.h"
#include "common/ipsec/transform_records.h"
#include "common/net/ip_endpoint.h"

namespace vpn::ike {
namespace {

google::protobuf::Timestamp ToTimestamp(absl::Time time) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(time));
}

std::string Str(const crypto::SecretBytes& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void AddSelectors(const std::vector<codec::TrafficSelector>& selectors,
                  google::protobuf::RepeatedPtrField<v1::TrafficSelector>* out) {
  for (const codec::TrafficSelector& s : selectors) {
    v1::TrafficSelector* ts = out->Add();
    ts->set_ts_type(static_cast<uint32_t>(s.type));
    ts->set_ip_protocol(s.ip_protocol_id);
    ts->set_start_port(s.start_port);
    ts->set_end_port(s.end_port);
    ts->set_start_address(std::string(s.starting_address.begin(), s.starting_address.end()));
    ts->set_end_address(std::string(s.ending_address.begin(), s.ending_address.end()));
  }
}

void AddDatagrams(const std::vector<crypto::Bytes>& datagrams,
                  google::protobuf::RepeatedPtrField<std::string>* out) {
  for (const crypto::Bytes& datagram : datagrams) out->Add(std::string(datagram.begin(), datagram.end()));
}

std::vector<crypto::Bytes> Datagrams(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<crypto::Bytes> out;
  for (const std::string& datagram : in) out.emplace_back(datagram.begin(), datagram.end());
  return out;
}

// An SA a replica may hold: established, or DORMANT (its client silent,
// within the outage window).
bool Holdable(const v1::IkeSa& record) {
  return record.state() == v1::IKE_SA_STATE_ESTABLISHED ||
         record.state() == v1::IKE_SA_STATE_DORMANT;
}

}  // namespace

std::string SaRecorder::ChildKey(uint32_t inbound_spi) {
  return store::ChildSaKey(inbound_spi);
}

absl::StatusOr<v1::IkeSa> SaRecorder::IkeRecord(const IkeSa& sa) const {
  v1::IkeSa record;
  record.mutable_meta()->set_owner_replica(replica_);
  *record.mutable_meta()->mutable_updated() = ToTimestamp(absl::Now());
  record.set_initiator_spi(sa.spi_i);
  record.set_responder_spi(sa.spi_r);
  record.set_state(sa.phase != IkeSa::Phase::kEstablished ? v1::IKE_SA_STATE_AUTHENTICATING
                   : sa.dormant                            ? v1::IKE_SA_STATE_DORMANT
                                                           : v1::IKE_SA_STATE_ESTABLISHED);
  ipsec::AddToProposal(sa.transforms, /*ike=*/true, record.mutable_proposal());
  record.mutable_initiator_id()->set_type(static_cast<uint32_t>(sa.idi.id_type));
  record.mutable_initiator_id()->set_data(std::string(sa.idi.data.begin(), sa.idi.data.end()));
  if (sa.idr_body.size() >= 4) {
    record.mutable_responder_id()->set_type(sa.idr_body[0]);
    record.mutable_responder_id()->set_data(
        std::string(sa.idr_body.begin() + 4, sa.idr_body.end()));
  }
  record.set_eap_identity(sa.eap_identity);
  record.set_auth_method(sa.uses_eap ? v1::AUTH_METHOD_EAP_MSCHAPV2
                                     : v1::AUTH_METHOD_CERTIFICATE);
  *record.mutable_local() = sa.local.ToProto();
  *record.mutable_remote() = sa.remote.ToProto();
  record.set_local_behind_nat(sa.responder_behind_nat);
  record.set_remote_behind_nat(sa.initiator_behind_nat);
  record.set_mobike(sa.mobike);
  for (const std::string& ip : sa.virtual_ips) record.add_virtual_ips(ip);
  record.set_next_message_id_in(sa.next_request_id);
  record.set_last_response_message_id(sa.last_response_id);
  AddDatagrams(sa.last_response, record.mutable_last_response());
  *record.mutable_established() = ToTimestamp(sa.created);
  *record.mutable_last_seen() = ToTimestamp(sa.last_seen);
  for (const ChildSaState& child : sa.children) record.add_child_spis(child.inbound_spi);
  record.set_next_message_id_out(sa.next_own_request_id);
  record.set_peer_fragmentation(sa.peer_supports_fragmentation);
  record.set_udp_encapsulated(sa.udp_encapsulated);
  record.set_certificate_subject(sa.certificate_subject);
  if (sa.pending_request.has_value()) {
    AddDatagrams(sa.pending_request->datagrams, record.mutable_pending_request());
    record.set_pending_request_message_id(sa.pending_request->message_id);
    record.set_return_routability_cookie(std::string(sa.return_routability_cookie.begin(),
                                                     sa.return_routability_cookie.end()));
  }
  v1::IkeSaKeys keys;
  keys.set_sk_d(Str(sa.keys.sk_d));
  keys.set_sk_ai(Str(sa.keys.sk_ai));
  keys.set_sk_ar(Str(sa.keys.sk_ar));
  keys.set_sk_ei(Str(sa.keys.sk_ei));
  keys.set_sk_er(Str(sa.keys.sk_er));
  keys.set_sk_pi(Str(sa.keys.sk_pi));
  keys.set_sk_pr(Str(sa.keys.sk_pr));
  // Last: the tag covers the path fields, the seal everything else.
  if (absl::Status s = store::TagIkePath(*sealer_, sa.path_generation, &record); !s.ok()) {
    return s;
  }
  absl::Status sealed = store::SealIkeSa(*sealer_, keys, &record);
  keys.Clear();
  if (!sealed.ok()) return sealed;
  return record;
}

absl::StatusOr<v1::ChildSa> SaRecorder::ChildRecord(const IkeSa& sa,
                                                    const ChildSaState& child) const {
  v1::ChildSa record;
  record.mutable_meta()->set_owner_replica(replica_);
  *record.mutable_meta()->mutable_updated() = ToTimestamp(absl::Now());
  record.set_inbound_spi(child.inbound_spi);
  record.set_outbound_spi(child.outbound_spi);
  record.set_ike_initiator_spi(sa.spi_i);
  record.set_ike_responder_spi(sa.spi_r);
  record.set_state(v1::CHILD_SA_STATE_INSTALLED);
  record.set_mode(v1::IPSEC_MODE_TUNNEL);
  // RFC 3948: in UDP when the IKE SA is, and always behind a NAT (as
  // mobility-service moves it; the forwarder requires it).
  record.set_encapsulation(sa.udp_encapsulated || sa.initiator_behind_nat
                               ? v1::ENCAPSULATION_UDP
                               : v1::ENCAPSULATION_RAW);
  ipsec::AddToProposal(child.transforms, /*ike=*/false, record.mutable_proposal());
  AddSelectors(child.local_ts, record.mutable_local_ts());
  AddSelectors(child.remote_ts, record.mutable_remote_ts());
  record.mutable_lifetime()->set_soft_seconds(
      static_cast<uint32_t>(absl::ToInt64Seconds(policy_->child_soft_lifetime)));
  record.mutable_lifetime()->set_hard_seconds(
      static_cast<uint32_t>(absl::ToInt64Seconds(policy_->child_hard_lifetime)));
  *record.mutable_local() = sa.local.ToProto();
  *record.mutable_remote() = sa.remote.ToProto();
  record.set_remote_behind_nat(sa.initiator_behind_nat);
  record.set_replay_window(policy_->replay_window);
  *record.mutable_created() = ToTimestamp(child.created);
  // The gateway receives what the initiator sends.
  v1::ChildSaKeys keys;
  keys.set_inbound_encryption(Str(child.keys.encryption_i));
  keys.set_inbound_integrity(Str(child.keys.integrity_i));
  keys.set_outbound_encryption(Str(child.keys.encryption_r));
  keys.set_outbound_integrity(Str(child.keys.integrity_r));
  if (absl::Status s = store::TagChildPath(*sealer_, sa.path_generation, &record); !s.ok()) {
    return s;
  }
  absl::Status sealed = store::SealChildSa(*sealer_, keys, &record);
  keys.Clear();
  if (!sealed.ok()) return sealed;
  return record;
}

absl::Status SaRecorder::RecordEstablished(const IkeSa& sa, Children children) {
  std::vector<store::Op> ops;
  absl::StatusOr<v1::IkeSa> ike = IkeRecord(sa);
  if (!ike.ok()) return ike.status();
  std::string value;
  ike->SerializeToString(&value);
  ops.push_back(store::Op::Put(sa.record_key(), std::move(value)));
  for (const ChildSaState& child : sa.children) {
    absl::StatusOr<v1::ChildSa> record = ChildRecord(sa, child);
    if (!record.ok()) return record.status();
    std::string child_value;
    record->SerializeToString(&child_value);
    store::Op op = store::Op::Put(ChildKey(child.inbound_spi), std::move(child_value),
                                  children == Children::kNew ? store::Condition::CreateOnly()
                                                             : store::Condition::Any());
    if (children == Children::kRekeyed) {
      absl::StatusOr<bool> present = RebaseChildPut(op);
      if (!present.ok()) return present.status();
      if (!*present) continue;  // deleted meanwhile: stays deleted
    }
    ops.push_back(std::move(op));
  }
  return Commit(std::move(ops), "established");
}

absl::Status SaRecorder::RecordIke(const IkeSa& sa) {
  absl::StatusOr<v1::IkeSa> record = IkeRecord(sa);
  if (!record.ok()) return record.status();
  std::string value;
  record->SerializeToString(&value);
  std::vector<store::Op> ops;
  ops.push_back(store::Op::Put(sa.record_key(), std::move(value)));
  return Commit(std::move(ops), "ike");
}

absl::Status SaRecorder::RecordChild(const IkeSa& sa, const ChildSaState& child) {
  absl::StatusOr<v1::ChildSa> record = ChildRecord(sa, child);
  if (!record.ok()) return record.status();
  absl::StatusOr<v1::IkeSa> ike = IkeRecord(sa);
  if (!ike.ok()) return ike.status();
  std::vector<store::Op> ops;
  std::string value;
  record->SerializeToString(&value);
  ops.push_back(store::Op::Put(ChildKey(child.inbound_spi), std::move(value),
                               store::Condition::CreateOnly()));
  std::string ike_value;
  ike->SerializeToString(&ike_value);
  ops.push_back(store::Op::Put(sa.record_key(), std::move(ike_value)));
  return Commit(std::move(ops), "child");
}

SaRecorder::~SaRecorder() { Stop(); }

void SaRecorder::StartWriteBehind(prometheus::Registry& registry, size_t queue_limit,
                                  absl::Duration batch_window) {
  failures_ = &prometheus::BuildCounter()
                   .Name("ike_record_write_failures_total")
                   .Help("SA record writes (write-behind) the store refused.")
                   .Register(registry)
                   .Add({});
  queue_limit_ = queue_limit;
  batch_window_ = batch_window;
  absl::MutexLock lock(&mu_);
  write_behind_ = true;
  stopping_ = false;
  writer_ = std::thread([this] {
    log::SetThreadName("ike-recorder");
    RunWriter();
  });
}

void SaRecorder::WaitCommitted(uint64_t target) {
  ++waiters_;
  queue_cv_.Signal();  // no batch window while someone waits
  while (committed_ < target) committed_cv_.Wait(&mu_);
  --waiters_;
}

void SaRecorder::WakeWriter() {
  // Idle, or enough gathered; within a batch window the writer wakes itself.
  if (queue_.size() == 1 || queued_ops_ >= kMaxBatchOps || queue_.size() >= queue_limit_ / 2) {
    queue_cv_.Signal();
  }
}

void SaRecorder::Flush() {
  absl::MutexLock lock(&mu_);
  WaitCommitted(queued_);
}

void SaRecorder::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!write_behind_) return;
    stopping_ = true;
    queue_cv_.Signal();
  }
  if (writer_.joinable()) writer_.join();
  absl::MutexLock lock(&mu_);
  write_behind_ = false;
}

void SaRecorder::Defer(std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    if (write_behind_ && !stopping_ && queue_.size() < queue_limit_) {
      queue_.push_back({{}, "task", ++queued_, std::move(task)});
      WakeWriter();
      return;
    }
    WaitCommitted(queued_);
  }
  task();
}

namespace {

bool IsIkeRecordWrite(const store::Op& op) {
  return (op.type == store::Op::Type::kPut || op.type == store::Op::Type::kDelete) &&
         absl::StartsWith(op.key, store::kIkeSaPrefix);
}

// What mobility-service owns in an IKE record (where the client is, with the
// tag that authorizes it, whether it is DORMANT, when it was last heard
// from): a write of ike-service's keeps the stored values. None of them is
// under the seal, so ours stays valid. The stored path is kept only with a
// tag that verifies (a store writer's made-up path is not made ours).
void KeepMobilityFields(const store::Sealer& sealer, const v1::IkeSa& stored,
                        v1::IkeSa* ours) {
  if (store::CheckIkePath(sealer, stored, ours->path_auth().generation()) ==
      store::PathVerdict::kValid) {
    *ours->mutable_local() = stored.local();
    *ours->mutable_remote() = stored.remote();
    ours->set_remote_behind_nat(stored.remote_behind_nat());
    *ours->mutable_path_auth() = stored.path_auth();
  }
  if (stored.state() == v1::IKE_SA_STATE_DORMANT) ours->set_state(v1::IKE_SA_STATE_DORMANT);
  if (google::protobuf::util::TimeUtil::TimestampToNanoseconds(stored.last_seen()) >
      google::protobuf::util::TimeUtil::TimestampToNanoseconds(ours->last_seen())) {
    *ours->mutable_last_seen() = stored.last_seen();
  }
}

}  // namespace

absl::StatusOr<bool> SaRecorder::RebaseChildPut(store::Op& op) const {
  absl::StatusOr<store::KeyValue> stored = store_->Get(op.key);
  if (absl::IsNotFound(stored.status())) return false;
  if (!stored.ok()) return stored.status();
  v1::ChildSa current, ours;
  if (!current.ParseFromString(stored->value) || !ours.ParseFromString(op.value)) {
    return absl::DataLossError(absl::StrCat("unreadable CHILD record under ", op.key));
  }
  // The stored path, if a key holder tagged it (for the IKE SA the record
  // named then), re-tagged for the IKE SA that owns the CHILD SA now.
  if (store::CheckChildPath(*sealer_, current, ours.path_auth().generation()) ==
      store::PathVerdict::kValid) {
    *ours.mutable_local() = current.local();
    *ours.mutable_remote() = current.remote();
    ours.set_remote_behind_nat(current.remote_behind_nat());
    ours.set_encapsulation(current.encapsulation());
    if (absl::Status s =
            store::TagChildPath(*sealer_, current.path_auth().generation(), &ours);
        !s.ok()) {
      return s;
    }
  }
  op.value = ours.SerializeAsString();
  op.condition = store::Condition::VersionIs(stored->version);
  return true;
}

void SaRecorder::ApplyVersions(std::vector<store::Op>& ops) const {
  absl::MutexLock lock(&versions_mu_);
  for (store::Op& op : ops) {
    if (!IsIkeRecordWrite(op) || op.condition.kind != store::Condition::Kind::kAny) continue;
    auto it = written_.find(op.key);
    if (it != written_.end()) op.condition = store::Condition::VersionIs(it->second.version);
  }
}

bool SaRecorder::AboutLostSa(const std::vector<store::Op>& ops, const std::string& about) const {
  absl::MutexLock lock(&versions_mu_);
  if (!about.empty() && lost_.contains(about)) return true;
  for (const store::Op& op : ops) {
    if (IsIkeRecordWrite(op) && lost_.contains(op.key)) return true;
  }
  return false;
}

bool SaRecorder::IsLost(const std::string& key) const {
  absl::MutexLock lock(&versions_mu_);
  return lost_.contains(key);
}

void SaRecorder::ForgetLost(const std::string& key) const {
  absl::MutexLock lock(&versions_mu_);
  lost_.erase(key);
}

int64_t SaRecorder::KnownRevision(const std::string& key) const {
  absl::MutexLock lock(&versions_mu_);
  auto it = written_.find(key);
  return it == written_.end() ? 0 : it->second.revision;
}

int64_t SaRecorder::KnownVersion(const std::string& key) const {
  absl::MutexLock lock(&versions_mu_);
  auto it = written_.find(key);
  return it == written_.end() ? 0 : it->second.version;
}

void SaRecorder::NoteLost(const std::string& key) const {
  absl::MutexLock lock(&versions_mu_);
  written_.erase(key);
  lost_.insert(key);
}

void SaRecorder::NoteVersions(const std::vector<store::Op>& ops,
                              const store::TxnResult& result) const {
  absl::MutexLock lock(&versions_mu_);
  for (size_t i = 0; i < ops.size() && i < result.versions.size(); ++i) {
    if (!absl::StartsWith(ops[i].key, store::kIkeSaPrefix)) continue;
    if (ops[i].type == store::Op::Type::kPut) {
      written_[ops[i].key] = {result.versions[i], result.revision};
    }
    if (ops[i].type == store::Op::Type::kDelete) written_.erase(ops[i].key);
  }
}

absl::Status SaRecorder::CommitNow(std::vector<store::Op> ops, const std::string& about) {
  constexpr int kAttempts = 4;
  // Writes about an SA another replica took over are its to make now.
  if (AboutLostSa(ops, about)) return absl::OkStatus();
  ApplyVersions(ops);
  absl::Status status;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    absl::StatusOr<store::TxnResult> result = store_->Txn(ops);
    if (result.ok()) {
      NoteVersions(ops, *result);
      return absl::OkStatus();
    }
    status = result.status();
    if (!store::IsConflict(status)) return absl::IsNotFound(status) ? absl::OkStatus() : status;
    // Someone else wrote one of our IKE records since we last did
    // (mobility-service moved the SA, marked it DORMANT or deleted it).
    bool refreshed = false;
    // A conditional delete that fails (an address lease given back and
    // taken by another SA meanwhile): not ours any more.
    const size_t before = ops.size();
    ops.erase(std::remove_if(ops.begin(), ops.end(),
                             [&](const store::Op& op) {
                               if (op.type != store::Op::Type::kDelete ||
                                   op.condition.kind == store::Condition::Kind::kAny ||
                                   IsIkeRecordWrite(op)) {  // below
                                 return false;
                               }
                               absl::StatusOr<store::KeyValue> now = store_->Get(op.key);
                               return absl::IsNotFound(now.status()) ||
                                      (now.ok() &&
                                       !op.condition.Matches(now->version, now->mod_revision));
                             }),
              ops.end());
    // A rekeyed SA's CHILD record moved (or deleted) since it was read.
    for (auto it = ops.begin(); it != ops.end();) {
      if (it->type != store::Op::Type::kPut ||
          it->condition.kind != store::Condition::Kind::kVersionEquals ||
          !absl::StartsWith(it->key, store::kChildSaPrefix)) {
        ++it;
        continue;
      }
      const int64_t read_at = it->condition.version;
      absl::StatusOr<bool> present = RebaseChildPut(*it);
      if (!present.ok()) return present.status();
      refreshed = refreshed || !*present || it->condition.version != read_at;
      it = *present ? it + 1 : ops.erase(it);
    }
    if (ops.empty()) return absl::OkStatus();
    refreshed = refreshed || ops.size() != before;
    for (auto it = ops.begin(); it != ops.end();) {
      store::Op& op = *it;
      if (!IsIkeRecordWrite(op) || op.condition.kind != store::Condition::Kind::kVersionEquals) {
        ++it;
        continue;
      }
      absl::StatusOr<store::KeyValue> stored = store_->Get(op.key);
      if (absl::IsNotFound(stored.status())) {
        absl::MutexLock lock(&versions_mu_);
        written_.erase(op.key);
        if (op.type == store::Op::Type::kDelete) {  // gone already
          it = ops.erase(it);
          refreshed = true;
          continue;
        }
        // Deleted elsewhere (the outage window ended): it stays deleted,
        // and so do its CHILD SAs.
        return absl::OkStatus();
      }
      if (!stored.ok()) return stored.status();
      v1::IkeSa current;
      if (!current.ParseFromString(stored->value)) {
        return absl::DataLossError(absl::StrCat("unreadable IKE record under ", op.key));
      }
      if (current.meta().owner_replica() != replica_) {
        // Another replica took the SA over: its records are that one's to
        // write (and delete) now, and this replica forgets the SA
        // (IkeEngine::ApplyRecord). So do its later writes.
        NoteLost(op.key);
        return absl::OkStatus();
      }
      if (op.type == store::Op::Type::kPut) {
        v1::IkeSa ours;
        if (!ours.ParseFromString(op.value)) {
          return absl::DataLossError(absl::StrCat("unreadable IKE record under ", op.key));
        }
        KeepMobilityFields(*sealer_, current, &ours);
        op.value = ours.SerializeAsString();
      }
      op.condition = store::Condition::VersionIs(stored->version);
      refreshed = true;
      ++it;
    }
    if (!refreshed) return status;  // not ours to resolve (e.g. a CHILD SPI taken)
  }
  return status;
}

absl::Status SaRecorder::Commit(std::vector<store::Op> ops, const char* what,
                                std::string about) {
  {
    absl::MutexLock lock(&mu_);
    if (write_behind_ && !stopping_ && queue_.size() < queue_limit_) {
      queued_ops_ += ops.size();
      queue_.push_back({std::move(ops), what, ++queued_, nullptr, std::move(about)});
      WakeWriter();
      return absl::OkStatus();
    }
    // Off, or full: at once, after what is queued (order per SA is kept).
    WaitCommitted(queued_);
  }
  return CommitNow(ops, about);
}

void SaRecorder::RunWriter() {
  // One transaction (one fsync) for as many queued writes as fit: etcd's
  // limits, and no key twice (a later write of a key waits for the next).
  constexpr size_t kMaxBytes = 1 << 20;
  while (true) {
    std::vector<Write> batch;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) queue_cv_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, drained
      const absl::Time gathered = absl::Now() + batch_window_;
      while (!stopping_ && waiters_ == 0 && queued_ops_ < kMaxBatchOps &&
             queue_.size() < queue_limit_ / 2 && !queue_cv_.WaitWithDeadline(&mu_, gathered)) {
      }
      absl::flat_hash_set<absl::string_view> keys;
      size_t ops = 0, bytes = 0;
      while (!queue_.empty()) {
        const Write& next = queue_.front();
        if (next.task && !batch.empty()) break;  // a task runs alone
        size_t next_bytes = 0;
        bool fits = ops + next.ops.size() <= kMaxBatchOps;
        for (const store::Op& op : next.ops) {
          next_bytes += op.key.size() + op.value.size();
          fits = fits && !keys.contains(op.key);
        }
        fits = fits && bytes + next_bytes <= kMaxBytes;
        if (!batch.empty() && !fits) break;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
        queued_ops_ -= batch.back().ops.size();
        for (const store::Op& op : batch.back().ops) keys.insert(op.key);
        ops += batch.back().ops.size();
        bytes += next_bytes;
        if (batch.back().task) break;
      }
    }
    auto report = [this](const Write& write, const absl::Status& status) {
      if (status.ok()) return;
      if (failures_ != nullptr) failures_->Increment();
      log_.Error("cannot record SA", {{"write", write.what}, {"error", status.message()}});
    };
    if (batch[0].task) {
      batch[0].task();
    } else if (batch.size() == 1) {
      report(batch[0], CommitNow(batch[0].ops, batch[0].about));
    } else {
      std::vector<store::Op> merged;
      for (const Write& write : batch) {
        if (AboutLostSa(write.ops, write.about)) continue;  // another replica's SA now
        merged.insert(merged.end(), write.ops.begin(), write.ops.end());
      }
      ApplyVersions(merged);
      absl::StatusOr<store::TxnResult> result =
          merged.empty() ? absl::StatusOr<store::TxnResult>(store::TxnResult{})
                         : store_->Txn(merged);
      if (result.ok()) {
        NoteVersions(merged, *result);
      } else {
        // A condition failed (or the store did): each write on its own, so
        // only the one that fails is lost, as without batching.
        for (const Write& write : batch) report(write, CommitNow(write.ops, write.about));
      }
    }
    absl::MutexLock lock(&mu_);
    committed_ = batch.back().sequence;
    committed_cv_.SignalAll();
  }
}

namespace {

crypto::SecretBytes Secret(const std::string& bytes) {
  return crypto::SecretBytes(
      crypto::ByteSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

std::vector<codec::TrafficSelector> SelectorsFrom(
    const google::protobuf::RepeatedPtrField<v1::TrafficSelector>& selectors) {
  std::vector<codec::TrafficSelector> out;
  for (const v1::TrafficSelector& ts : selectors) {
    codec::TrafficSelector selector;
    selector.type = static_cast<codec::TsType>(ts.ts_type());
    selector.ip_protocol_id = static_cast<uint8_t>(ts.ip_protocol());
    selector.start_port = static_cast<uint16_t>(ts.start_port());
    selector.end_port = static_cast<uint16_t>(ts.end_port());
    selector.starting_address.assign(ts.start_address().begin(), ts.start_address().end());
    selector.ending_address.assign(ts.end_address().begin(), ts.end_address().end());
    out.push_back(std::move(selector));
  }
  return out;
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(t));
}

}  // namespace

absl::StatusOr<std::vector<std::unique_ptr<IkeSa>>> SaRecorder::LoadOwned(
    size_t* skipped) const {
  *skipped = 0;
  absl::StatusOr<store::ListResult> listed = store_->List("ike/");
  if (!listed.ok()) return listed.status();
  std::vector<std::unique_ptr<IkeSa>> restored;
  for (const store::KeyValue& kv : listed->kvs) {
    v1::IkeSa record;
    if (!record.ParseFromString(kv.value) || record.meta().owner_replica() != replica_ ||
        !Holdable(record)) {
      *skipped += record.meta().owner_replica() == replica_;
      continue;
    }
    bool children_ok = true;
    absl::StatusOr<std::unique_ptr<IkeSa>> sa = Rebuild(kv.key, record, &children_ok);
    if (!sa.ok()) {
      ++*skipped;
      continue;
    }
    {
      absl::MutexLock lock(&versions_mu_);
      written_[kv.key] = {kv.version, kv.mod_revision};
    }
    if (!children_ok) ++*skipped;
    restored.push_back(std::move(*sa));
  }
  return restored;
}

absl::StatusOr<std::unique_ptr<IkeSa>> SaRecorder::TakeOver(
    uint64_t spi_i, uint64_t spi_r, const std::function<bool(const IkeSa&)>& accept,
    std::string* previous_owner) {
  const std::string key = store::IkeSaKey(spi_i, spi_r);
  absl::StatusOr<store::KeyValue> stored = store_->Get(key);
  if (!stored.ok()) return stored.status();
  v1::IkeSa record;
  if (!record.ParseFromString(stored->value)) {
    return absl::DataLossError(absl::StrCat("unreadable IKE record under ", key));
  }
  if (!Holdable(record)) {
    return absl::NotFoundError(absl::StrCat("IKE SA ", key, " is not established"));
  }
  *previous_owner = record.meta().owner_replica();
  bool children_ok = true;
  absl::StatusOr<std::unique_ptr<IkeSa>> sa = Rebuild(key, record, &children_ok, &accept);
  if (!sa.ok()) return sa.status();
  // Writes of ours still queued about this SA (from before we lost it) go
  // (and are dropped) before we own it again.
  Flush();
  // Owned from this write on: compare-on-version, so of two replicas that
  // try at once only one wins, and the old owner's writes conflict.
  record.mutable_meta()->set_owner_replica(replica_);
  *record.mutable_meta()->mutable_updated() = ToTimestamp(absl::Now());
  std::vector<store::Op> ops;
  ops.push_back(store::Op::Put(key, record.SerializeAsString(),
                               store::Condition::VersionIs(stored->version)));
  absl::StatusOr<store::TxnResult> result = store_->Txn(ops);
  if (!result.ok()) return result.status();
  NoteVersions(ops, *result);  // before lost_ lets writes through
  ForgetLost(key);
  return sa;
}

absl::StatusOr<std::unique_ptr<IkeSa>> SaRecorder::Rebuild(
    const std::string& key, const v1::IkeSa& record, bool* children_ok,
    const std::function<bool(const IkeSa&)>* accept) const {
  absl::StatusOr<v1::IkeSaKeys> keys = store::OpenIkeSa(*sealer_, key, record);
  if (!keys.ok()) {
    CountRejected("seal");
    return keys.status();
  }
  // The path is a key holder's only if its tag says so; a record whose path
  // a store writer made up is not restored.
  if (store::PathVerdict path = CheckPath(record, 0); path != store::PathVerdict::kValid) {
    return absl::DataLossError(absl::StrCat("the path in the record under ", key,
                                            " is not authorized: ",
                                            store::PathVerdictName(path)));
  }
  auto sa = std::make_unique<IkeSa>();
  sa->spi_i = record.initiator_spi();
  sa->spi_r = record.responder_spi();
  sa->dormant = record.state() == v1::IKE_SA_STATE_DORMANT;
  if (sa->record_key() != key) {
    return absl::DataLossError(absl::StrCat("the record under ", key, " names other SPIs"));
  }
  sa->phase = IkeSa::Phase::kEstablished;
  sa->transforms = ipsec::FromProposal(record.proposal());
  sa->keys.sk_d = Secret(keys->sk_d());
  sa->keys.sk_ai = Secret(keys->sk_ai());
  sa->keys.sk_ar = Secret(keys->sk_ar());
  sa->keys.sk_ei = Secret(keys->sk_ei());
  sa->keys.sk_er = Secret(keys->sk_er());
  sa->keys.sk_pi = Secret(keys->sk_pi());
  sa->keys.sk_pr = Secret(keys->sk_pr());
  auto from_initiator = SkProtector::Create(sa->transforms, sa->keys.sk_ei.span(),
                                            sa->keys.sk_ai.span());
  auto to_initiator = SkProtector::Create(sa->transforms, sa->keys.sk_er.span(),
                                          sa->keys.sk_ar.span());
  auto local = net::IpEndpoint::FromProto(record.local());
  auto remote = net::IpEndpoint::FromProto(record.remote());
  if (!from_initiator.ok()) return from_initiator.status();
  if (!to_initiator.ok()) return to_initiator.status();
  if (!local.ok()) return local.status();
  if (!remote.ok()) return remote.status();
  sa->from_initiator = std::move(*from_initiator);
  sa->to_initiator = std::move(*to_initiator);
  sa->local = *local;
  sa->remote = *remote;
  sa->udp_encapsulated = record.udp_encapsulated();
  sa->initiator_behind_nat = record.remote_behind_nat();
  sa->responder_behind_nat = record.local_behind_nat();
  sa->path_generation = record.path_auth().generation();
  sa->peer_supports_fragmentation = record.peer_fragmentation();
  sa->mobike = record.mobike();
  sa->next_request_id = record.next_message_id_in();
  sa->last_response_id = record.last_response_message_id();
  sa->last_response = Datagrams(record.last_response());
  sa->message_id_unknown = true;  // the client may have moved on since
  sa->restored = true;
  sa->next_own_request_id = record.next_message_id_out();
  if (record.pending_request_size() > 0) {
    // Sent again by the liveness sweep, with its back-off.
    IkeSa::PendingRequest pending;
    pending.message_id = record.pending_request_message_id();
    pending.datagrams = Datagrams(record.pending_request());
    pending.sent = absl::Now();
    pending.attempts = 1;
    // Answered from the client's cache within seconds if it had the request
    // already; otherwise it is in an outage, and the next check starts over.
    pending.give_up_after = 4;
    sa->pending_request = std::move(pending);
    sa->return_routability_cookie.assign(record.return_routability_cookie().begin(),
                                         record.return_routability_cookie().end());
  }
  sa->idi.id_type = static_cast<codec::IdType>(record.initiator_id().type());
  sa->idi.data.assign(record.initiator_id().data().begin(),
                      record.initiator_id().data().end());
  sa->idr_body = codec::IdPayloadBody(
      static_cast<codec::IdType>(record.responder_id().type()),
      codec::Bytes(record.responder_id().data().begin(), record.responder_id().data().end()));
  sa->uses_eap = record.auth_method() == v1::AUTH_METHOD_EAP_MSCHAPV2;
  sa->eap_identity = record.eap_identity();
  sa->certificate_subject = record.certificate_subject();
  for (const std::string& ip : record.virtual_ips()) sa->virtual_ips.push_back(ip);
  sa->created = FromTimestamp(record.established());
  sa->last_seen = absl::Now();
  if (accept != nullptr && !(*accept)(*sa)) {
    return absl::PermissionDeniedError("the message does not authenticate");
  }
  *children_ok = true;
  for (uint32_t spi : record.child_spis()) {
    absl::StatusOr<store::Versioned<v1::ChildSa>> child =
        store::GetProto<v1::ChildSa>(*store_, ChildKey(spi));
    if (!child.ok()) {
      *children_ok = false;
      continue;
    }
    absl::StatusOr<v1::ChildSaKeys> child_keys =
        store::OpenChildSa(*sealer_, ChildKey(spi), child->record);
    if (!child_keys.ok()) {
      CountRejected("seal");
      *children_ok = false;
      continue;
    }
    ChildSaState state;
    state.inbound_spi = child->record.inbound_spi();
    state.outbound_spi = child->record.outbound_spi();
    state.transforms = ipsec::FromProposal(child->record.proposal());
    state.keys.encryption_i = Secret(child_keys->inbound_encryption());
    state.keys.integrity_i = Secret(child_keys->inbound_integrity());
    state.keys.encryption_r = Secret(child_keys->outbound_encryption());
    state.keys.integrity_r = Secret(child_keys->outbound_integrity());
    state.local_ts = SelectorsFrom(child->record.local_ts());
    state.remote_ts = SelectorsFrom(child->record.remote_ts());
    state.created = FromTimestamp(child->record.created());
    sa->children.push_back(std::move(state));
  }
  return sa;
}

void SaRecorder::CountRejectedIn(prometheus::Registry& registry) {
  rejected_ = &prometheus::BuildCounter()
                   .Name("ike_store_records_rejected_total")
                   .Help("SA records read from the store that did not verify, by reason "
                         "(seal, path_tag_missing, path_tag_invalid, path_generation_stale).")
                   .Register(registry);
}

void SaRecorder::CountRejected(const char* reason) const {
  if (rejected_ != nullptr) rejected_->Add({{"reason", reason}}).Increment();
  log_.Warning("SA record does not verify; ignored", {{"reason", reason}});
}

absl::StatusOr<v1::PathAuth> SaRecorder::TagPath(const IkeSa& sa, uint64_t generation) const {
  return store::TagPath(*sealer_, sa.spi_i, sa.spi_r, sa.local.ToProto(), sa.remote.ToProto(),
                        sa.initiator_behind_nat, generation);
}

store::PathVerdict SaRecorder::CheckPath(const v1::IkeSa& record,
                                         uint64_t min_generation) const {
  const store::PathVerdict verdict = store::CheckIkePath(*sealer_, record, min_generation);
  if (verdict != store::PathVerdict::kValid) CountRejected(store::PathVerdictName(verdict));
  return verdict;
}

absl::Status SaRecorder::RemoveSa(const IkeSa& sa) {
  std::vector<store::Op> ops;
  ops.push_back(store::Op::Delete(sa.record_key()));
  for (const ChildSaState& child : sa.children) {
    ops.push_back(store::Op::Delete(ChildKey(child.inbound_spi)));
  }
  return Commit(std::move(ops), "remove");
}

absl::Status SaRecorder::ReleaseLeases(std::vector<store::Op> releases, std::string sa_key) {
  return Commit(std::move(releases), "release", std::move(sa_key));
}

absl::Status SaRecorder::RemoveChild(const ChildSaState& child) {
  std::vector<store::Op> ops;
  ops.push_back(store::Op::Delete(ChildKey(child.inbound_spi)));
  return Commit(std::move(ops), "remove_child");
}

}  // namespace vpn::ike
