//! Every SQL statement of the SQLite log, in one place (table and column names are persisted,
//! see `migrations/0001_event_log.sql`: never rename one). sqlx runs each statement on a worker
//! thread and hands every row back through a channel, so a round trip costs tens of
//! microseconds and a row a few; hence the shapes: a group commit takes two round trips
//! whatever its size (the batch travels as JSON arrays unpacked by `json_each`), and the writer's
//! reads fetch thousands of events per row (see [`super::decode`]). The bulk reads go through
//! rusqlite instead ([`super::bulk`]), one row per event.

/// A chunk of events as one row of column-wise lists, so SQLite appends each value straight
/// into its list (no per-event string is built): count, then global_position, stream_version,
/// schema_version and recorded_at as comma-separated decimals, event_id as concatenated 36-byte
/// texts, hash as concatenated raw 32-byte values, then stream_id, event_type, metadata and
/// payload separated by U+001F (none can hold it: ids and types are refused with control
/// characters and JSON text has none outside its whitespace). All lists follow the same row
/// order.
macro_rules! chunk {
    ($stream_id:literal) => {
        concat!(
            "SELECT count(*), group_concat(global_position), group_concat(stream_version), \
             group_concat(schema_version), group_concat(recorded_at), group_concat(event_id, ''), \
             group_concat(hash, ''), ",
            $stream_id,
            ", group_concat(event_type, char(31)), group_concat(metadata, char(31)), \
             group_concat(payload, char(31))"
        )
    };
}

/// Up to `?2` events with a global position above `?1`, as one chunk row.
pub(crate) const READ_ALL_CHUNK: &str = concat!(
    chunk!("group_concat(stream_id, char(31))"),
    " FROM (SELECT * FROM events WHERE global_position > ?1 ORDER BY global_position LIMIT ?2)"
);

// The bulk read path (rusqlite, see `super::bulk`): one row per event, since rusqlite hands a row over for a
// few hundred nanoseconds. The columns, in this order, are what `bulk`'s row decoder reads.
macro_rules! event_columns {
    () => {
        "SELECT global_position, stream_id, stream_version, event_id, event_type, schema_version, \
         payload, metadata, recorded_at, hash FROM events "
    };
}

/// The events of stream `?1` with a version in `(?2, ?3]`, in version order (the unique index on
/// `(stream_id, stream_version)` gives that order).
pub(crate) const READ_STREAM_RANGE: &str = concat!(
    event_columns!(),
    "WHERE stream_id = ?1 AND stream_version > ?2 AND stream_version <= ?3 ORDER BY stream_version"
);

/// Up to `?2` events with a global position above `?1`, in global order.
pub(crate) const READ_ALL_ROWS: &str = concat!(
    event_columns!(),
    "WHERE global_position > ?1 ORDER BY global_position LIMIT ?2"
);

/// Whether the database holds the log's table (a read-only open migrates nothing, so it checks).
pub(crate) const IS_EVENT_LOG: &str =
    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events')";

/// At close: copy the WAL into the database file and empty it.
pub(crate) const CHECKPOINT_WAL: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

pub(crate) const HEAD_POSITION: &str = "SELECT COALESCE(MAX(global_position), 0) FROM events";

pub(crate) const STREAM_VERSION: &str =
    "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?1";

pub(crate) const FIND_COMMAND: &str =
    "SELECT first_position, event_count FROM commands WHERE command_id = ?1";

/// For `verify`'s cross-check, read first in its snapshot: the head, and the highest position any
/// command claims to have written.
pub(crate) const VERIFY_BOUND: &str = "SELECT \
     (SELECT COALESCE(MAX(global_position), 0) FROM events), \
     COALESCE(MAX(first_position + event_count - 1), 0) FROM commands \
     WHERE first_position IS NOT NULL";

/// Every command record with events, by first position, for `verify`'s cross-check (one sorted pass:
/// no index on first_position is kept for this rare walk, so writes pay nothing for it).
pub(crate) const COMMANDS_BY_POSITION: &str = "SELECT command_id, stream_id, first_position, \
     event_count, recorded_at FROM commands WHERE first_position IS NOT NULL ORDER BY first_position";

/// Group commit, first round trip: take the write lock, then read everything the batch's
/// decisions depend on. `?1`: JSON array of command ids, `?2`: JSON array of stream ids.
/// Rows are `(kind, key, a, b)`: kind 0 is the head (a = position, b = hash), kind 1 a known
/// command (a = first_position, b = event_count), kind 2 a stream (a = its version).
pub(crate) const BEGIN_AND_LOOKUP: &str = "BEGIN IMMEDIATE; \
     SELECT 0, NULL, global_position, hash \
       FROM (SELECT global_position, hash FROM events ORDER BY global_position DESC LIMIT 1) \
     UNION ALL \
     SELECT 1, command_id, first_position, event_count FROM commands \
       WHERE command_id IN (SELECT value FROM json_each(?1)) \
     UNION ALL \
     SELECT 2, value, \
       (SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = value), NULL \
       FROM json_each(?2)";

// The inserts of the group commit's second round trip, without and with the COMMIT.
macro_rules! insert_rows {
    () => {
        "INSERT INTO events (global_position, stream_id, \
         stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
         SELECT e ->> 0, e ->> 1, e ->> 2, e ->> 3, e ->> 4, e ->> 5, e ->> 6, e ->> 7, e ->> 8, \
           unhex(e ->> 9) \
         FROM (SELECT value AS e FROM json_each(?1)); \
         INSERT INTO commands (command_id, stream_id, first_position, event_count, recorded_at) \
         SELECT c ->> 0, c ->> 1, c ->> 2, c ->> 3, c ->> 4 \
         FROM (SELECT value AS c FROM json_each(?2));"
    };
}

/// Group commit, second round trip: insert the decided events (`?1`, a JSON array of
/// `[global_position, stream_id, stream_version, event_id, event_type, schema_version, payload,
/// metadata, recorded_at, hex(hash)]`) and commands (`?2`, `[command_id, stream_id,
/// first_position, event_count, recorded_at]`), then commit. SQLite stops at the first failing
/// statement, so a failed insert never reaches the COMMIT.
pub(crate) const INSERT_AND_COMMIT: &str = concat!(insert_rows!(), " COMMIT");

/// The inserts of [`INSERT_AND_COMMIT`] without its COMMIT, for the test-only hook that holds a
/// commit open.
pub(crate) const INSERT_ROWS: &str = insert_rows!();

// The careful path: one request at a time under its own savepoint, used when a batch's bulk
// insert hit a constraint, to find the guilty request and refuse it alone.

/// Takes SQLite's write lock up front, so a batch never fails on a lock upgrade.
pub(crate) const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";
pub(crate) const HEAD: &str =
    "SELECT global_position, hash FROM events ORDER BY global_position DESC LIMIT 1";
pub(crate) const INSERT_EVENT: &str = "INSERT INTO events (global_position, stream_id, \
     stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
pub(crate) const INSERT_COMMAND: &str = "INSERT INTO commands (command_id, stream_id, \
     first_position, event_count, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(crate) const SAVEPOINT: &str = "SAVEPOINT append_request";
pub(crate) const RELEASE: &str = "RELEASE append_request";
pub(crate) const ROLLBACK_TO: &str = "ROLLBACK TO append_request";
pub(crate) const COMMIT: &str = "COMMIT";
pub(crate) const ROLLBACK: &str = "ROLLBACK";

/// How many events and commands the log holds, for `import` (which writes only into an empty log).
pub(crate) const COUNT_ROWS: &str =
    "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM commands)";
