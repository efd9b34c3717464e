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
// A batch's blob, at most (a multiple of 8: a desired batch is cut between incarnations), so
// that no row nears SQLite's limits however many rows one write carries.
constexpr size_t kBatchBytes = size_t{4} << 20;
// Closing folds what this process journaled for this long at most; the next open folds the rest.
constexpr auto kCloseFoldFor = std::chrono::seconds(5);
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

std::vector<std::string> SqliteStore::encodeRuns(const std::vector<RunRecordRow>& rows) {
  std::vector<std::string> bodies;
  for (const auto& r : rows) {
    const uint8_t flags = (r.has_run ? kHasRun : 0) | (r.type_version.empty() ? 0 : kHasVersion);
    if (flags == 0) continue;
    if (bodies.empty() || bodies.back().size() >= kBatchBytes) {
      bodies.emplace_back();
      bodies.back().reserve(std::min(rows.size() * 64, kBatchBytes + 4096));
    }
    std::string& body = bodies.back();
    put64(body, r.incarnation);
    body += static_cast<char>(flags);
    if (r.has_run) {
      put64(body, r.runs);
      putText(body, r.last_run);
    }
    if (!r.type_version.empty()) putText(body, r.type_version);
  }
  return bodies;
}

bool SqliteStore::appendJournal(int kind, std::string_view desired, std::string_view body) {
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
    ++batches_journaled_;
    journaled_ = journaled_ || ours;
  }
  fold_cv_.notify_one();
}

Result<Done> SqliteStore::setRunRecords(const std::vector<RunRecordRow>& rows) {
  const auto bodies = encodeRuns(rows);
  if (bodies.empty()) return Done{};
  std::lock_guard lock(mu_);
  auto done = inTransaction("cannot record the flows' runs", nullptr, [&] {
    for (const auto& body : bodies) {
      if (!appendJournal(kRunsBatch, "", body)) return false;
    }
    return true;
  });
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
      const std::string_view seqs = by_seq[d];
      for (size_t at = 0; ok && at < seqs.size(); at += kBatchBytes) {
        ok = appendJournal(kDesiredBatch, toString(static_cast<Desired>(d)),
                           seqs.substr(at, kBatchBytes));
      }
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
    // From the oldest batch on, up to a slice of records: a command's run records come in
    // hundreds of small batches (one per group commit).
    Statement batches(db_, "SELECT n, kind, desired, body FROM flow_journal ORDER BY n");
    Statement desired(db_,
                      "UPDATE flows SET desired = ? WHERE seq IN (SELECT value FROM json_each(?))");
    // What a record does not carry is bound as NULL and keeps the stored value.
    Statement runs(db_,
                   "UPDATE flow_runs SET runs = coalesce(?1, runs), last_run = coalesce(?2, "
                   "last_run), type_version = coalesce(?3, type_version) WHERE seq = ?4");
    if (!batches.ok() || !desired.ok() || !runs.ok()) return false;
    // Where the last slice stopped, by this process or another (the cursor is committed with
    // the slice): in the oldest batch, or nowhere when that batch is gone.
    Statement cursor(db_, "SELECT n, at FROM flow_journal_cursor WHERE one = 1");
    if (!cursor.ok()) return false;
    int64_t cursor_n = 0;
    size_t cursor_at = 0;
    if (cursor.step() == SQLITE_ROW) {
      cursor_n = cursor.int64(0);
      cursor_at = static_cast<size_t>(cursor.int64(1));
    }
    cursor.reset();
    size_t n = 0;
    int64_t folded_through = 0;  // every batch up to this one is folded
    int64_t stopped_in = 0;      // the batch the slice filled up in, and where
    size_t stopped_at = 0;
    int rc = SQLITE_ROW;
    while (n < kFoldSlice && (rc = batches.step()) == SQLITE_ROW) {
      const int64_t batch = batches.int64(0);
      Reader r(blobOf(batches, 3), batch == cursor_n ? cursor_at : 0);
      if (batches.int64(1) == kDesiredBatch) {
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
          desired.bind(1, batches.text(2));
          desired.bindStatic(2, list);
          if (desired.step() != SQLITE_DONE) return false;
          desired.reset();
        }
      } else {
        RunEntry e;
        while (n < kFoldSlice && r.more() && readRun(r, &e)) {
          if ((e.flags & kHasRun) != 0) {
            runs.bindInt(1, e.runs);
            sqlite3_bind_text(runs.get(), 2, e.last_run.data(), static_cast<int>(e.last_run.size()),
                              SQLITE_STATIC);
          }
          if ((e.flags & kHasVersion) != 0) {
            sqlite3_bind_text(runs.get(), 3, e.version.data(), static_cast<int>(e.version.size()),
                              SQLITE_STATIC);
          }
          runs.bindInt(4, e.seq);
          if (runs.step() != SQLITE_DONE) return false;
          runs.reset();
          ++n;
        }
      }
      if (r.more()) {  // the slice is full
        stopped_in = batch;
        stopped_at = r.at();
        break;
      }
      folded_through = batch;  // to its end (a damaged tail is dropped: nothing could read it)
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return false;
    emptied = rc == SQLITE_DONE;
    batches.reset();  // done with its blobs
    Statement move(db_, "INSERT OR REPLACE INTO flow_journal_cursor (one, n, at) VALUES (1, ?, ?)");
    if (!move.ok()) return false;
    move.bindInt64(1, stopped_in);
    move.bindInt64(2, static_cast<int64_t>(stopped_at));
    if (move.step() != SQLITE_DONE) return false;
    if (folded_through == 0) return true;
    Statement drop(db_, "DELETE FROM flow_journal WHERE n <= ?");
    if (!drop.ok()) return false;
    drop.bindInt64(1, folded_through);
    return drop.step() == SQLITE_DONE;
  });
  if (!done.ok()) return FoldStep::kFailed;
  return emptied ? FoldStep::kEmpty : FoldStep::kMore;
}

void SqliteStore::foldLoop() {
  std::unique_lock lock(fold_mu_);
  while (!fold_stop_) {
    if (!fold_due_) {
      fold_cv_.wait(lock);
      continue;
    }
    const auto overdue_at = first_unfolded_at_ + kFoldAtLatest;
    const auto at = std::min(last_journaled_at_ + kFoldQuiet, overdue_at);
    if (std::chrono::steady_clock::now() < at) {
      fold_cv_.wait_until(lock, at);
      continue;
    }
    const uint64_t seen = batches_journaled_;
    lock.unlock();
    FoldStep step;
    while ((step = foldSlice()) == FoldStep::kMore) {
      // The store's other users get the lock between slices, and new work for it (a command
      // journaling its batch) comes first: the fold waits for quiet again, unless the journal
      // waited too long already.
      std::unique_lock wait(fold_mu_);
      if (fold_cv_.wait_for(wait, std::chrono::milliseconds(1), [this] { return fold_stop_; }) ||
          (batches_journaled_ != seen && std::chrono::steady_clock::now() < overdue_at)) {
        break;
      }
    }
    lock.lock();
    const auto now = std::chrono::steady_clock::now();
    if (step == FoldStep::kEmpty) {
      fold_due_ = batches_journaled_ != seen;  // batches journaled during the pass remain
      first_unfolded_at_ = now;
    } else if (step == FoldStep::kFailed && !fold_stop_) {
      first_unfolded_at_ = now;  // a full disk, say: tried again later
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
  const auto until = std::chrono::steady_clock::now() + kCloseFoldFor;
  for (int failures = 0; failures < 3 && std::chrono::steady_clock::now() < until;) {
    const auto step = foldSlice();
    if (step == FoldStep::kEmpty) break;
    if (step == FoldStep::kFailed) ++failures;
  }
}

}  // namespace sluice
