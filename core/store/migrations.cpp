#include "core/store/migrations.hpp"

namespace sluice {

namespace {

// Version 1 to 4 describe the schema as the SQLite store had it before versions were recorded;
// written with IF NOT EXISTS, they are no-ops on such a database and only get recorded.
const std::vector<Migration> kMigrations = {
    {1, "flows and plugin state",
     R"(
CREATE TABLE IF NOT EXISTS flows (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  flow_id TEXT NOT NULL UNIQUE,
  record TEXT NOT NULL,
  desired TEXT NOT NULL DEFAULT 'stopped'
);
CREATE TABLE IF NOT EXISTS plugin_state (
  incarnation INTEGER NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (incarnation, key)
);
)",
     R"(
CREATE TABLE IF NOT EXISTS flows (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  flow_id TEXT NOT NULL UNIQUE,
  record TEXT NOT NULL,
  desired TEXT NOT NULL DEFAULT 'stopped'
);
CREATE TABLE IF NOT EXISTS plugin_state (
  incarnation BIGINT NOT NULL,
  key TEXT NOT NULL,
  value BYTEA NOT NULL,
  PRIMARY KEY (incarnation, key)
);
)"},
    {2, "tokens",
     R"(
CREATE TABLE IF NOT EXISTS tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER,
  revoked_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_live_name ON tokens (name) WHERE revoked_ms IS NULL;
)",
     R"(
CREATE TABLE IF NOT EXISTS tokens (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT,
  revoked_ms BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_live_name ON tokens (name) WHERE revoked_ms IS NULL;
)"},
    {3, "audit log",
     R"(
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  token TEXT NOT NULL,
  role TEXT NOT NULL,
  remote TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  flow_ids TEXT NOT NULL,
  status INTEGER NOT NULL,
  error TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_ms);
)",
     R"(
CREATE TABLE IF NOT EXISTS audit (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  time_ms BIGINT NOT NULL,
  token TEXT NOT NULL,
  role TEXT NOT NULL,
  remote TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  flow_ids TEXT NOT NULL,
  status INTEGER NOT NULL,
  error TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_ms);
)"},
    {4, "durable sequences",
     R"(
CREATE TABLE IF NOT EXISTS sequences (
  name TEXT PRIMARY KEY,
  next INTEGER NOT NULL
);
)",
     R"(
CREATE TABLE IF NOT EXISTS sequences (
  name TEXT PRIMARY KEY,
  next BIGINT NOT NULL
);
)"},
    // Lease times are the database's own clock (PostgreSQL's now()); a SQLite store is one
    // machine, whose clock is the only one.
    {5, "cluster nodes",
     R"(
CREATE TABLE IF NOT EXISTS nodes (
  node_id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  started_ms INTEGER NOT NULL,
  heartbeat_ms INTEGER NOT NULL,
  lease_until_ms INTEGER NOT NULL,
  leader INTEGER NOT NULL DEFAULT 0
);
)",
     R"(
CREATE TABLE IF NOT EXISTS nodes (
  node_id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  started_ms BIGINT NOT NULL,
  heartbeat_at TIMESTAMPTZ NOT NULL,
  lease_until TIMESTAMPTZ NOT NULL,
  leader BOOLEAN NOT NULL DEFAULT false
);
)"},
    // Who runs each flow in a cluster (docs/cluster.md): the owner the leader assigned with its
    // fencing epoch, the node that claimed the run (`active_node`), and the status the running
    // node publishes for the others. Only a PostgreSQL store is shared; SQLite keeps the same
    // history (and the same tables) so a migrated installation has nothing to catch up on.
    {6, "flow ownership and shared status",
     R"(
CREATE TABLE IF NOT EXISTS flow_owners (
  flow_id TEXT PRIMARY KEY REFERENCES flows (flow_id) ON DELETE CASCADE,
  node_id TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  active_node TEXT,
  active_epoch INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS flow_status (
  flow_id TEXT PRIMARY KEY REFERENCES flows (flow_id) ON DELETE CASCADE,
  node_id TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  state TEXT NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  since_ms INTEGER NOT NULL,
  metrics TEXT NOT NULL DEFAULT '{}',
  version INTEGER NOT NULL
);
)",
     R"(
CREATE SEQUENCE IF NOT EXISTS owner_epochs;
CREATE TABLE IF NOT EXISTS flow_owners (
  flow_id TEXT PRIMARY KEY REFERENCES flows (flow_id) ON DELETE CASCADE,
  node_id TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  active_node TEXT,
  active_epoch BIGINT NOT NULL DEFAULT 0
);
CREATE SEQUENCE IF NOT EXISTS flow_status_versions;
CREATE TABLE IF NOT EXISTS flow_status (
  flow_id TEXT PRIMARY KEY REFERENCES flows (flow_id) ON DELETE CASCADE,
  node_id TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  state TEXT NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  since_ms BIGINT NOT NULL,
  metrics TEXT NOT NULL DEFAULT '{}',
  version BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_status_by_version ON flow_status (version);
)"},
    // The version of its flow type a flow last started on (docs/plugin-guide.md, versions): the
    // engine restarts it on that version while it is loaded; empty = never started.
    {7, "the flow type version each flow runs",
     R"(
ALTER TABLE flows ADD COLUMN type_version TEXT NOT NULL DEFAULT '';
)",
     R"(
ALTER TABLE flows ADD COLUMN IF NOT EXISTS type_version TEXT NOT NULL DEFAULT '';
)"},
    // A flow's runs (docs/api.md, last_run): how many began, and the last one as
    // storedRunRecord() JSON; '' = never ran.
    {8, "the runs of each flow",
     R"(
ALTER TABLE flows ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flows ADD COLUMN last_run TEXT NOT NULL DEFAULT '';
)",
     R"(
ALTER TABLE flows ADD COLUMN IF NOT EXISTS runs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE flows ADD COLUMN IF NOT EXISTS last_run TEXT NOT NULL DEFAULT '';
)"},
    // SQLite rewrites a whole row on each UPDATE: a run record (two per run) or a type version
    // written into `flows` copied the flow's configuration too. A narrow table of their own,
    // one row per flow (keyed by incarnation, made with the flow), halves what a command's run
    // records cost (docs/benchmarks.md, issue 14). PostgreSQL keeps them in `flows`: its store
    // writes a batch as one statement, and nothing measured there called for it.
    {9, "the runs of each flow in a table of their own",
     R"(
CREATE TABLE flow_runs (
  seq INTEGER PRIMARY KEY,
  runs INTEGER NOT NULL DEFAULT 0,
  last_run TEXT NOT NULL DEFAULT '',
  type_version TEXT NOT NULL DEFAULT ''
);
INSERT INTO flow_runs (seq, runs, last_run, type_version)
  SELECT seq, runs, last_run, type_version FROM flows;
ALTER TABLE flows DROP COLUMN runs;
ALTER TABLE flows DROP COLUMN last_run;
ALTER TABLE flows DROP COLUMN type_version;
)",
     nullptr},
    // A command's desired states and the runs its flows record, a batch per row: one INSERT
    // instead of an UPDATE per flow, folded into `flows` and `flow_runs` later
    // (core/store/sqlite_journal.cpp, issue 14). PostgreSQL writes each batch as one statement.
    {10, "a journal of desired states and run records",
     R"(
CREATE TABLE flow_journal (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  kind INTEGER NOT NULL,
  desired TEXT NOT NULL,
  body BLOB NOT NULL
);
CREATE TABLE flow_journal_cursor (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  n INTEGER NOT NULL,
  at INTEGER NOT NULL
);
)",
     nullptr},
};

}  // namespace

const std::vector<Migration>& schemaMigrations() { return kMigrations; }

int latestSchemaVersion() { return kMigrations.back().version; }

}  // namespace sluice
