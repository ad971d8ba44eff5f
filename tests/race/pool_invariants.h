// The rotation invariants of docs/design.md as a checker over one snapshot of one pool, and two
// ways to take that snapshot: through the Store interface (when nothing else is writing) and as
// one read transaction straight on the database (consistent while a storm is running).
#ifndef KEYGATE_TESTS_RACE_POOL_INVARIANTS_H_
#define KEYGATE_TESTS_RACE_POOL_INVARIANTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace keygate::testing {

struct KeyRow {
  int64_t id = 0;
  std::string state;  // as stored: "active", "backup", ...
  std::optional<int64_t> replaced_by;
  std::optional<int64_t> replaces;
};

struct RotationRow {
  int64_t id = 0;
  int64_t failed_key_id = 0;
  std::optional<int64_t> new_key_id;
  std::string outcome;  // "rotated" or "no_backup"
};

struct BindingRow {
  int64_t key_id = 0;
  int64_t proxy_id = 0;
};

// One pool at one moment.
struct PoolSnapshot {
  std::vector<KeyRow> keys;
  std::vector<RotationRow> rotations;  // oldest first
  std::vector<BindingRow> bindings;

  store::StateCounts Counts() const;  // unknown states are not counted (CheckPool reports them)
};

// What the test knows about the pool independently of the store.
struct PoolExpectation {
  std::set<int64_t> imported;        // every key id ever imported into the pool
  std::set<int64_t> initial_active;  // the keys imported as active
  // Each initial active key was bound to a proxy of its own: proxy id -> that key.
  std::map<int64_t, int64_t> initial_key_of_proxy;
};

// Checks every invariant; returns one line per violation (empty when all hold). The invariants:
//  - conservation: the snapshot holds exactly the imported keys, each once, each in one known
//    state; active + cooling + exhausted == the initial active count (a rotation moves one key
//    active->retired and one backup->active; NoBackup moves one active->exhausted);
//  - exactly once: every retired key has exactly one `rotated` record naming its replaced_by;
//    every exhausted key exactly one `no_backup` record; no key is the new key of two records
//    (no backup activated twice); a replacement has `replaces` pointing back and is active or
//    later retired/exhausted; backups carry no rotation links;
//  - bindings: every binding names a key of the pool that is not retired or backup, and each
//    initial key's proxy is bound exactly once, to the last key of its replaced_by chain;
//  - no early exhaustion: a key is exhausted (NoBackup) only when no backup is left, so with
//    backups available the active count never drops.
std::vector<std::string> CheckPool(const PoolSnapshot& snap, const PoolExpectation& expect);

// Reads the pool through the Store interface (several statements: only consistent when no one
// else writes).
StatusOr<PoolSnapshot> ReadSnapshot(store::Store& store, int64_t pool_id);

// Reads the pool in one read-only transaction opened straight on the database (SQLite: a
// deferred transaction on a WAL file; PostgreSQL: REPEATABLE READ), so the three tables are seen
// at one commit even while other processes rotate. Opens and closes its own connection.
StatusOr<PoolSnapshot> ReadRawSnapshot(const std::string& url, int64_t pool_id);

// Joins the first `max` violations into one message for a test failure.
std::string JoinViolations(const std::vector<std::string>& v, size_t max = 20);

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_RACE_POOL_INVARIANTS_H_
