#include "common/store/embedded_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log/log.h"

namespace vpn::store {

namespace embedded_internal {

// One watcher's queue. Events are queued at apply time, tagged with their
// LSN, and handed out only once that LSN is durable.
struct WatchState {
  absl::Mutex mu;
  std::string prefix;  // immutable after creation
  struct Entry {
    uint64_t lsn;
    WatchEvent event;
  };
  std::deque<Entry> queue ABSL_GUARDED_BY(mu);
  uint64_t durable_lsn ABSL_GUARDED_BY(mu) = 0;
  absl::Status error ABSL_GUARDED_BY(mu);  // set when the watch ends
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  bool reader_cancelled ABSL_GUARDED_BY(mu) = false;  // Watcher::Cancel
  int64_t next_revision ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace embedded_internal

namespace {

using embedded_internal::WatchState;
using wal::KvOp;
using wal::Record;

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("store");
  return *logger;
}

std::string Errno(absl::string_view what, absl::string_view path) {
  return absl::StrCat(what, " ", path, ": ", strerror(errno));
}

absl::Status WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(
          absl::StrCat("store: WAL write failed: ", strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(Errno("store: open dir", dir));
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return absl::InternalError(Errno("store: fsync dir", dir));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(Errno("store: open", path));
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = absl::InternalError(Errno("store: read", path));
      close(fd);
      return st;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// Parses "<prefix><16 digits><suffix>".
bool ParseNumberedName(absl::string_view name, absl::string_view prefix,
                       absl::string_view suffix, uint64_t* n) {
  if (!absl::ConsumePrefix(&name, prefix) || !absl::ConsumeSuffix(&name, suffix) ||
      name.size() != 16) {
    return false;
  }
  return absl::SimpleAtoi(name, n);
}

bool HasPrefix(absl::string_view key, absl::string_view prefix) {
  return absl::StartsWith(key, prefix);
}

class EmbeddedWatcher : public Watcher {
 public:
  explicit EmbeddedWatcher(std::shared_ptr<WatchState> state)
      : state_(std::move(state)) {}
  ~EmbeddedWatcher() override {
    absl::MutexLock lock(&state_->mu);
    state_->cancelled = true;
    state_->queue.clear();
  }

  absl::StatusOr<WatchEvent> Next(absl::Duration timeout) override {
    WatchState* s = state_.get();
    absl::MutexLock lock(&s->mu);
    auto ready = [s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
      return !s->error.ok() || s->reader_cancelled ||
             (!s->queue.empty() && s->queue.front().lsn <= s->durable_lsn);
    };
    s->mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (s->reader_cancelled) return absl::CancelledError("store: watch cancelled");
    if (!s->queue.empty() && s->queue.front().lsn <= s->durable_lsn) {
      WatchEvent event = std::move(s->queue.front().event);
      s->queue.pop_front();
      return event;
    }
    if (!s->error.ok()) return s->error;
    return absl::DeadlineExceededError("store: no watch event within timeout");
  }

  void Cancel() override {
    absl::MutexLock lock(&state_->mu);
    state_->reader_cancelled = true;
  }

 private:
  std::shared_ptr<WatchState> state_;
};

}  // namespace

EmbeddedStore::EmbeddedStore(const EmbeddedOptions& options)
    : options_(options) {}

std::string EmbeddedStore::SegmentPath(uint64_t seq) const {
  return absl::StrFormat("%s/wal-%016d.log", options_.dir, seq);
}

std::string EmbeddedStore::SnapshotPath(uint64_t lsn) const {
  return absl::StrFormat("%s/snap-%016d.snap", options_.dir, lsn);
}

absl::StatusOr<std::unique_ptr<EmbeddedStore>> EmbeddedStore::Open(
    const EmbeddedOptions& options) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("store: embedded data dir is empty");
  }
  std::unique_ptr<EmbeddedStore> store(new EmbeddedStore(options));
  absl::Status st = store->Recover();
  if (!st.ok()) return st;
  store->lease_thread_ = std::thread([s = store.get()] {
    log::SetThreadName("store-leases");
    s->LeaseLoop();
  });
  return store;
}

EmbeddedStore::~EmbeddedStore() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    if (wal_fd_ >= 0 && fatal_.ok()) {
      // Flush anything queued (writes with deferred durability).
      WaitAllDurableLocked().IgnoreError();
    }
  }
  if (lease_thread_.joinable()) lease_thread_.join();
  std::thread snapshot;
  {
    absl::MutexLock lock(&mu_);
    snapshot = std::move(snapshot_thread_);
  }
  if (snapshot.joinable()) snapshot.join();
  absl::MutexLock lock(&mu_);
  for (auto& w : watchers_) {
    absl::MutexLock wlock(&w->mu);
    w->error = absl::CancelledError("store: the store was closed");
  }
  watchers_.clear();
  if (wal_fd_ >= 0) close(wal_fd_);
  if (lock_fd_ >= 0) close(lock_fd_);
}

// ---- Recovery -------------------------------------------------------------

absl::Status EmbeddedStore::Recover() {
  const std::string& dir = options_.dir;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(Errno("store: cannot create data dir", dir));
  }
  std::string lock_path = dir + "/LOCK";
  lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) {
    return absl::FailedPreconditionError(Errno("store: cannot open", lock_path));
  }
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store: data dir ", dir, " is in use by another process (", lock_path,
        " is locked)"));
  }

  std::vector<uint64_t> segments;
  std::vector<uint64_t> snapshots;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return absl::FailedPreconditionError(Errno("store: opendir", dir));
  while (struct dirent* e = readdir(d)) {
    absl::string_view name = e->d_name;
    uint64_t n;
    if (ParseNumberedName(name, "wal-", ".log", &n)) {
      segments.push_back(n);
    } else if (ParseNumberedName(name, "snap-", ".snap", &n)) {
      snapshots.push_back(n);
    } else if (absl::EndsWith(name, ".tmp")) {
      unlink((dir + "/" + std::string(name)).c_str());  // unfinished snapshot
    }
  }
  closedir(d);
  std::sort(segments.begin(), segments.end());
  std::sort(snapshots.begin(), snapshots.end());

  absl::MutexLock lock(&mu_);
  uint64_t snap_lsn = 0;
  if (!snapshots.empty()) {
    snap_lsn = snapshots.back();
    absl::Status st = LoadSnapshot(SnapshotPath(snap_lsn), &snap_lsn);
    if (!st.ok()) return st;
    for (size_t i = 0; i + 1 < snapshots.size(); ++i) {
      unlink(SnapshotPath(snapshots[i]).c_str());
    }
  }
  uint64_t last_lsn = snap_lsn;
  absl::Status st = ReplaySegments(&segments, &last_lsn);
  if (!st.ok()) return st;
  appended_lsn_ = durable_lsn_ = last_lsn;

  // Append to the last segment, or start the first one.
  wal_seq_ = segments.empty() ? 1 : segments.back();
  std::string path = SegmentPath(wal_seq_);
  wal_fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (wal_fd_ < 0) return absl::InternalError(Errno("store: cannot open WAL", path));
  struct stat sb;
  if (fstat(wal_fd_, &sb) != 0) return absl::InternalError(Errno("store: stat", path));
  wal_size_ = static_cast<uint64_t>(sb.st_size);
  if (segments.empty()) {
    absl::Status sync = SyncDir(dir);
    if (!sync.ok()) return sync;
  }
  for (const std::string& note : recovery_notes_) {
    Log().Warning(note, {{"dir", dir}});
  }
  return absl::OkStatus();
}

absl::Status EmbeddedStore::LoadSnapshot(const std::string& path,
                                         uint64_t* lsn) {
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  absl::string_view rest = *data;
  size_t offset = 0;
  bool have_header = false;
  uint64_t count = 0;
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("store: snapshot ", path,
                                            ": corrupt at offset ", offset, ": ",
                                            why));
  };
  while (true) {
    if (rest.empty()) return corrupt("missing end record (incomplete snapshot)");
    absl::StatusOr<wal::Frame> frame = wal::DecodeFrame(rest);
    if (!frame.ok()) return corrupt(frame.status().message());
    const Record& r = frame->record;
    if (!have_header) {
      if (r.type != Record::Type::kSnapshotHeader) return corrupt("no header record");
      have_header = true;
      *lsn = r.lsn;
      revision_ = r.revision;
      // History up to the snapshot is gone after a restart.
      compact_revision_ = r.revision + 1;
      next_lease_id_ = r.next_lease_id;
    } else if (r.type == Record::Type::kSnapshotKv) {
      kvs_[r.kv.key] = r.kv;
      ++count;
    } else if (r.type == Record::Type::kSnapshotLease) {
      LeaseState& lease = leases_[r.lease_id];
      lease.ttl_ms = r.ttl_ms;
      lease.deadline = absl::Now() + absl::Milliseconds(r.ttl_ms);
      ++count;
    } else if (r.type == Record::Type::kSnapshotEnd) {
      if (r.count != count) return corrupt("record count mismatch");
      break;
    } else {
      return corrupt("unexpected record type");
    }
    offset += frame->size;
    rest.remove_prefix(frame->size);
  }
  for (const auto& [key, kv] : kvs_) {
    if (kv.lease != kNoLease) leases_[kv.lease].keys.insert(key);
  }
  return absl::OkStatus();
}

absl::Status EmbeddedStore::ReplaySegments(std::vector<uint64_t>* segments_io,
                                           uint64_t* last_lsn) {
  std::vector<uint64_t>& segments = *segments_io;
  const uint64_t snap_lsn = *last_lsn;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string path = SegmentPath(segments[i]);
    absl::StatusOr<std::string> data = ReadFile(path);
    if (!data.ok()) return data.status();
    absl::string_view rest = *data;
    size_t offset = 0;
    size_t records = 0;
    while (!rest.empty()) {
      bool truncated = false;
      absl::StatusOr<wal::Frame> frame = wal::DecodeFrame(rest, &truncated);
      absl::Status problem = frame.status();
      if (frame.ok() && frame->record.lsn > snap_lsn &&
          frame->record.lsn != *last_lsn + 1) {
        problem = absl::DataLossError(absl::StrCat(
            "LSN ", frame->record.lsn, " does not follow ", *last_lsn));
      }
      if (!problem.ok()) {
        // A damaged tail is expected after a crash if nothing was written
        // after it; anything else means acknowledged data is damaged.
        bool later_data = false;
        for (size_t j = i + 1; j < segments.size(); ++j) {
          struct stat sb;
          if (stat(SegmentPath(segments[j]).c_str(), &sb) == 0 && sb.st_size > 0) {
            later_data = true;
          }
        }
        if (later_data) {
          return absl::DataLossError(absl::StrCat(
              "store: WAL ", path, ": ", problem.message(), " at offset ",
              offset, ", and later segments hold data; refusing to open "
              "(restore the data dir from a backup)"));
        }
        std::string note = absl::StrCat(
            "store: WAL ", path, ": ", truncated ? "torn" : "corrupt",
            " record at offset ", offset, " (", problem.message(),
            "); kept the ", records, " valid records before it and dropped ",
            rest.size(), " trailing bytes");
        recovery_notes_.push_back(note);
        if (truncate(path.c_str(), static_cast<off_t>(offset)) != 0) {
          return absl::InternalError(Errno("store: cannot truncate", path));
        }
        int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
          fdatasync(fd);
          close(fd);
        }
        // Later segments are empty: remove them so appends continue here.
        for (size_t j = i + 1; j < segments.size(); ++j) {
          unlink(SegmentPath(segments[j]).c_str());
        }
        segments.resize(i + 1);
        break;
      }
      const Record& r = frame->record;
      if (r.lsn > snap_lsn) {
        if (r.type != Record::Type::kTxn && r.type != Record::Type::kLeaseGrant &&
            r.type != Record::Type::kCompact) {
          return absl::DataLossError(absl::StrCat(
              "store: WAL ", path, ": unexpected record type at offset ", offset));
        }
        std::vector<WatchEvent> events = ApplyLocked(r);
        for (WatchEvent& e : events) history_.push_back({r.lsn, std::move(e)});
        *last_lsn = r.lsn;
      }
      ++records;
      offset += frame->size;
      rest.remove_prefix(frame->size);
    }
  }
  TrimHistoryLocked();
  return absl::OkStatus();
}

// ---- Applying records -------------------------------------------------------

std::vector<WatchEvent> EmbeddedStore::ApplyLocked(const Record& r) {
  std::vector<WatchEvent> events;
  switch (r.type) {
    case Record::Type::kTxn: {
      if (!r.ops.empty()) revision_ = std::max(revision_, r.revision);
      for (const KvOp& op : r.ops) {
        auto it = kvs_.find(op.key);
        if (op.type == KvOp::Type::kPut) {
          if (it == kvs_.end()) {
            it = kvs_.emplace(op.key, KeyValue{}).first;
            it->second.key = op.key;
            it->second.create_revision = r.revision;
          } else if (it->second.lease != kNoLease && it->second.lease != op.lease) {
            auto lease = leases_.find(it->second.lease);
            if (lease != leases_.end()) lease->second.keys.erase(op.key);
          }
          KeyValue& kv = it->second;
          kv.value = op.value;
          kv.mod_revision = r.revision;
          kv.version += 1;
          kv.lease = op.lease;
          if (op.lease != kNoLease) leases_[op.lease].keys.insert(op.key);
          WatchEvent e;
          e.type = WatchEvent::Type::kPut;
          e.revision = r.revision;
          e.kv = kv;
          events.push_back(std::move(e));
        } else {
          if (it == kvs_.end()) continue;
          if (it->second.lease != kNoLease) {
            auto lease = leases_.find(it->second.lease);
            if (lease != leases_.end()) lease->second.keys.erase(op.key);
          }
          kvs_.erase(it);
          WatchEvent e;
          e.type = WatchEvent::Type::kDelete;
          e.revision = r.revision;
          e.kv.key = op.key;
          e.kv.mod_revision = r.revision;
          events.push_back(std::move(e));
        }
      }
      for (LeaseId id : r.revoked_leases) leases_.erase(id);
      break;
    }
    case Record::Type::kLeaseGrant: {
      LeaseState& lease = leases_[r.lease_id];
      lease.ttl_ms = r.ttl_ms;
      lease.deadline = absl::Now() + absl::Milliseconds(r.ttl_ms);
      next_lease_id_ = std::max(next_lease_id_, r.lease_id + 1);
      break;
    }
    case Record::Type::kCompact:
      compact_revision_ = std::max(compact_revision_, r.revision);
      TrimHistoryLocked();
      break;
    default:
      break;
  }
  return events;
}

void EmbeddedStore::TrimHistoryLocked() {
  while (history_.size() > options_.history_limit) {
    // Drop the oldest revision as a whole.
    compact_revision_ = history_.front().event.revision + 1;
    while (!history_.empty() && history_.front().event.revision < compact_revision_) {
      history_.pop_front();
    }
  }
  while (!history_.empty() && history_.front().event.revision < compact_revision_) {
    history_.pop_front();
  }
}

uint64_t EmbeddedStore::CommitLocked(Record record) {
  record.lsn = ++appended_lsn_;
  wal::AppendFrame(record, &pending_);
  std::vector<WatchEvent> events = ApplyLocked(record);
  DispatchLocked(events, record.lsn);
  for (WatchEvent& e : events) history_.push_back({record.lsn, std::move(e)});
  TrimHistoryLocked();
  return record.lsn;
}

void EmbeddedStore::DispatchLocked(const std::vector<WatchEvent>& events,
                                   uint64_t lsn) {
  if (events.empty()) return;
  bool any_cancelled = false;
  for (const auto& w : watchers_) {
    absl::MutexLock lock(&w->mu);
    if (w->cancelled || !w->error.ok()) {
      any_cancelled = true;
      continue;
    }
    size_t matched = 0;
    for (const WatchEvent& e : events) {
      if (HasPrefix(e.kv.key, w->prefix) && e.revision >= w->next_revision) ++matched;
    }
    if (matched == 0) continue;
    if (w->queue.size() + matched > options_.watch_queue_limit) {
      // The consumer is too far behind: replace its backlog by a snapshot.
      w->queue.clear();
      WatchEvent resync;
      resync.type = WatchEvent::Type::kResync;
      resync.revision = revision_;
      resync.snapshot = ScanLocked(w->prefix);
      w->queue.push_back({lsn, std::move(resync)});
      w->next_revision = revision_ + 1;
      continue;
    }
    for (const WatchEvent& e : events) {
      if (HasPrefix(e.kv.key, w->prefix) && e.revision >= w->next_revision) {
        w->queue.push_back({lsn, e});
      }
    }
  }
  if (any_cancelled) {
    watchers_.erase(
        std::remove_if(watchers_.begin(), watchers_.end(),
                       [](const std::shared_ptr<WatchState>& w) {
                         absl::MutexLock lock(&w->mu);
                         return w->cancelled || !w->error.ok();
                       }),
        watchers_.end());
  }
}

void EmbeddedStore::NotifyWatchersLocked() {
  for (const auto& w : watchers_) {
    absl::MutexLock lock(&w->mu);
    w->durable_lsn = durable_lsn_;
    if (!fatal_.ok()) w->error = fatal_;
  }
}

// ---- Durability -------------------------------------------------------------

absl::Status EmbeddedStore::WaitDurableLocked(uint64_t lsn) {
  while (durable_lsn_ < lsn && fatal_.ok()) {
    if (flushing_) {
      flushed_cv_.Wait(&mu_);
      continue;
    }
    // Become the flusher for everything queued so far (group commit).
    flushing_ = true;
    std::string batch;
    batch.swap(pending_);
    const uint64_t target = appended_lsn_;
    const int fd = wal_fd_;
    mu_.Unlock();
    absl::Status st = WriteAll(fd, batch);
    if (st.ok() && fdatasync(fd) != 0) {
      st = absl::InternalError(
          absl::StrCat("store: WAL fdatasync failed: ", strerror(errno)));
    }
    mu_.Lock();
    flushing_ = false;
    if (st.ok()) {
      durable_lsn_ = target;
      wal_size_ += batch.size();
    } else {
      fatal_ = absl::InternalError(absl::StrCat(
          st.message(), "; the embedded store stops accepting operations "
          "(restart to recover from the WAL)"));
      Log().Error("WAL write failed", {{"error", std::string(fatal_.message())}});
    }
    NotifyWatchersLocked();
    flushed_cv_.SignalAll();
    if (fatal_.ok()) MaybeRotateLocked(/*force=*/false);
  }
  return fatal_;
}

void EmbeddedStore::MaybeRotateLocked(bool force) {
  if (flushing_ || snapshot_running_ || !fatal_.ok()) return;
  if (!force && wal_size_ < options_.segment_bytes) return;
  flushing_ = true;
  snapshot_running_ = true;
  // Everything up to `target` goes to the old segment and into the snapshot.
  std::string batch;
  batch.swap(pending_);
  const uint64_t target = appended_lsn_;
  SnapshotJob job;
  job.lsn = target;
  job.first_kept_segment = wal_seq_ + 1;
  Record header;
  header.type = Record::Type::kSnapshotHeader;
  header.lsn = target;
  header.revision = revision_;
  header.compact_revision = compact_revision_;
  header.next_lease_id = next_lease_id_;
  wal::AppendFrame(header, &job.frames);
  uint64_t count = 0;
  job.frames.reserve(kvs_.size() * 64);
  for (const auto& [key, kv] : kvs_) {
    Record r;
    r.type = Record::Type::kSnapshotKv;
    r.lsn = target;
    r.kv = kv;
    wal::AppendFrame(r, &job.frames);
    ++count;
  }
  for (const auto& [id, lease] : leases_) {
    Record r;
    r.type = Record::Type::kSnapshotLease;
    r.lsn = target;
    r.lease_id = id;
    r.ttl_ms = lease.ttl_ms;
    wal::AppendFrame(r, &job.frames);
    ++count;
  }
  Record end;
  end.type = Record::Type::kSnapshotEnd;
  end.lsn = target;
  end.count = count;
  wal::AppendFrame(end, &job.frames);

  const int old_fd = wal_fd_;
  const std::string new_path = SegmentPath(wal_seq_ + 1);
  mu_.Unlock();
  absl::Status st = WriteAll(old_fd, batch);
  if (st.ok() && fdatasync(old_fd) != 0) {
    st = absl::InternalError(absl::StrCat("store: WAL fdatasync failed: ", strerror(errno)));
  }
  int new_fd = -1;
  if (st.ok()) {
    new_fd = open(new_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (new_fd < 0) st = absl::InternalError(Errno("store: cannot create WAL", new_path));
  }
  if (st.ok()) st = SyncDir(options_.dir);
  mu_.Lock();
  flushing_ = false;
  if (st.ok()) {
    durable_lsn_ = target;
    close(old_fd);
    wal_fd_ = new_fd;
    wal_seq_ += 1;
    wal_size_ = 0;
    if (snapshot_thread_.joinable()) snapshot_thread_.join();
    snapshot_thread_ = std::thread(
        [this, job = std::move(job)]() mutable {
          log::SetThreadName("store-snapshot");
          WriteSnapshot(std::move(job));
        });
  } else {
    if (new_fd >= 0) close(new_fd);
    snapshot_running_ = false;
    fatal_ = st;
    Log().Error("WAL rotation failed", {{"error", std::string(st.message())}});
  }
  NotifyWatchersLocked();
  flushed_cv_.SignalAll();
}

void EmbeddedStore::WriteSnapshot(SnapshotJob job) {
  const std::string path = SnapshotPath(job.lsn);
  const std::string tmp = path + ".tmp";
  absl::Status st;
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    st = absl::InternalError(Errno("store: cannot create", tmp));
  } else {
    st = WriteAll(fd, job.frames);
    if (st.ok() && fsync(fd) != 0) st = absl::InternalError(Errno("store: fsync", tmp));
    close(fd);
  }
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    st = absl::InternalError(Errno("store: rename", tmp));
  }
  if (st.ok()) st = SyncDir(options_.dir);
  if (st.ok()) {
    // The snapshot covers every older segment and snapshot.
    DIR* d = opendir(options_.dir.c_str());
    while (d != nullptr) {
      struct dirent* e = readdir(d);
      if (e == nullptr) break;
      uint64_t n;
      if ((ParseNumberedName(e->d_name, "wal-", ".log", &n) &&
           n < job.first_kept_segment) ||
          (ParseNumberedName(e->d_name, "snap-", ".snap", &n) && n < job.lsn)) {
        unlink((options_.dir + "/" + e->d_name).c_str());
      }
    }
    if (d != nullptr) closedir(d);
  } else {
    // Not fatal: the old segments are still there, recovery replays them.
    unlink(tmp.c_str());
    Log().Error("snapshot failed", {{"error", std::string(st.message())}});
  }
  absl::MutexLock lock(&mu_);
  snapshot_running_ = false;
  ++snapshots_done_;
  flushed_cv_.SignalAll();
}

absl::Status EmbeddedStore::Snapshot() {
  absl::MutexLock lock(&mu_);
  while (snapshot_running_ || flushing_) flushed_cv_.Wait(&mu_);
  if (!fatal_.ok()) return fatal_;
  const uint64_t done = snapshots_done_;
  MaybeRotateLocked(/*force=*/true);
  if (!fatal_.ok()) return fatal_;
  while (snapshots_done_ == done) flushed_cv_.Wait(&mu_);
  return fatal_;
}

int64_t EmbeddedStore::revision() {
  absl::MutexLock lock(&mu_);
  return revision_;
}

// ---- Store operations -------------------------------------------------------

std::vector<KeyValue> EmbeddedStore::ScanLocked(absl::string_view prefix) {
  std::vector<KeyValue> out;
  for (auto it = kvs_.lower_bound(prefix);
       it != kvs_.end() && HasPrefix(it->first, prefix); ++it) {
    out.push_back(it->second);
  }
  return out;
}

absl::StatusOr<KeyValue> EmbeddedStore::Get(absl::string_view key) {
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  auto it = kvs_.find(key);
  std::optional<KeyValue> kv;
  if (it != kvs_.end()) kv = it->second;
  // Expose only durable state.
  absl::Status st = WaitAllDurableLocked();
  if (!st.ok()) return st;
  if (!kv.has_value()) {
    return absl::NotFoundError(absl::StrCat("store: key '", key, "' not found"));
  }
  return *std::move(kv);
}

absl::StatusOr<ListResult> EmbeddedStore::List(absl::string_view prefix) {
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  ListResult result;
  result.kvs = ScanLocked(prefix);
  result.revision = revision_;
  absl::Status st = WaitAllDurableLocked();
  if (!st.ok()) return st;
  return result;
}

absl::StatusOr<WriteResult> EmbeddedStore::Put(absl::string_view key,
                                               absl::string_view value,
                                               const PutOptions& options) {
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  absl::StatusOr<TxnResult> r =
      TxnLocked({Op::Put(std::string(key), std::string(value), options.condition, options.lease)},
                /*wait_durable=*/!options.defer_durability);
  if (!r.ok()) return r.status();
  return WriteResult{r->revision, r->versions[0]};
}

absl::StatusOr<WriteResult> EmbeddedStore::Delete(absl::string_view key,
                                                  const Condition& condition) {
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  if (condition.kind == Condition::Kind::kAny && kvs_.find(key) == kvs_.end()) {
    absl::Status st = WaitAllDurableLocked();  // the absence must be durable
    if (!st.ok()) return st;
    return absl::NotFoundError(absl::StrCat("store: key '", key, "' not found"));
  }
  absl::StatusOr<TxnResult> r = TxnLocked({Op::Delete(std::string(key), condition)});
  if (!r.ok()) return r.status();
  return WriteResult{r->revision, 0};
}

absl::StatusOr<TxnResult> EmbeddedStore::Txn(const std::vector<Op>& ops) {
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  return TxnLocked(ops);
}

absl::StatusOr<TxnResult> EmbeddedStore::TxnLocked(const std::vector<Op>& ops,
                                                   bool wait_durable) {
  if (ops.size() > kMaxTxnOps) {
    return absl::InvalidArgumentError(absl::StrCat(
        "store: txn has ", ops.size(), " ops; the limit is ", kMaxTxnOps));
  }
  size_t bytes = 0;
  for (const Op& op : ops) bytes += op.key.size() + op.value.size() + 16;
  if (bytes > kMaxRequestBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "store: request of ", bytes, " bytes exceeds the limit of ",
        kMaxRequestBytes, " bytes"));
  }
  absl::flat_hash_set<absl::string_view> written;
  for (const Op& op : ops) {
    if (op.key.empty()) return absl::InvalidArgumentError("store: empty key");
    if (op.type != Op::Type::kCheck && !written.insert(op.key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: key '", op.key, "' is written twice in one txn"));
    }
    if (op.type == Op::Type::kPut && op.lease != kNoLease &&
        leases_.find(op.lease) == leases_.end()) {
      return absl::NotFoundError(absl::StrCat("store: lease ", op.lease, " not found"));
    }
  }
  for (const Op& op : ops) {
    auto it = kvs_.find(op.key);
    int64_t version = it == kvs_.end() ? 0 : it->second.version;
    int64_t mod_revision = it == kvs_.end() ? 0 : it->second.mod_revision;
    if (!op.condition.Matches(version, mod_revision)) {
      // Report only durable state (the conflicting write may be in flight).
      absl::Status st = WaitAllDurableLocked();
      if (!st.ok()) return st;
      return ConflictError(op.key, op.condition, version);
    }
  }
  Record record;
  record.type = Record::Type::kTxn;
  record.revision = revision_ + 1;
  for (const Op& op : ops) {
    if (op.type == Op::Type::kPut) {
      record.ops.push_back({KvOp::Type::kPut, op.key, op.value, op.lease});
    } else if (op.type == Op::Type::kDelete && kvs_.find(op.key) != kvs_.end()) {
      record.ops.push_back({KvOp::Type::kDelete, op.key, "", kNoLease});
    }
  }
  TxnResult result;
  uint64_t lsn = 0;
  if (!record.ops.empty()) lsn = CommitLocked(std::move(record));
  result.revision = revision_;
  for (const Op& op : ops) {
    auto it = kvs_.find(op.key);
    result.versions.push_back(
        op.type == Op::Type::kDelete || it == kvs_.end() ? 0 : it->second.version);
  }
  if (lsn != 0) {
    if (!wait_durable) return result;
    absl::Status st = WaitDurableLocked(lsn);
    if (!st.ok()) return st;
  } else {
    absl::Status st = WaitAllDurableLocked();  // what we compared against
    if (!st.ok()) return st;
  }
  return result;
}

absl::StatusOr<std::unique_ptr<Watcher>> EmbeddedStore::Watch(
    absl::string_view prefix, int64_t from_revision) {
  auto state = std::make_shared<WatchState>();
  state->prefix = std::string(prefix);
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  {
    absl::MutexLock wlock(&state->mu);
    state->durable_lsn = durable_lsn_;
    if (from_revision <= 0) {
      state->next_revision = revision_ + 1;  // only future changes
    } else if (from_revision < compact_revision_) {
      WatchEvent resync;
      resync.type = WatchEvent::Type::kResync;
      resync.revision = revision_;
      resync.snapshot = ScanLocked(prefix);
      state->queue.push_back({appended_lsn_, std::move(resync)});
      state->next_revision = revision_ + 1;
    } else {
      for (const HistoryEvent& h : history_) {
        if (h.event.revision >= from_revision && HasPrefix(h.event.kv.key, prefix)) {
          state->queue.push_back({h.lsn, h.event});
        }
      }
      state->next_revision = std::max(revision_ + 1, from_revision);
      if (state->queue.size() > options_.watch_queue_limit) {
        state->queue.clear();
        WatchEvent resync;
        resync.type = WatchEvent::Type::kResync;
        resync.revision = revision_;
        resync.snapshot = ScanLocked(prefix);
        state->queue.push_back({appended_lsn_, std::move(resync)});
      }
    }
  }
  watchers_.push_back(state);
  return std::unique_ptr<Watcher>(new EmbeddedWatcher(std::move(state)));
}

absl::StatusOr<LeaseId> EmbeddedStore::GrantLease(absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("store: lease TTL must be positive");
  }
  int64_t seconds = absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)));
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  Record record;
  record.type = Record::Type::kLeaseGrant;
  record.lease_id = next_lease_id_;
  record.ttl_ms = seconds * 1000;
  uint64_t lsn = CommitLocked(record);
  absl::Status st = WaitDurableLocked(lsn);
  if (!st.ok()) return st;
  return record.lease_id;
}

absl::Status EmbeddedStore::KeepAlive(LeaseId lease) {
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  auto it = leases_.find(lease);
  if (it == leases_.end()) {
    return absl::NotFoundError(absl::StrCat("store: lease ", lease, " not found"));
  }
  it->second.deadline = absl::Now() + absl::Milliseconds(it->second.ttl_ms);
  return absl::OkStatus();
}

absl::Status EmbeddedStore::RevokeLocked(const std::vector<LeaseId>& leases,
                                         uint64_t* lsn) {
  Record record;
  record.type = Record::Type::kTxn;
  record.revision = revision_ + 1;
  for (LeaseId id : leases) {
    auto it = leases_.find(id);
    if (it == leases_.end()) continue;
    for (const std::string& key : it->second.keys) {
      record.ops.push_back({KvOp::Type::kDelete, key, "", kNoLease});
    }
    record.revoked_leases.push_back(id);
  }
  *lsn = CommitLocked(std::move(record));
  return absl::OkStatus();
}

absl::Status EmbeddedStore::RevokeLease(LeaseId lease) {
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  if (leases_.find(lease) == leases_.end()) {
    return absl::NotFoundError(absl::StrCat("store: lease ", lease, " not found"));
  }
  uint64_t lsn;
  absl::Status st = RevokeLocked({lease}, &lsn);
  if (!st.ok()) return st;
  return WaitDurableLocked(lsn);
}

void EmbeddedStore::LeaseLoop() {
  absl::MutexLock lock(&mu_);
  while (!closing_) {
    mu_.AwaitWithTimeout(absl::Condition(&closing_), options_.lease_check_interval);
    if (closing_ || !fatal_.ok()) continue;
    absl::Time now = absl::Now();
    std::vector<LeaseId> expired;
    for (const auto& [id, lease] : leases_) {
      if (lease.deadline <= now) expired.push_back(id);
    }
    if (expired.empty()) continue;
    uint64_t lsn;
    if (RevokeLocked(expired, &lsn).ok()) WaitDurableLocked(lsn).IgnoreError();
  }
}

absl::Status EmbeddedStore::Compact(int64_t revision) {
  absl::MutexLock lock(&mu_);
  if (!fatal_.ok()) return fatal_;
  if (revision > revision_) {
    return absl::OutOfRangeError(absl::StrCat(
        "store: cannot compact at future revision ", revision, " (current ",
        revision_, ")"));
  }
  if (revision <= compact_revision_) return absl::OkStatus();  // done already
  Record record;
  record.type = Record::Type::kCompact;
  record.revision = revision;
  return WaitDurableLocked(CommitLocked(record));
}

}  // namespace vpn::store
