// The schema's history, one list for both backends: each version has its SQLite and its
// PostgreSQL text side by side, so the two stores always have the same migration history.
// A store applies the versions it lacks at startup, in one transaction, and records each in its
// `schema_migrations` table.
#pragma once

#include <vector>

namespace sluice {

struct Migration {
  int version;
  const char* name;
  const char* sqlite;
  const char* postgres;  // nullptr: nothing to change on PostgreSQL (only recorded)
};

/// Every version, in order, from 1.
const std::vector<Migration>& schemaMigrations();

/// The newest version this build knows.
int latestSchemaVersion();

}  // namespace sluice
