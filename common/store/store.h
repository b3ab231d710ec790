// The versioned SA store: the one interface through which every service reads
// and writes SA state. Two backends implement it: EmbeddedStore (in-process
// MVCC with a write-ahead log, the default) and EtcdStore (etcd v3 over gRPC).
// Both pass the same conformance suite (store_conformance_test.cc).
//
// Model (the same as etcd's):
// - The store has one global revision, incremented by every successful write
//   (a Put, a Delete, or a whole Txn, which commits at a single revision).
// - Each key has a version: 1 when created, +1 on each update, and it is gone
//   (version 0) after a delete. Conditions compare on this version.
// - A failed condition is a conflict: absl::StatusCode::kFailedPrecondition,
//   with a message naming the key, the expected and the found version. Use
//   IsConflict() to test for it. Nothing is written on a conflict.
// - Values are opaque bytes (normally serialized protobuf records); see
//   GetProto/PutProto below and sealer.h for keying material.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace vpn::store {

using LeaseId = int64_t;
constexpr LeaseId kNoLease = 0;

// etcd's limits (defaults of --max-request-bytes and --max-txn-ops), enforced
// by every backend so a record that fits one backend fits the other. Beyond
// them a write fails with kInvalidArgument.
constexpr size_t kMaxRequestBytes = 1536 * 1024;
constexpr size_t kMaxTxnOps = 128;

// One key with its value and MVCC metadata.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // revision that created the key
  int64_t mod_revision = 0;     // revision of the last change
  int64_t version = 0;          // 1 on create, +1 per update
  LeaseId lease = kNoLease;     // lease the key is attached to, if any
};

// A compare-on-version guard for a write.
struct Condition {
  enum class Kind {
    kAny,            // unconditional
    kMustNotExist,   // create-only
    kVersionEquals,  // only if the key's current version == version
    // Only if the key was last written at this store revision (a key
    // deleted and created again starts at version 1 again; its
    // mod_revision never repeats).
    kModRevisionEquals,
  };
  Kind kind = Kind::kAny;
  int64_t version = 0;  // the version, or the revision of kModRevisionEquals

  static Condition Any() { return {}; }
  static Condition CreateOnly() { return {Kind::kMustNotExist, 0}; }
  // VersionIs(0) is the same as CreateOnly().
  static Condition VersionIs(int64_t v) {
    return v == 0 ? CreateOnly() : Condition{Kind::kVersionEquals, v};
  }
  static Condition ModRevisionIs(int64_t revision) {
    return Condition{Kind::kModRevisionEquals, revision};
  }
  // Whether a key with `current_version` (0: absent) and
  // `current_mod_revision` satisfies the condition.
  bool Matches(int64_t current_version, int64_t current_mod_revision) const;
  std::string ToString() const;
};

struct PutOptions {
  Condition condition;
  LeaseId lease = kNoLease;  // attach the key to this lease
  // Return once the write is applied (conditions checked, revision taken)
  // without waiting for it to be durable: it becomes durable with the next
  // write that does wait. A crash before that loses it and every later
  // write alike (the log keeps their order). etcd ignores this.
  bool defer_durability = false;
};

// Result of a successful write.
struct WriteResult {
  int64_t revision = 0;  // store revision of the write
  int64_t version = 0;   // key version after the write (0 after a delete)
};

// One operation of a Txn.
struct Op {
  enum class Type { kPut, kDelete, kCheck };
  Type type = Type::kCheck;
  std::string key;
  std::string value;  // kPut only
  Condition condition;
  LeaseId lease = kNoLease;  // kPut only

  static Op Put(std::string key, std::string value,
                Condition condition = Condition::Any(),
                LeaseId lease = kNoLease);
  // A delete of an absent key inside a Txn is a no-op unless the condition
  // demands the key exists.
  static Op Delete(std::string key, Condition condition = Condition::Any());
  // A guard only: writes nothing, but the Txn fails unless it holds.
  static Op Check(std::string key, Condition condition);
};

struct TxnResult {
  int64_t revision = 0;
  // For each op in order: the key's version after the Txn (0 after a delete;
  // the checked version for kCheck).
  std::vector<int64_t> versions;
};

struct ListResult {
  std::vector<KeyValue> kvs;  // sorted by key
  int64_t revision = 0;       // store revision the list was read at
};

struct WatchEvent {
  enum class Type {
    kPut,
    kDelete,
    // History the watch needed was compacted (or the watcher fell too far
    // behind). `snapshot` holds every key under the prefix as of `revision`;
    // the caller must replace its view with it. Events continue after it.
    kResync,
  };
  Type type = Type::kPut;
  int64_t revision = 0;  // store revision of the change (or of the snapshot)
  // kPut: the new key/value. kDelete: key (and mod_revision = revision) only.
  KeyValue kv;
  std::vector<KeyValue> snapshot;  // kResync only
};

// A stream of events for one prefix, in revision order. Destroying it cancels
// the watch. Thread-compatible: one consumer calls Next().
class Watcher {
 public:
  virtual ~Watcher() = default;
  // The next event; kDeadlineExceeded if none arrived within `timeout`,
  // another error if the watch broke for good (e.g. the store was closed).
  virtual absl::StatusOr<WatchEvent> Next(absl::Duration timeout) = 0;
  // Ends a wait in Next() now, and makes every later Next() return
  // kCancelled at once: how a Stop() on another thread ends the loop that
  // reads the watch without waiting for its timeout. Thread-safe.
  virtual void Cancel() = 0;
};

// The watcher a loop is reading, for a Stop() on another thread to cancel
// (Watcher::Cancel). The loop tracks each watcher it reads and untracks it
// (Track(nullptr)) before destroying it.
class WatchCanceller {
 public:
  // A watcher tracked after Cancel() is cancelled at once.
  void Track(Watcher* watcher);
  void Cancel();

 private:
  absl::Mutex mu_;
  Watcher* watcher_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

class Store {
 public:
  virtual ~Store() = default;

  // kNotFound if the key does not exist.
  virtual absl::StatusOr<KeyValue> Get(absl::string_view key) = 0;

  // Every key starting with `prefix` ("" lists everything), sorted by key.
  virtual absl::StatusOr<ListResult> List(absl::string_view prefix) = 0;

  // Writes `value` under `key` if `options.condition` holds; otherwise a
  // conflict (kFailedPrecondition). kNotFound if options.lease is unknown.
  virtual absl::StatusOr<WriteResult> Put(absl::string_view key,
                                          absl::string_view value,
                                          const PutOptions& options = {}) = 0;

  // Deletes `key` if `condition` holds. kNotFound if the key does not exist
  // and the condition is Any(); a conflict for any other failed condition.
  virtual absl::StatusOr<WriteResult> Delete(
      absl::string_view key, const Condition& condition = Condition::Any()) = 0;

  // All-or-nothing: if every op's condition holds, applies all writes at one
  // revision; otherwise nothing is written and the first failing op is
  // reported as a conflict. A key may appear in at most one write op; at
  // most kMaxTxnOps ops and kMaxRequestBytes of keys and values.
  virtual absl::StatusOr<TxnResult> Txn(const std::vector<Op>& ops) = 0;

  // Events for keys under `prefix` with revision >= from_revision (0: only
  // changes after the call). If that history was compacted the first event
  // is a kResync.
  virtual absl::StatusOr<std::unique_ptr<Watcher>> Watch(
      absl::string_view prefix, int64_t from_revision) = 0;

  // Leases: keys attached to a lease are deleted (producing kDelete events)
  // when it expires or is revoked. TTLs are rounded up to whole seconds and
  // may be raised to the backend's minimum (2 s for etcd).
  virtual absl::StatusOr<LeaseId> GrantLease(absl::Duration ttl) = 0;
  // Restarts the lease's TTL; kNotFound if it expired or was revoked.
  virtual absl::Status KeepAlive(LeaseId lease) = 0;
  virtual absl::Status RevokeLease(LeaseId lease) = 0;

  // Drops the event history below `revision`; Watch() from an older revision
  // then starts with a kResync.
  virtual absl::Status Compact(int64_t revision) = 0;
};

// True for the typed conflict returned by a failed Condition.
bool IsConflict(const absl::Status& status);
// Builds that conflict status.
absl::Status ConflictError(absl::string_view key, const Condition& condition,
                           int64_t found_version);

// ---- Typed helpers for protobuf records ----------------------------------

template <typename Message>
struct Versioned {
  Message record;
  int64_t version = 0;
  int64_t mod_revision = 0;
};

// Reads and parses a record. kDataLoss if the stored bytes do not parse.
template <typename Message>
absl::StatusOr<Versioned<Message>> GetProto(Store& store,
                                            absl::string_view key) {
  absl::StatusOr<KeyValue> kv = store.Get(key);
  if (!kv.ok()) return kv.status();
  Versioned<Message> out;
  if (!out.record.ParseFromString(kv->value)) {
    return absl::DataLossError(
        std::string("store: value of key '") + std::string(key) +
        "' is not a valid " + std::string(Message::descriptor()->full_name()));
  }
  out.version = kv->version;
  out.mod_revision = kv->mod_revision;
  return out;
}

// Serializes and writes a record (deterministically, so equal records give
// equal bytes).
template <typename Message>
absl::StatusOr<WriteResult> PutProto(Store& store, absl::string_view key,
                                     const Message& record,
                                     const PutOptions& options = {}) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!record.SerializePartialToCodedStream(&coded)) {
      return absl::InvalidArgumentError("store: cannot serialize record");
    }
  }
  return store.Put(key, bytes, options);
}

}  // namespace vpn::store
