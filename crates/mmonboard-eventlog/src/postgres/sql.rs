//! Every SQL statement of the PostgreSQL log, in one place (table and column names are persisted, see
//! `migrations/postgres/0001_event_log.sql`: never rename one). Statements with parameters are prepared
//! once per connection by sqlx and exchanged in the binary protocol; a batch's rows travel as one array
//! per column, unpacked by `unnest`, so a group commit costs the same few round trips whatever its size.
//! UUIDs are bound as text arrays and cast (the workspace builds sqlx without its `uuid` feature); an
//! event's id is read back as the uuid's binary value (its 16 bytes), a command's with `uuid_send`.

/// The notification channel commits announce their new head on (payload: the head, in decimal).
pub(crate) const CHANNEL: &str = "mmonboard_events";

/// Opens the batch transaction and takes the log's write lock, held until COMMIT or ROLLBACK. EXCLUSIVE
/// mode conflicts with itself and with every INSERT (ROW EXCLUSIVE), but not with readers (ACCESS SHARE):
/// writers queue, readers never wait. Sent as one simple query (one round trip); the statements that
/// follow start their READ COMMITTED snapshots after the lock is granted, so they see every commit made
/// under it before.
pub(crate) const BEGIN_AND_LOCK: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; LOCK TABLE events IN EXCLUSIVE MODE";

/// Everything a batch's decisions depend on, read under the lock. `$1`: command ids, `$2`: stream ids,
/// `$3`: event ids. Rows are `(kind, key, a, b, hash)`: kind 0 is the head (a = position, hash), kind 1 a
/// known command (key = its id, a = first_position, b = event_count), kind 2 a stream (key = its id,
/// a = its version), kind 3 an event id already in the log (key = the id, a = its position).
pub(crate) const LOOKUP: &str = "\
    SELECT 0::int2, NULL::text, global_position, NULL::int8, hash \
      FROM (SELECT global_position, hash FROM events ORDER BY global_position DESC LIMIT 1) head \
    UNION ALL \
    SELECT 1::int2, command_id::text, first_position, event_count, NULL::bytea FROM commands \
      WHERE command_id = ANY($1::text[]::uuid[]) \
    UNION ALL \
    SELECT 2::int2, s, \
      (SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = s), NULL::int8, NULL::bytea \
      FROM unnest($2::text[]) s \
    UNION ALL \
    SELECT 3::int2, event_id::text, global_position, NULL::int8, NULL::bytea FROM events \
      WHERE event_id = ANY($3::text[]::uuid[])";

/// Inserts the decided events (`$1`..`$10`, one array per column) and commands (`$11`..`$15`;
/// first_position 0 stands for NULL) and queues the notification of the new head (`$16`), delivered by
/// PostgreSQL only when the transaction commits: `mmonboard_append`, defined in
/// `migrations/postgres/0004_append_function.sql`, which takes the write lock itself (a no-op inside a
/// transaction that holds it). Sent outside a transaction block it is a whole batch in one round trip; it
/// fails or succeeds as a whole.
///
/// With `$17` (a head position, `$19` its hash) the insert is guarded: it writes only if the log's head is
/// still that event and none of the streams `$18` has an event, which is what the writer assumed when it
/// decided the batch without looking anything up. It answers `(head_ok, ok)`: whether the head was as
/// assumed, and whether the rows were written (and the notification queued). A NULL `$17` writes
/// unconditionally and answers `(true, true)`.
pub(crate) const INSERT: &str = "SELECT head_ok, ok FROM mmonboard_append($1, $2, $3, $4, $5, $6, $7, $8, \
    $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";

pub(crate) const COMMIT: &str = "COMMIT";
pub(crate) const ROLLBACK: &str = "ROLLBACK";

// The careful path: one request at a time under its own savepoint, used when a batch's insert hit a
// constraint, so only the guilty request is refused.
pub(crate) const SAVEPOINT: &str = "SAVEPOINT append_request";
pub(crate) const RELEASE: &str = "RELEASE SAVEPOINT append_request";
pub(crate) const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT append_request";

/// The columns of an event as every read selects them, in the order `RowDecoder` (in `super`) reads them.
macro_rules! event_columns {
    () => {
        "global_position, stream_id, stream_version, event_id, event_type, schema_version, \
         payload, metadata, recorded_at, hash"
    };
}

/// Up to `$2` events with a global position above `$1`, in global order.
pub(crate) const READ_ALL: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2"
);

/// Up to `limit` events with a global position above `after`, in global order, as one binary `COPY` (read
/// by `super::copy`): the rows [`READ_ALL`] selects, behind a one-time check of the columns' types, since
/// the COPY format carries none (`migrations/postgres/0005_event_columns_check.sql`). A COPY takes no
/// parameters; both values are integers formatted here (the limit at most `i64::MAX`, as the `SELECT` binds
/// it), so nothing but digits enters the statement.
pub(crate) fn copy_all(after: i64, limit: usize) -> String {
    format!(
        concat!(
            "COPY (SELECT ",
            event_columns!(),
            " FROM events WHERE global_position > {} AND (SELECT mmonboard_event_columns_checked()) \
             ORDER BY global_position LIMIT {}) TO STDOUT (FORMAT binary)"
        ),
        after,
        i64::try_from(limit).unwrap_or(i64::MAX)
    )
}

/// Whether this connection's role may call the columns check that bulk reads call: a log last migrated by
/// an older mmonboard may lack it (a read-only open migrates nothing), and a hardened database may not grant
/// EXECUTE on it to every role. Without it, reads all go through [`READ_ALL`].
pub(crate) const CAN_CHECK_COLUMNS: &str = "SELECT CASE \
     WHEN to_regprocedure('mmonboard_event_columns_checked()') IS NULL THEN false \
     ELSE has_function_privilege(to_regprocedure('mmonboard_event_columns_checked()'), 'EXECUTE') END";

/// The events of stream `$1` with a version above `$2`, in version order.
pub(crate) const READ_STREAM: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version"
);

/// The events at positions `$1..$1+$2`, for a command found in `commands`.
pub(crate) const READ_RANGE: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE global_position >= $1 AND global_position < $1 + $2 ORDER BY global_position"
);

pub(crate) const HEAD_POSITION: &str = "SELECT COALESCE(MAX(global_position), 0) FROM events";

pub(crate) const STREAM_VERSION: &str =
    "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = $1";

pub(crate) const FIND_COMMAND: &str =
    "SELECT first_position, event_count FROM commands WHERE command_id = $1::text::uuid";

/// Whether the database holds the log's table (a read-only open migrates nothing, so it checks).
pub(crate) const IS_EVENT_LOG: &str = "SELECT to_regclass('events') IS NOT NULL";

/// Makes `verify`'s command snapshot one snapshot for all its statements.
pub(crate) const REPEATABLE_READ: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ";

/// For `verify`'s cross-check, read first in its snapshot: the head, and the highest position any
/// command claims to have written.
pub(crate) const VERIFY_BOUND: &str = "SELECT \
     (SELECT COALESCE(MAX(global_position), 0) FROM events)::int8, \
     COALESCE(MAX(first_position + event_count - 1), 0)::int8 FROM commands \
     WHERE first_position IS NOT NULL";

/// Every command record with events, by first position, for `verify`'s cross-check (one sorted pass:
/// no index on first_position is kept for this rare walk, so writes pay nothing for it).
pub(crate) const COMMANDS_BY_POSITION: &str = "SELECT uuid_send(command_id), stream_id, first_position, \
     event_count, recorded_at FROM commands WHERE first_position IS NOT NULL ORDER BY first_position";

/// How many events and commands the log holds, for `import` (which writes only into an empty log).
pub(crate) const COUNT_ROWS: &str =
    "SELECT (SELECT count(*) FROM events)::int8, (SELECT count(*) FROM commands)::int8";

/// One exported event, verbatim, for `import`.
pub(crate) const IMPORT_EVENT: &str = "INSERT INTO events (global_position, stream_id, stream_version, \
     event_id, event_type, schema_version, payload, metadata, recorded_at, hash) \
     VALUES ($1, $2, $3, $4::text::uuid, $5, $6, $7, $8, $9, $10)";

/// One command record rebuilt from an exported command's events, for `import`.
pub(crate) const IMPORT_COMMAND: &str = "INSERT INTO commands (command_id, stream_id, first_position, \
     event_count, recorded_at) VALUES ($1::text::uuid, $2, $3, $4, $5)";
