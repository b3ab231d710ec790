#include "common/store/etcd_store.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log/log.h"
#include "common/rpc/credentials.h"
#include "proto/etcd/etcdserverpb/rpc.grpc.pb.h"

namespace vpn::store {
namespace etcd_internal {

namespace pb = ::etcdserverpb;

namespace {

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("store");
  return *logger;
}

// The end of the key range holding every key that starts with `prefix`.
std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // all keys
}

void SetRange(absl::string_view prefix, std::string* key, std::string* range_end) {
  if (prefix.empty()) {
    *key = std::string(1, '\0');
    *range_end = std::string(1, '\0');
  } else {
    *key = std::string(prefix);
    *range_end = PrefixEnd(prefix);
  }
}

KeyValue FromPb(const mvccpb::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

pb::Compare ConditionCompare(const std::string& key, const Condition& c) {
  pb::Compare cmp;
  cmp.set_result(pb::Compare::EQUAL);
  cmp.set_key(key);
  if (c.kind == Condition::Kind::kModRevisionEquals) {
    cmp.set_target(pb::Compare::MOD);
    cmp.set_mod_revision(c.version);
    return cmp;
  }
  cmp.set_target(pb::Compare::VERSION);
  cmp.set_version(c.kind == Condition::Kind::kVersionEquals ? c.version : 0);
  return cmp;
}

// "key 'k'", "prefix 'p'" or "range 'a'..'b'", for error messages.
std::string DescribeRange(absl::string_view key, absl::string_view range_end) {
  if (range_end.empty()) return absl::StrCat("key '", key, "'");
  if (key == absl::string_view("\0", 1)) return "all keys";
  if (range_end == PrefixEnd(key)) return absl::StrCat("prefix '", key, "'");
  return absl::StrCat("range '", key, "'..'", range_end, "'");
}

// The keys a Txn touches, the first few named: a denial may come from any.
std::string DescribeTxn(const pb::TxnRequest& req) {
  constexpr size_t kNamed = 4;
  std::vector<std::string> keys;
  auto add = [&keys](const std::string& key) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  };
  for (const pb::Compare& c : req.compare()) add(c.key());
  for (const pb::RequestOp& op : req.success()) {
    if (op.has_request_put()) add(op.request_put().key());
    if (op.has_request_delete_range()) add(op.request_delete_range().key());
    if (op.has_request_range()) add(op.request_range().key());
  }
  std::string out = keys.size() == 1 ? "key " : "keys ";
  for (size_t i = 0; i < keys.size() && i < kNamed; ++i) {
    absl::StrAppend(&out, i == 0 ? "'" : ", '", keys[i], "'");
  }
  if (keys.size() > kNamed) absl::StrAppend(&out, " and ", keys.size() - kNamed, " more");
  return out;
}

}  // namespace

// The connection to etcd, shared by the store and its watchers.
class Client {
 public:
  explicit Client(EtcdOptions options) : options_(std::move(options)) {}

  absl::Status Init() {
    if (options_.endpoints.empty()) {
      return absl::InvalidArgumentError("etcd: no endpoints configured");
    }
    const rpc::TlsFiles& tls = options_.tls;
    if ((!tls.cert_file.empty() || !tls.key_file.empty() || !tls.ca_file.empty()) &&
        (tls.cert_file.empty() || tls.key_file.empty() || tls.ca_file.empty())) {
      return absl::InvalidArgumentError(
          "etcd: TLS needs cert_file, key_file and ca_file together");
    }
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
        rpc::MakeChannelCredentials(tls);
    if (!creds.ok()) {
      return absl::Status(creds.status().code(),
                          absl::StrCat("etcd: ", creds.status().message()));
    }
    if (!tls.enabled() && !options_.username.empty()) {
      Log().Warning("etcd user authentication without TLS sends the password "
                    "in clear text");
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);  // connect deadline
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3000);
    args.SetMaxReceiveMessageSize(-1);
    for (const std::string& endpoint : options_.endpoints) {
      Endpoint e;
      e.address = endpoint;
      e.channel = grpc::CreateCustomChannel(endpoint, *creds, args);
      e.kv = pb::KV::NewStub(e.channel);
      e.watch = pb::Watch::NewStub(e.channel);
      e.lease = pb::Lease::NewStub(e.channel);
      e.auth = pb::Auth::NewStub(e.channel);
      endpoints_.push_back(std::move(e));
    }
    if (!options_.username.empty()) return Authenticate();
    return absl::OkStatus();
  }

  struct Endpoint {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Auth::Stub> auth;
  };

  const Endpoint& endpoint() {
    return endpoints_[current_.load() % endpoints_.size()];
  }

  // Prepares a context: deadline (unless streaming) and the auth token.
  void Prepare(grpc::ClientContext* ctx, bool with_deadline) {
    if (with_deadline) {
      ctx->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(options_.op_timeout));
    }
    absl::MutexLock lock(&mu_);
    if (!token_.empty()) ctx->AddMetadata("token", token_);
  }

  absl::Status Authenticate() {
    pb::AuthenticateRequest req;
    req.set_name(options_.username);
    req.set_password(options_.password);
    pb::AuthenticateResponse resp;
    absl::Status st;
    for (size_t attempt = 0; attempt < endpoints_.size(); ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options_.op_timeout));
      const Endpoint& e = endpoint();
      grpc::Status gs = e.auth->Authenticate(&ctx, req, &resp);
      st = ToStatus("Authenticate", e.address, gs);
      if (st.ok()) break;
      if (!absl::IsUnavailable(st)) break;
      current_.fetch_add(1);
    }
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat("etcd: authentication as user '",
                                                  options_.username,
                                                  "' failed: ", st.message()));
    }
    absl::MutexLock lock(&mu_);
    token_ = resp.token();
    return absl::OkStatus();
  }

  // Maps a gRPC status to a clear absl::Status.
  // `subject` names the keys of the request ("key 'ike/x'"), for a denial.
  absl::Status ToStatus(absl::string_view what, absl::string_view address,
                        const grpc::Status& gs, absl::string_view subject = {}) {
    if (gs.ok()) return absl::OkStatus();
    const std::string& msg = gs.error_message();
    switch (gs.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return absl::UnavailableError(absl::StrCat(
            "etcd ", what, ": etcd at ", address, " is unavailable (",
            gs.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                ? absl::StrCat("no answer within ",
                               absl::FormatDuration(options_.op_timeout))
                : msg,
            ")"));
      case grpc::StatusCode::INVALID_ARGUMENT:
        return absl::InvalidArgumentError(absl::StrCat("etcd ", what, ": ", msg));
      case grpc::StatusCode::NOT_FOUND:
        return absl::NotFoundError(absl::StrCat("etcd ", what, ": ", msg));
      case grpc::StatusCode::OUT_OF_RANGE:
        return absl::OutOfRangeError(absl::StrCat("etcd ", what, ": ", msg));
      case grpc::StatusCode::UNAUTHENTICATED:
        return absl::UnauthenticatedError(absl::StrCat("etcd ", what, ": ", msg));
      case grpc::StatusCode::PERMISSION_DENIED:
        return absl::PermissionDeniedError(absl::StrCat(
            "etcd ", what, subject.empty() ? "" : " on ", subject, ": ", msg,
            " (not allowed for this client's etcd user; see tools/etcd-rbac.sh)"));
      case grpc::StatusCode::FAILED_PRECONDITION:
        return absl::FailedPreconditionError(absl::StrCat("etcd ", what, ": ", msg));
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        return absl::ResourceExhaustedError(absl::StrCat("etcd ", what, ": ", msg));
      case grpc::StatusCode::CANCELLED:
        return absl::CancelledError(absl::StrCat("etcd ", what, ": ", msg));
      default:
        return absl::InternalError(absl::StrCat("etcd ", what, ": ", msg,
                                                " (gRPC code ",
                                                static_cast<int>(gs.error_code()), ")"));
    }
  }

  // Runs a unary call with the limits, deadline, token refresh and endpoint
  // failover applied. `rpc(stub_endpoint, ctx, resp)` performs the call.
  // `subject` names the keys, for a permission denial.
  template <typename Req, typename Resp, typename Rpc>
  absl::Status Call(absl::string_view what, const Req& req, Resp* resp, Rpc rpc,
                    absl::string_view subject = {}) {
    size_t bytes = req.ByteSizeLong();
    if (bytes > kMaxRequestBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "etcd ", what, ": request of ", bytes,
          " bytes exceeds etcd's request limit of ", kMaxRequestBytes,
          " bytes (--max-request-bytes)"));
    }
    absl::Status st;
    bool reauthenticated = false;
    for (size_t attempt = 0; attempt < endpoints_.size() + 1; ++attempt) {
      grpc::ClientContext ctx;
      Prepare(&ctx, /*with_deadline=*/true);
      const Endpoint& e = endpoint();
      grpc::Status gs = rpc(e, &ctx, req, resp);
      st = ToStatus(what, e.address, gs, subject);
      if (st.ok()) return st;
      if (absl::IsUnauthenticated(st) && !options_.username.empty() &&
          !reauthenticated) {
        reauthenticated = true;
        absl::Status auth = Authenticate();
        if (!auth.ok()) return auth;
        continue;
      }
      if (absl::IsUnavailable(st) && endpoints_.size() > 1) {
        current_.fetch_add(1);  // try the next endpoint
        continue;
      }
      return st;
    }
    return st;
  }

  absl::StatusOr<pb::RangeResponse> Range(const pb::RangeRequest& req) {
    pb::RangeResponse resp;
    absl::Status st = Call(
        "Range", req, &resp,
        [](const Endpoint& e, grpc::ClientContext* ctx, const pb::RangeRequest& r,
           pb::RangeResponse* out) { return e.kv->Range(ctx, r, out); },
        DescribeRange(req.key(), req.range_end()));
    if (!st.ok()) return st;
    return resp;
  }

  absl::StatusOr<pb::TxnResponse> Txn(const pb::TxnRequest& req) {
    if (req.compare_size() > static_cast<int>(kMaxTxnOps) ||
        req.success_size() > static_cast<int>(kMaxTxnOps) ||
        req.failure_size() > static_cast<int>(kMaxTxnOps)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "etcd Txn: more than ", kMaxTxnOps,
          " operations in one txn (etcd's --max-txn-ops)"));
    }
    pb::TxnResponse resp;
    absl::Status st = Call(
        "Txn", req, &resp,
        [](const Endpoint& e, grpc::ClientContext* ctx, const pb::TxnRequest& r,
           pb::TxnResponse* out) { return e.kv->Txn(ctx, r, out); },
        DescribeTxn(req));
    if (!st.ok()) return st;
    return resp;
  }

  absl::StatusOr<ListResult> List(absl::string_view prefix) {
    ListResult result;
    pb::RangeRequest req;
    std::string key, end;
    SetRange(prefix, &key, &end);
    req.set_key(key);
    req.set_range_end(end);
    req.set_limit(1000);
    while (true) {
      auto resp = Range(req);
      if (!resp.ok()) return resp.status();
      if (result.revision == 0) {
        result.revision = resp->header().revision();
        req.set_revision(result.revision);  // later pages at the same revision
      }
      for (const auto& kv : resp->kvs()) result.kvs.push_back(FromPb(kv));
      if (!resp->more() || resp->kvs_size() == 0) break;
      req.set_key(resp->kvs(resp->kvs_size() - 1).key() + std::string(1, '\0'));
    }
    return result;
  }

  const EtcdOptions& options() const { return options_; }

 private:
  const EtcdOptions options_;
  std::vector<Endpoint> endpoints_;  // immutable after Init()
  std::atomic<size_t> current_{0};
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
};

// A Watcher backed by one etcd watch stream, re-created after failures.
class EtcdWatcher : public Watcher {
 public:
  // Like EmbeddedOptions::watch_queue_limit.
  static constexpr size_t kMaxQueuedEvents = 10000;

  EtcdWatcher(std::shared_ptr<Client> client, std::string prefix,
              int64_t start_revision)
      : client_(std::move(client)), prefix_(std::move(prefix)) {
    next_revision_ = start_revision;
    thread_ = std::thread([this] {
      log::SetThreadName("etcd-watch");
      Run();
    });
  }

  ~EtcdWatcher() override {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
      if (ctx_ != nullptr) ctx_->TryCancel();
    }
    thread_.join();
  }

  absl::StatusOr<WatchEvent> Next(absl::Duration timeout) override {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !queue_.empty() || reader_cancelled_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (reader_cancelled_) return absl::CancelledError("etcd watch: cancelled");
    if (queue_.empty()) {
      return absl::DeadlineExceededError(
          last_error_.empty()
              ? std::string("etcd watch: no event within timeout")
              : absl::StrCat("etcd watch: no event within timeout (reconnecting: ",
                             last_error_, ")"));
    }
    WatchEvent e = std::move(queue_.front());
    queue_.pop_front();
    return e;
  }

  void Cancel() override {
    absl::MutexLock lock(&mu_);
    reader_cancelled_ = true;
  }

 private:
  void Push(WatchEvent e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.push_back(std::move(e));
  }

  // Sleeps up to `d` unless stopped; returns false once stopped.
  bool Backoff(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopped_), d);
    return !stopped_;
  }

  // Re-lists the prefix after a compaction and queues a kResync.
  bool Resync() {
    absl::Duration backoff = absl::Milliseconds(100);
    while (true) {
      absl::StatusOr<ListResult> list = client_->List(prefix_);
      if (list.ok()) {
        absl::MutexLock lock(&mu_);
        WatchEvent e;
        e.type = WatchEvent::Type::kResync;
        e.revision = list->revision;
        e.snapshot = std::move(list->kvs);
        Push(std::move(e));
        next_revision_ = list->revision + 1;
        return true;
      }
      if (!Backoff(backoff)) return false;
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
  }

  void Run() {
    absl::Duration backoff = absl::Milliseconds(100);
    while (true) {
      grpc::ClientContext ctx;
      client_->Prepare(&ctx, /*with_deadline=*/false);
      int64_t start;
      {
        absl::MutexLock lock(&mu_);
        if (stopped_) return;
        ctx_ = &ctx;
        start = next_revision_;
      }
      const Client::Endpoint& endpoint = client_->endpoint();
      auto stream = endpoint.watch->Watch(&ctx);
      pb::WatchRequest req;
      pb::WatchCreateRequest* create = req.mutable_create_request();
      SetRange(prefix_, create->mutable_key(), create->mutable_range_end());
      create->set_start_revision(start);
      create->set_progress_notify(true);
      bool need_resync = false;
      std::string cancel_reason;
      if (stream->Write(req)) {
        pb::WatchResponse resp;
        while (stream->Read(&resp)) {
          if (need_resync || !cancel_reason.empty()) continue;  // draining
          if (resp.compact_revision() != 0) {
            need_resync = true;
            ctx.TryCancel();
            continue;  // drain until Read fails
          }
          if (resp.canceled()) {
            cancel_reason = resp.cancel_reason();
            ctx.TryCancel();
            continue;
          }
          backoff = absl::Milliseconds(100);
          absl::MutexLock lock(&mu_);
          last_error_.clear();
          for (const mvccpb::Event& ev : resp.events()) {
            WatchEvent e;
            e.type = ev.type() == mvccpb::Event::DELETE ? WatchEvent::Type::kDelete
                                                        : WatchEvent::Type::kPut;
            e.revision = ev.kv().mod_revision();
            if (e.type == WatchEvent::Type::kDelete) {
              e.kv.key = ev.kv().key();
              e.kv.mod_revision = ev.kv().mod_revision();
            } else {
              e.kv = FromPb(ev.kv());
            }
            // A stream never repeats events, and a revision is never split
            // across responses, so resuming at last revision + 1 neither
            // loses nor repeats an event.
            next_revision_ = std::max(next_revision_, e.revision + 1);
            Push(std::move(e));
          }
          if (queue_.size() > kMaxQueuedEvents) {
            // The consumer is too far behind: drop the backlog, re-list.
            queue_.clear();
            need_resync = true;
            ctx.TryCancel();
            continue;
          }
          if (resp.events_size() == 0 && !resp.created() && !resp.fragment()) {
            // Progress notification: nothing below header.revision is missing.
            next_revision_ = std::max(next_revision_, resp.header().revision() + 1);
          }
        }
      }
      grpc::Status gs = stream->Finish();
      {
        absl::MutexLock lock(&mu_);
        ctx_ = nullptr;
        if (stopped_) return;
        if (!gs.ok() && !need_resync) {
          last_error_ = absl::StrCat(endpoint.address, ": ", gs.error_message());
        }
        if (!cancel_reason.empty()) last_error_ = cancel_reason;
      }
      if (need_resync) {
        if (!Resync()) return;
        continue;
      }
      if (gs.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
          absl::StrContains(cancel_reason, "auth") ||
          absl::StrContains(gs.error_message(), "auth")) {
        if (!client_->options().username.empty()) client_->Authenticate().IgnoreError();
      }
      if (!Backoff(backoff)) return;
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
  }

  std::shared_ptr<Client> client_;
  const std::string prefix_;
  absl::Mutex mu_;
  std::deque<WatchEvent> queue_ ABSL_GUARDED_BY(mu_);
  int64_t next_revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool reader_cancelled_ ABSL_GUARDED_BY(mu_) = false;  // Watcher::Cancel
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace etcd_internal

using etcd_internal::Client;
namespace pb = ::etcdserverpb;

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Connect(
    const EtcdOptions& options) {
  auto client = std::make_shared<Client>(options);
  absl::Status st = client->Init();
  if (!st.ok()) return st;
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(client)));
}

EtcdStore::~EtcdStore() = default;

absl::StatusOr<KeyValue> EtcdStore::Get(absl::string_view key) {
  pb::RangeRequest req;
  req.set_key(std::string(key));
  auto resp = client_->Range(req);
  if (!resp.ok()) return resp.status();
  if (resp->kvs_size() == 0) {
    return absl::NotFoundError(absl::StrCat("store: key '", key, "' not found"));
  }
  return etcd_internal::FromPb(resp->kvs(0));
}

absl::StatusOr<ListResult> EtcdStore::List(absl::string_view prefix) {
  return client_->List(prefix);
}

absl::StatusOr<WriteResult> EtcdStore::Put(absl::string_view key,
                                           absl::string_view value,
                                           const PutOptions& options) {
  absl::StatusOr<TxnResult> r = Txn(
      {Op::Put(std::string(key), std::string(value), options.condition, options.lease)});
  if (!r.ok()) return r.status();
  return WriteResult{r->revision, r->versions[0]};
}

absl::StatusOr<WriteResult> EtcdStore::Delete(absl::string_view key,
                                              const Condition& condition) {
  if (condition.kind == Condition::Kind::kAny) {
    pb::DeleteRangeRequest req;
    req.set_key(std::string(key));
    pb::DeleteRangeResponse resp;
    absl::Status st = client_->Call(
        "DeleteRange", req, &resp,
        [](const Client::Endpoint& e, grpc::ClientContext* ctx,
           const pb::DeleteRangeRequest& r, pb::DeleteRangeResponse* out) {
          return e.kv->DeleteRange(ctx, r, out);
        },
        etcd_internal::DescribeRange(req.key(), req.range_end()));
    if (!st.ok()) return st;
    if (resp.deleted() == 0) {
      return absl::NotFoundError(absl::StrCat("store: key '", key, "' not found"));
    }
    return WriteResult{resp.header().revision(), 0};
  }
  absl::StatusOr<TxnResult> r = Txn({Op::Delete(std::string(key), condition)});
  if (!r.ok()) return r.status();
  return WriteResult{r->revision, 0};
}

absl::StatusOr<TxnResult> EtcdStore::Txn(const std::vector<Op>& ops) {
  if (ops.size() > kMaxTxnOps) {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd Txn: txn has ", ops.size(), " ops; etcd's limit is ", kMaxTxnOps,
        " (--max-txn-ops)"));
  }
  pb::TxnRequest req;
  absl::flat_hash_set<absl::string_view> written;
  std::vector<size_t> compared;  // indexes of ops with a condition
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (op.key.empty()) return absl::InvalidArgumentError("store: empty key");
    if (op.type != Op::Type::kCheck && !written.insert(op.key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: key '", op.key, "' is written twice in one txn"));
    }
    if (op.condition.kind != Condition::Kind::kAny) {
      *req.add_compare() = etcd_internal::ConditionCompare(op.key, op.condition);
      compared.push_back(i);
      pb::RangeRequest* range = req.add_failure()->mutable_request_range();
      range->set_key(op.key);
      range->set_keys_only(true);
    }
    pb::RequestOp* success = req.add_success();
    switch (op.type) {
      case Op::Type::kPut: {
        pb::PutRequest* put = success->mutable_request_put();
        put->set_key(op.key);
        put->set_value(op.value);
        put->set_lease(op.lease);
        put->set_prev_kv(true);
        break;
      }
      case Op::Type::kDelete:
        success->mutable_request_delete_range()->set_key(op.key);
        break;
      case Op::Type::kCheck: {
        pb::RangeRequest* range = success->mutable_request_range();
        range->set_key(op.key);
        range->set_keys_only(true);
        break;
      }
    }
  }
  auto resp = client_->Txn(req);
  if (!resp.ok()) return resp.status();
  if (!resp->succeeded()) {
    for (size_t j = 0; j < compared.size() && j < static_cast<size_t>(resp->responses_size());
         ++j) {
      const Op& op = ops[compared[j]];
      const pb::RangeResponse& range = resp->responses(j).response_range();
      int64_t found = range.kvs_size() > 0 ? range.kvs(0).version() : 0;
      int64_t found_mod = range.kvs_size() > 0 ? range.kvs(0).mod_revision() : 0;
      if (!op.condition.Matches(found, found_mod)) {
        return ConflictError(op.key, op.condition, found);
      }
    }
    return absl::AbortedError("etcd Txn: compare failed but no failing condition found");
  }
  TxnResult result;
  result.revision = resp->header().revision();
  for (size_t i = 0; i < ops.size(); ++i) {
    const pb::ResponseOp& r = resp->responses(static_cast<int>(i));
    switch (ops[i].type) {
      case Op::Type::kPut:
        result.versions.push_back(
            r.response_put().has_prev_kv() ? r.response_put().prev_kv().version() + 1
                                           : 1);
        break;
      case Op::Type::kDelete:
        result.versions.push_back(0);
        break;
      case Op::Type::kCheck:
        result.versions.push_back(r.response_range().kvs_size() > 0
                                      ? r.response_range().kvs(0).version()
                                      : 0);
        break;
    }
  }
  return result;
}

absl::StatusOr<std::unique_ptr<Watcher>> EtcdStore::Watch(absl::string_view prefix,
                                                          int64_t from_revision) {
  // One cheap call: fails fast when etcd is unreachable or the prefix is not
  // readable to this user, and gives the current revision for a watch "from
  // now".
  pb::RangeRequest req;
  etcd_internal::SetRange(prefix, req.mutable_key(), req.mutable_range_end());
  req.set_keys_only(true);
  req.set_limit(1);
  auto resp = client_->Range(req);
  if (!resp.ok()) return resp.status();
  int64_t start = from_revision > 0 ? from_revision : resp->header().revision() + 1;
  return std::unique_ptr<Watcher>(
      new etcd_internal::EtcdWatcher(client_, std::string(prefix), start));
}

absl::StatusOr<LeaseId> EtcdStore::GrantLease(absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("store: lease TTL must be positive");
  }
  pb::LeaseGrantRequest req;
  req.set_ttl(absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1))));
  pb::LeaseGrantResponse resp;
  absl::Status st = client_->Call(
      "LeaseGrant", req, &resp,
      [](const Client::Endpoint& e, grpc::ClientContext* ctx,
         const pb::LeaseGrantRequest& r, pb::LeaseGrantResponse* out) {
        return e.lease->LeaseGrant(ctx, r, out);
      });
  if (!st.ok()) return st;
  if (!resp.error().empty()) {
    return absl::InternalError(absl::StrCat("etcd LeaseGrant: ", resp.error()));
  }
  return resp.id();
}

absl::Status EtcdStore::KeepAlive(LeaseId lease) {
  pb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  pb::LeaseKeepAliveResponse resp;
  absl::Status st = client_->Call(
      "LeaseKeepAlive", req, &resp,
      [](const Client::Endpoint& e, grpc::ClientContext* ctx,
         const pb::LeaseKeepAliveRequest& r, pb::LeaseKeepAliveResponse* out) {
        auto stream = e.lease->LeaseKeepAlive(ctx);
        if (!stream->Write(r) || !stream->Read(out)) {
          stream->WritesDone();
          grpc::Status gs = stream->Finish();
          return gs.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        "keepalive stream closed")
                         : gs;
        }
        stream->WritesDone();
        return stream->Finish();
      });
  if (!st.ok()) return st;
  if (resp.ttl() <= 0) {
    return absl::NotFoundError(absl::StrCat("store: lease ", lease, " not found"));
  }
  return absl::OkStatus();
}

absl::Status EtcdStore::RevokeLease(LeaseId lease) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease);
  pb::LeaseRevokeResponse resp;
  return client_->Call(
      "LeaseRevoke", req, &resp,
      [](const Client::Endpoint& e, grpc::ClientContext* ctx,
         const pb::LeaseRevokeRequest& r, pb::LeaseRevokeResponse* out) {
        return e.lease->LeaseRevoke(ctx, r, out);
      });
}

absl::Status EtcdStore::Compact(int64_t revision) {
  pb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(true);
  pb::CompactionResponse resp;
  absl::Status st = client_->Call(
      "Compact", req, &resp,
      [](const Client::Endpoint& e, grpc::ClientContext* ctx,
         const pb::CompactionRequest& r, pb::CompactionResponse* out) {
        return e.kv->Compact(ctx, r, out);
      });
  if (absl::IsOutOfRange(st) && absl::StrContains(st.message(), "compacted")) {
    return absl::OkStatus();  // already compacted at or after `revision`
  }
  return st;
}

}  // namespace vpn::store
