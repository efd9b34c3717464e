// The SqliteStore's journal of desired states and run records (see sqlite_store.hpp).
//
// A command to 100,000 flows set 100,000 desired states, then recorded 100,000 runs: each an
// UPDATE of a row by its key, about a microsecond and a half each, on the command's path and on
// the two cores its flows' hooks run on. Here each such batch is one row of `flow_journal`,
// its records packed in a blob: one INSERT, as durable once committed. A thread folds the
// journal into `flows` and `flow_runs` later, in slices, while the store is quiet; loadAll()
// reads the tables and then the journal on top of them, in order.
//
// Every record holds values, not changes, and a flow's incarnation is never reused (seq is
// AUTOINCREMENT): folding a record twice, or folding an older one after a newer one was
// journaled, changes nothing loadAll() returns. A record of a deleted incarnation matches no
// row and is dropped with its batch.
#include <sqlite3.h>

#include <algorithm>
#include <string_view>

#include "core/model/json.hpp"
#include "core/store/sqlite_statement.hpp"
#include "core/store/sqlite_store.hpp"

namespace sluice {
namespace {

constexpr int kDesiredBatch = 1;
constexpr int kRunsBatch = 2;
// Records folded in one transaction: a few milliseconds under the store's lock.
constexpr size_t kFoldSlice = 4000;
// The journal is folded once nothing was journaled for this long, or its oldest batch is this
// old: a store written without a pause (schedules firing every second) is folded too.
constexpr auto kFoldQuiet = std::chrono::milliseconds(200);
constexpr auto kFoldAtLatest = std::chrono::seconds(2);

void put64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void putText(std::string& out, const std::string& s) {
  const auto n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  out += s;
}

// Reads a batch's blob; ok() turns false at the first record that runs past its end.
class Reader {
 public:
  explicit Reader(std::string_view body, size_t at = 0) : body_(body), at_(at) {}
  bool more() const { return ok_ && at_ < body_.size(); }
  bool ok() const { return ok_; }
  size_t at() const { return at_; }
  uint64_t u64() { return number(8); }
  std::string_view text() {
    const auto n = static_cast<size_t>(number(4));
    if (!ok_ || body_.size() - at_ < n) {
      ok_ = false;
      return {};
    }
    auto s = body_.substr(at_, n);
    at_ += n;
    return s;
  }
  uint8_t byte() { return static_cast<uint8_t>(number(1)); }

 private:
  uint64_t number(size_t bytes) {
    if (!ok_ || body_.size() - at_ < bytes) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) {
      v |= static_cast<uint64_t>(static_cast<unsigned char>(body_[at_ + i])) << (8 * i);
    }
    at_ += bytes;
    return v;
  }

  std::string_view body_;
  size_t at_;
  bool ok_ = true;
};

constexpr uint8_t kHasRun = 1;
constexpr uint8_t kHasVersion = 2;

// One run record of a batch: what RunRecordRow carries, by incarnation.
struct RunEntry {
  Incarnation seq = 0;
  uint8_t flags = 0;
  uint64_t runs = 0;
  std::string_view last_run;
  std::string_view version;
};

bool readRun(Reader& r, RunEntry* e) {
  e->seq = r.u64();
  e->flags = r.byte();
  if ((e->flags & kHasRun) != 0) {
    e->runs = r.u64();
    e->last_run = r.text();
  }
  if ((e->flags & kHasVersion) != 0) e->version = r.text();
  return r.ok();
}

std::string_view blobOf(const Statement& st, int col) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(st.get(), col));
  return p == nullptr ? std::string_view()
                      : std::string_view(p, sqlite3_column_bytes(st.get(), col));
}

}  // namespace

std::string SqliteStore::encodeRuns(const std::vector<RunRecordRow>& rows) {
  std::string body;
  body.reserve(rows.size() * 64);
  for (const auto& r : rows) {
    const uint8_t flags = (r.has_run ? kHasRun : 0) | (r.type_version.empty() ? 0 : kHasVersion);
    if (flags == 0) continue;
    put64(body, r.incarnation);
    body += static_cast<char>(flags);
    if (r.has_run) {
      put64(body, r.runs);
      putText(body, r.last_run);
    }
    if (!r.type_version.empty()) putText(body, r.type_version);
  }
  return body;
}

bool SqliteStore::appendJournal(int kind, std::string_view desired, const std::string& body) {
  if (body.empty()) return true;
  Statement st(db_, "INSERT INTO flow_journal (kind, desired, body) VALUES (?, ?, ?)");
  if (!st.ok()) return false;
  sqlite3_bind_int(st.get(), 1, kind);
  sqlite3_bind_text(st.get(), 2, desired.data(), static_cast<int>(desired.size()), SQLITE_STATIC);
  sqlite3_bind_blob(st.get(), 3, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
  return st.step() == SQLITE_DONE;
}

void SqliteStore::journaled(bool ours) {
  {
    std::lock_guard lock(fold_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!fold_due_) first_unfolded_at_ = now;
    fold_due_ = true;
    last_journaled_at_ = now;
    journaled_ = journaled_ || ours;
  }
  fold_cv_.notify_one();
}

Result<Done> SqliteStore::setRunRecords(const std::vector<RunRecordRow>& rows) {
  const std::string body = encodeRuns(rows);
  if (body.empty()) return Done{};
  std::lock_guard lock(mu_);
  auto done = inTransaction("cannot record the flows' runs", nullptr,
                            [&] { return appendJournal(kRunsBatch, "", body); });
  if (done.ok()) journaled();
  return done;
}

Result<Done> SqliteStore::setDesired(const std::vector<DesiredRow>& states, AuditRecord* audit) {
  if (states.empty() && audit == nullptr) return Done{};
  // A batch per desired state, of incarnations: a row given by id only is looked up here.
  std::string by_seq[kDesiredCount], by_id[kDesiredCount];
  for (const auto& row : states) {
    const auto d = static_cast<size_t>(row.desired);
    if (row.incarnation != 0) {
      put64(by_seq[d], row.incarnation);
    } else {
      std::string& list = by_id[d];
      list += list.empty() ? '[' : ',';
      json::appendString(list, row.id);
    }
  }
  for (auto& list : by_id) {
    if (!list.empty()) list += ']';
  }
  std::lock_guard lock(mu_);
  auto done = inTransaction("cannot set desired states", audit, [&] {
    Statement ids(db_, "SELECT seq FROM flows WHERE flow_id IN (SELECT value FROM json_each(?))");
    bool ok = ids.ok();
    for (size_t d = 0; ok && d < kDesiredCount; ++d) {
      if (!by_id[d].empty()) {
        ids.bindStatic(1, by_id[d]);
        int rc;
        while ((rc = ids.step()) == SQLITE_ROW)
          put64(by_seq[d], static_cast<uint64_t>(ids.int64(0)));
        ok = rc == SQLITE_DONE;
        ids.reset();
      }
      ok = ok && appendJournal(kDesiredBatch, toString(static_cast<Desired>(d)), by_seq[d]);
    }
    return ok;
  });
  if (done.ok() && !states.empty()) journaled();
  return done;
}

bool SqliteStore::applyJournal(std::vector<StoredFlow>& flows) {
  // `flows` is in the order of seq (loadAll)
  auto find = [&](Incarnation seq) -> StoredFlow* {
    auto it =
        std::lower_bound(flows.begin(), flows.end(), seq,
                         [](const StoredFlow& f, Incarnation s) { return f.incarnation < s; });
    return it != flows.end() && it->incarnation == seq ? &*it : nullptr;
  };
  Statement st(db_, "SELECT kind, desired, body FROM flow_journal ORDER BY n");
  if (!st.ok()) return false;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    Reader r(blobOf(st, 2));
    if (st.int64(0) == kDesiredBatch) {
      const auto desired = desiredFromString(st.text(1));
      while (desired && r.more()) {
        const auto seq = r.u64();
        if (auto* f = r.ok() ? find(seq) : nullptr) f->desired = *desired;
      }
    } else {
      RunEntry e;
      while (r.more() && readRun(r, &e)) {
        auto* f = find(e.seq);
        if (f == nullptr) continue;
        if ((e.flags & kHasRun) != 0) {
          f->runs = e.runs;
          f->last_run = std::string(e.last_run);
        }
        if ((e.flags & kHasVersion) != 0) f->type_version = std::string(e.version);
      }
    }
  }
  return rc == SQLITE_DONE;
}

SqliteStore::FoldStep SqliteStore::foldSlice() {
  std::lock_guard lock(mu_);
  bool emptied = false;
  auto done = inTransaction("cannot fold the journal", nullptr, [&] {
    // The oldest batch, unless another process (the token CLI closing) folded it meanwhile.
    Statement oldest(db_, "SELECT n, kind, desired, body FROM flow_journal ORDER BY n LIMIT 1");
    if (!oldest.ok()) return false;
    const int rc = oldest.step();
    if (rc == SQLITE_DONE) {
      emptied = true;
      fold_n_ = 0;
      return true;
    }
    if (rc != SQLITE_ROW) return false;
    if (oldest.int64(0) != fold_n_) {
      fold_n_ = oldest.int64(0);
      fold_at_ = 0;
    }
    const std::string_view body = blobOf(oldest, 3);
    Reader r(body, fold_at_);
    size_t n = 0;
    if (oldest.int64(1) == kDesiredBatch) {
      std::string list;
      while (n < kFoldSlice && r.more()) {
        const auto seq = r.u64();
        if (!r.ok()) break;
        list += list.empty() ? '[' : ',';
        list += std::to_string(seq);
        ++n;
      }
      if (!list.empty()) {
        list += ']';
        Statement up(db_,
                     "UPDATE flows SET desired = ? WHERE seq IN (SELECT value FROM json_each(?))");
        if (!up.ok()) return false;
        up.bind(1, oldest.text(2));
        up.bindStatic(2, list);
        if (up.step() != SQLITE_DONE) return false;
      }
    } else {
      // What a record does not carry is bound as NULL and keeps the stored value.
      Statement up(db_,
                   "UPDATE flow_runs SET runs = coalesce(?1, runs), last_run = coalesce(?2, "
                   "last_run), type_version = coalesce(?3, type_version) WHERE seq = ?4");
      if (!up.ok()) return false;
      RunEntry e;
      while (n < kFoldSlice && r.more() && readRun(r, &e)) {
        if ((e.flags & kHasRun) != 0) {
          up.bindInt(1, e.runs);
          sqlite3_bind_text(up.get(), 2, e.last_run.data(), static_cast<int>(e.last_run.size()),
                            SQLITE_STATIC);
        }
        if ((e.flags & kHasVersion) != 0) {
          sqlite3_bind_text(up.get(), 3, e.version.data(), static_cast<int>(e.version.size()),
                            SQLITE_STATIC);
        }
        up.bindInt(4, e.seq);
        if (up.step() != SQLITE_DONE) return false;
        up.reset();
        ++n;
      }
    }
    fold_at_ = r.at();
    const bool more = r.more();
    oldest.reset();  // done with its blob
    if (more) return true;
    // Folded to its end (a damaged tail is dropped: nothing could read it).
    Statement drop(db_, "DELETE FROM flow_journal WHERE n = ?");
    if (!drop.ok()) return false;
    drop.bindInt64(1, fold_n_);
    fold_n_ = 0;
    return drop.step() == SQLITE_DONE;
  });
  if (!done.ok()) {
    fold_n_ = 0;  // read again from the start of the oldest batch next time
    return FoldStep::kFailed;
  }
  return emptied ? FoldStep::kEmpty : FoldStep::kMore;
}

void SqliteStore::foldLoop() {
  std::unique_lock lock(fold_mu_);
  while (!fold_stop_) {
    if (!fold_due_) {
      fold_cv_.wait(lock);
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto at = std::min(last_journaled_at_ + kFoldQuiet, first_unfolded_at_ + kFoldAtLatest);
    if (now < at) {
      fold_cv_.wait_until(lock, at);
      continue;
    }
    fold_due_ = false;  // a batch journaled from here on makes it due again
    lock.unlock();
    FoldStep step;
    while ((step = foldSlice()) == FoldStep::kMore) {
      // The store's other users get the lock between slices.
      std::unique_lock wait(fold_mu_);
      if (fold_cv_.wait_for(wait, std::chrono::milliseconds(1), [this] { return fold_stop_; })) {
        break;
      }
    }
    lock.lock();
    if (step == FoldStep::kFailed && !fold_stop_) {
      fold_due_ = true;  // a full disk, say: tried again later
      first_unfolded_at_ = std::chrono::steady_clock::now();
      fold_cv_.wait_for(lock, kFoldAtLatest);
    }
  }
}

void SqliteStore::stopFolding() {
  if (!folder_.joinable()) return;
  bool journaled = false;
  {
    std::lock_guard lock(fold_mu_);
    fold_stop_ = true;
    journaled = journaled_;
  }
  fold_cv_.notify_all();
  folder_.join();
  // What this process journaled is folded before it closes: the tables alone then hold the
  // state, for a reader of the file. A crash leaves the journal to the next loadAll().
  if (!journaled) return;
  for (int failures = 0; failures < 3;) {
    const auto step = foldSlice();
    if (step == FoldStep::kEmpty) break;
    if (step == FoldStep::kFailed) ++failures;
  }
}

}  // namespace sluice
