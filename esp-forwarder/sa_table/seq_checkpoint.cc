#include "esp-forwarder/sa_table/seq_checkpoint.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/log/log.h"

namespace vpn::forwarder {
namespace {

const log::Logger& Log() {
  static const log::Logger* logger = new log::Logger("esp-forwarder");
  return *logger;
}

constexpr size_t kOpsPerTxn = 128;  // store::kMaxTxnOps
constexpr int kAttempts = 4;        // compare-on-version retries per key
constexpr uint64_t kMax32 = 0xffffffffull;

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// A decimal as absl::StrCat writes it: digits only, no sign, no leading zero.
bool ConsumeCanonicalDecimal(absl::string_view* text, uint64_t* out) {
  size_t digits = 0;
  while (digits < text->size() && absl::ascii_isdigit((*text)[digits])) ++digits;
  if (digits == 0 || (digits > 1 && (*text)[0] == '0')) return false;
  if (!absl::SimpleAtoi(text->substr(0, digits), out)) return false;  // overflow
  text->remove_prefix(digits);
  return true;
}

// Outbound numbers from here on count as spent: an SA at or past it sends
// no more (seq_exhausted drops) until it is rekeyed. No counter gets here;
// an unreadable checkpoint is read as this mark, since any number below it
// may have been used. (Jumping there with ESN would not help: the receiver
// infers the high 32 bits from its window, RFC 4303 Appendix A.)
constexpr uint64_t kSpentMark = uint64_t{1} << 63;

// Inbound is not known either; 0 keeps the SA receiving.
SeqMarks UnreadableMarks() {
  SeqMarks marks;
  marks.outbound_reserved = kSpentMark;
  return marks;
}

}  // namespace

bool SpiFromSeqKey(absl::string_view key, uint32_t* spi) {
  if (!absl::ConsumePrefix(&key, kSeqPrefix) || key.size() != 8 ||
      !std::all_of(key.begin(), key.end(), IsLowerHex)) {
    return false;
  }
  return absl::SimpleHexAtoi(key, spi);
}

std::string SeqKey(uint32_t inbound_spi) {
  return absl::StrFormat("%s%08x", kSeqPrefix, inbound_spi);
}

std::string EncodeSeqMarks(const SeqMarks& marks) {
  return absl::StrCat("out=", marks.outbound_reserved, " in=", marks.inbound_highest);
}

absl::optional<SeqMarks> DecodeSeqMarks(absl::string_view value) {
  SeqMarks marks;
  if (!absl::ConsumePrefix(&value, "out=") ||
      !ConsumeCanonicalDecimal(&value, &marks.outbound_reserved) ||
      !absl::ConsumePrefix(&value, " in=") ||
      !ConsumeCanonicalDecimal(&value, &marks.inbound_highest) || !value.empty()) {
    return absl::nullopt;
  }
  return marks;
}

// Wakes the writer; called by data-plane workers (an uncontended lock, no
// allocation), at most once per SA per checkpoint.
class SeqCheckpointer::Signal : public esp::CheckpointWaker {
 public:
  void Wake() override {
    absl::MutexLock lock(&mu_);
    woken_ = true;
  }
  void Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&woken_), timeout);
    woken_ = false;
  }

 private:
  absl::Mutex mu_;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
};

SeqCheckpointer::SeqCheckpointer(std::shared_ptr<store::Store> store,
                                 prometheus::Registry& registry, SeqCheckpointOptions options)
    : store_(std::move(store)),
      options_(options),
      signal_(std::make_shared<Signal>()),
      writes_(prometheus::BuildCounter()
                  .Name("forwarder_seq_checkpoint_writes_total")
                  .Help("Writes of CHILD SA sequence-number checkpoints (seq/ keys: outbound "
                        "lease, inbound high-water mark), by result.")
                  .Register(registry)),
      writes_ok_(writes_.Add({{"result", "ok"}})),
      writes_failed_(writes_.Add({{"result", "error"}})),
      restored_(prometheus::BuildCounter()
                    .Name("forwarder_seq_checkpoint_restored_total")
                    .Help("CHILD SAs installed from an existing checkpoint (a restart): outbound "
                          "numbers resume above the lease, the replay window starts at the mark.")
                    .Register(registry)
                    .Add({})) {}

SeqCheckpointer::~SeqCheckpointer() { Stop(); }

void SeqCheckpointer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    log::SetThreadName("fwd-seq");
    Run();
  });
}

void SeqCheckpointer::Stop() {
  if (stopping_.exchange(true)) return;
  signal_->Wake();
  if (thread_.joinable()) thread_.join();
  if (options_.flush_on_stop) Pass(/*force_inbound=*/true);  // no inbound gap after a clean stop
}

void SeqCheckpointer::Run() {
  while (!stopping_.load()) {
    signal_->Wait(options_.tick);
    if (stopping_.load()) break;
    if (!Pass(/*force_inbound=*/false)) {
      // The store failed: retry after a tick, not on every wake-up.
      absl::SleepFor(options_.tick);
    }
  }
}

void SeqCheckpointer::FlushForTest() { Pass(/*force_inbound=*/true); }

absl::optional<SeqMarks> SeqCheckpointer::Persisted(uint32_t inbound_spi) {
  absl::StatusOr<store::KeyValue> kv = store_->Get(SeqKey(inbound_spi));
  if (!kv.ok()) return absl::nullopt;
  return DecodeSeqMarks(kv->value);
}

void SeqCheckpointer::Install(const std::vector<std::shared_ptr<esp::EspSa>>& sas,
                              bool announced) {
  if (sas.empty()) return;
  const uint64_t implicit = ImplicitReservation();
  if (announced) {
    for (const auto& sa : sas) {
      sa->RestoreReplay(0);
      sa->AttachLease(signal_, 1);
      sa->GrantSequences(0, implicit, implicit - options_.outbound_step);
      absl::MutexLock lock(&mu_);
      Tracked& t = tracked_[sa->inbound_spi()];
      t = Tracked();
      t.sa = sa;
      t.persisted.outbound_reserved = implicit;
      t.version = 0;  // no key yet: the first write creates it
      t.last_inbound_write = absl::Now();
    }
    return;
  }
  absl::MutexLock writing(&write_mu_);
  // Read what a previous run (or another forwarder) persisted.
  absl::flat_hash_map<uint32_t, store::KeyValue> listed;
  bool have_list = false;
  if (sas.size() > 8) {
    absl::StatusOr<store::ListResult> list = store_->List(kSeqPrefix);
    if (list.ok()) {
      have_list = true;
      for (store::KeyValue& kv : list->kvs) {
        uint32_t spi = 0;
        if (SpiFromSeqKey(kv.key, &spi)) listed[spi] = std::move(kv);
      }
    }
  }
  std::vector<Plan> plans;
  plans.reserve(sas.size());
  for (const auto& sa : sas) {
    Plan plan;
    plan.spi = sa->inbound_spi();
    plan.sa = sa;
    plan.outbound = true;
    absl::optional<store::KeyValue> kv;
    if (have_list) {
      auto it = listed.find(plan.spi);
      plan.version = 0;
      if (it != listed.end()) kv = it->second;
    } else {
      absl::StatusOr<store::KeyValue> got = store_->Get(SeqKey(plan.spi));
      if (got.ok()) {
        kv = std::move(*got);
      } else if (absl::IsNotFound(got.status())) {
        plan.version = 0;
      } else {
        Log().Warning("cannot read a sequence-number checkpoint; retrying",
                      {{"key", SeqKey(plan.spi)}, {"error", got.status().ToString()}});
      }
    }
    // No key: the forwarder it was announced to may be using the first
    // two blocks unwritten.
    if (plan.version == 0) plan.known.outbound_reserved = implicit;
    if (kv.has_value()) {
      plan.version = kv->version;
      absl::optional<SeqMarks> marks = DecodeSeqMarks(kv->value);
      if (marks.has_value()) {
        plan.known = *marks;
        restored_.Increment();
      } else {
        plan.known = UnreadableMarks();
        Log().Error("sequence-number checkpoint does not parse; its outbound numbers count as "
                    "spent (the SA sends nothing more until it is rekeyed)",
                    {{"key", kv->key}});
      }
    }
    // Before the SA is visible: seed the replay window, and let outbound
    // continue above everything reserved before; nothing is granted until
    // the first block is persisted (Write below).
    sa->RestoreReplay(plan.known.inbound_highest);
    sa->AttachLease(signal_, plan.known.outbound_reserved);
    plans.push_back(std::move(plan));
  }
  Write(plans, /*install=*/true);
}

void SeqCheckpointer::Remove(uint32_t inbound_spi) {
  absl::MutexLock lock(&mu_);
  auto it = tracked_.find(inbound_spi);
  // An announced SA whose key was never written leaves nothing to delete.
  const bool unwritten = it != tracked_.end() && it->second.version == 0;
  if (it != tracked_.end()) tracked_.erase(it);
  if (unwritten) {
    removed_unwritten_.insert(inbound_spi);  // unless a pass is writing it now
    return;
  }
  deletes_.push_back(inbound_spi);
  signal_->Wake();
}

void SeqCheckpointer::Untrack(uint32_t inbound_spi) {
  absl::MutexLock lock(&mu_);
  tracked_.erase(inbound_spi);
}

void SeqCheckpointer::Retain(const absl::flat_hash_set<uint32_t>& present, int64_t revision) {
  absl::MutexLock lock(&mu_);
  absl::erase_if(tracked_, [&](const auto& kv) { return !present.contains(kv.first); });
  gc_ = Garbage{present, revision};
  signal_->Wake();
}

void SeqCheckpointer::Compute(Plan& plan, const SeqMarks& persisted) const {
  esp::EspSa& sa = *plan.sa;
  // A mark read late (the first read failed) still applies: numbers at or
  // below it were seen before.
  if (persisted.inbound_highest > sa.inbound_highest()) sa.RestoreReplay(persisted.inbound_highest);
  plan.write.inbound_highest = std::max(persisted.inbound_highest, sa.inbound_highest());
  plan.write.outbound_reserved = std::max(persisted.outbound_reserved, plan.known.outbound_reserved);
  // Someone else reserved past what we know: our next block starts above.
  plan.floor = persisted.outbound_reserved > plan.known.outbound_reserved
                   ? persisted.outbound_reserved
                   : 0;
  if (!plan.outbound) return;
  // The next block starts at our counter (or above someone else's).
  const uint64_t base = std::max(sa.next_sequence(), plan.floor);
  if (base >= kSpentMark || (!sa.params().algorithms.esn && base > kMax32)) {
    // Exhausted or spent: nothing left to reserve; seq_exhausted drops.
    plan.outbound = false;
    return;
  }
  const uint64_t step = options_.outbound_step;
  // At least `step` numbers above the counter; never below what is persisted.
  plan.write.outbound_reserved =
      std::max((base / step + 2) * step, plan.write.outbound_reserved);
}

void SeqCheckpointer::Apply(const Plan& plan, int64_t version, bool install) {
  writes_ok_.Increment();
  if (plan.outbound) {
    plan.sa->GrantSequences(plan.floor, plan.write.outbound_reserved,
                            plan.write.outbound_reserved - options_.outbound_step);
  }
  plan.sa->SetInboundCheckpointAt(plan.write.inbound_highest + options_.inbound_step);
  absl::MutexLock lock(&mu_);
  auto it = tracked_.find(plan.spi);
  if (install) {
    Tracked& t = tracked_[plan.spi];
    t = Tracked();
    t.sa = plan.sa;
    t.persisted = plan.write;
    t.version = version;
    t.last_inbound_write = absl::Now();
  } else if (it != tracked_.end() && it->second.sa == plan.sa) {
    Tracked& t = it->second;
    if (plan.write.inbound_highest != t.persisted.inbound_highest) {
      t.last_inbound_write = absl::Now();
    }
    t.persisted = plan.write;
    t.version = version;
  } else if (it == tracked_.end() && removed_unwritten_.erase(plan.spi) > 0) {
    // Removed while this first write was under way: the key goes too.
    deletes_.push_back(plan.spi);
  }
}

void SeqCheckpointer::Failed(const Plan& plan, bool install) {
  writes_failed_.Increment();
  {
    absl::MutexLock lock(&mu_);
    if (install) {
      Tracked& t = tracked_[plan.spi];
      t = Tracked();
      t.sa = plan.sa;
      t.persisted = plan.known;
      t.version = -1;
    } else if (auto it = tracked_.find(plan.spi); it != tracked_.end() && it->second.sa == plan.sa) {
      it->second.version = -1;  // read again before the next write
    }
  }
  // Ask again; the writer retries after a tick.
  if (plan.outbound) plan.sa->RequestSequences();
}

bool SeqCheckpointer::WriteOne(Plan& plan, bool install) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    SeqMarks persisted = plan.known;
    if (plan.version < 0) {
      absl::StatusOr<store::KeyValue> kv = store_->Get(SeqKey(plan.spi));
      if (kv.ok()) {
        plan.version = kv->version;
        persisted = DecodeSeqMarks(kv->value).value_or(UnreadableMarks());
      } else if (absl::IsNotFound(kv.status())) {
        plan.version = 0;
        persisted = SeqMarks();
        persisted.outbound_reserved = ImplicitReservation();
        if (!install) {
          // Deleted under us: only recreate it for an SA still installed.
          absl::MutexLock lock(&mu_);
          auto it = tracked_.find(plan.spi);
          if (it == tracked_.end() || it->second.sa != plan.sa) return true;
        }
      } else {
        Log().Warning("cannot read a sequence-number checkpoint",
                      {{"key", SeqKey(plan.spi)}, {"error", kv.status().ToString()}});
        break;
      }
    }
    Compute(plan, persisted);
    store::PutOptions put;
    put.condition = store::Condition::VersionIs(plan.version);
    absl::StatusOr<store::WriteResult> written =
        store_->Put(SeqKey(plan.spi), EncodeSeqMarks(plan.write), put);
    if (written.ok()) {
      plan.known = plan.write;
      Apply(plan, written->version, install);
      return true;
    }
    if (!store::IsConflict(written.status())) {
      Log().Warning("cannot write a sequence-number checkpoint",
                    {{"key", SeqKey(plan.spi)}, {"error", written.status().ToString()}});
      break;
    }
    plan.version = -1;  // someone else wrote it: read, merge, retry
  }
  Failed(plan, install);
  return false;
}

void SeqCheckpointer::Write(std::vector<Plan>& plans, bool install) {
  for (size_t begin = 0; begin < plans.size(); begin += kOpsPerTxn) {
    const size_t end = std::min(plans.size(), begin + kOpsPerTxn);
    bool batch = end - begin > 1;
    std::vector<store::Op> ops;
    for (size_t i = begin; i < end && batch; ++i) {
      if (plans[i].version < 0) {
        batch = false;
        break;
      }
      Compute(plans[i], plans[i].known);
      ops.push_back(store::Op::Put(SeqKey(plans[i].spi), EncodeSeqMarks(plans[i].write),
                                   store::Condition::VersionIs(plans[i].version)));
    }
    if (batch) {
      absl::StatusOr<store::TxnResult> result = store_->Txn(ops);
      if (result.ok()) {
        for (size_t i = begin; i < end; ++i) {
          plans[i].known = plans[i].write;
          Apply(plans[i], result->versions[i - begin], install);
        }
        continue;
      }
      // A conflict (another writer) or an error: key by key, read-merge-write.
      for (size_t i = begin; i < end; ++i) plans[i].version = -1;
    }
    for (size_t i = begin; i < end; ++i) WriteOne(plans[i], install);
  }
}

bool SeqCheckpointer::Pass(bool force_inbound) {
  absl::MutexLock writing(&write_mu_);
  const absl::Time now = absl::Now();
  std::vector<uint32_t> deletes;
  absl::optional<Garbage> gc;
  std::vector<Plan> plans;
  {
    absl::MutexLock lock(&mu_);
    deletes.swap(deletes_);
    // Removed before this pass: no write of theirs can be under way.
    removed_unwritten_.clear();
    gc.swap(gc_);
    for (auto& [spi, t] : tracked_) {
      const bool outbound = t.sa->TakeSequenceRequest();
      const bool inbound_asked = t.sa->TakeInboundRequest();
      const bool inbound = t.sa->inbound_highest() > t.persisted.inbound_highest &&
                           (inbound_asked || force_inbound ||
                            now - t.last_inbound_write >= options_.inbound_interval);
      if (!outbound && !inbound) continue;
      Plan plan;
      plan.spi = spi;
      plan.sa = t.sa;
      plan.outbound = outbound;
      plan.known = t.persisted;
      plan.version = t.version;
      plans.push_back(std::move(plan));
    }
  }
  bool ok = true;
  for (size_t begin = 0; begin < deletes.size(); begin += kOpsPerTxn) {
    const size_t end = std::min(deletes.size(), begin + kOpsPerTxn);
    std::vector<store::Op> ops;
    for (size_t i = begin; i < end; ++i) ops.push_back(store::Op::Delete(SeqKey(deletes[i])));
    absl::StatusOr<store::TxnResult> deleted = store_->Txn(ops);
    if (!deleted.ok()) {
      ok = false;
      Log().Warning("cannot delete sequence-number checkpoints; retrying",
                    {{"keys", std::to_string(end - begin)},
                     {"error", deleted.status().ToString()}});
      absl::MutexLock lock(&mu_);
      deletes_.insert(deletes_.end(), deletes.begin() + begin, deletes.begin() + end);
    }
  }
  if (gc.has_value()) CollectGarbage(*gc);
  const uint64_t failed_before = writes_failed_.Value();
  Write(plans, /*install=*/false);
  return ok && writes_failed_.Value() == failed_before;
}

void SeqCheckpointer::CollectGarbage(const Garbage& garbage) {
  absl::StatusOr<store::ListResult> list = store_->List(kSeqPrefix);
  if (!list.ok()) return;
  for (const store::KeyValue& kv : list->kvs) {
    uint32_t spi = 0;
    // A key created after the re-list may belong to a CHILD SA created
    // since (its key follows its record): left alone.
    if (!SpiFromSeqKey(kv.key, &spi) || garbage.present.contains(spi) ||
        kv.create_revision > garbage.revision) {
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      if (tracked_.contains(spi)) continue;  // installed since the re-list
    }
    // Compare-on-version: a key another forwarder is writing stays.
    absl::StatusOr<store::WriteResult> deleted =
        store_->Delete(kv.key, store::Condition::VersionIs(kv.version));
    if (deleted.ok()) {
      Log().Info("sequence-number checkpoint of a deleted CHILD SA removed", {{"key", kv.key}});
    }
  }
}

}  // namespace vpn::forwarder
