-- The event log's schema. Every table, column and trigger name here is persisted and part of the
-- audit contract: NEVER rename or repurpose one; add new columns or tables in a later migration.

-- events: one row per recorded event, in commit order.
CREATE TABLE events (
    -- Assigned by the writer as previous head + 1: gap-free, in commit order (rowid alias).
    global_position INTEGER PRIMARY KEY CHECK (global_position >= 1),
    -- The stream (aggregate instance) the event belongs to.
    stream_id       TEXT    NOT NULL,
    -- Contiguous from 1 within its stream.
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    -- The event's UUID, hyphenated lower-case text; unique across the log.
    event_id        TEXT    NOT NULL UNIQUE,
    -- The stable event type name chosen by the domain.
    event_type      TEXT    NOT NULL,
    -- The schema version of the payload, for upcasting on read.
    schema_version  INTEGER NOT NULL,
    -- The JSON payload, verbatim as given by the appender.
    payload         TEXT    NOT NULL,
    -- The command's metadata (command id, actor, correlation, causation) as JSON text.
    metadata        TEXT    NOT NULL,
    -- When the event was recorded, in unix microseconds (UTC).
    recorded_at     INTEGER NOT NULL,
    -- SHA-256(previous event's hash || canonical bytes of this event): the tamper-evident chain.
    hash            BLOB    NOT NULL CHECK (length(hash) = 32),
    UNIQUE (stream_id, stream_version)
) STRICT;

-- commands: one row per applied command, written in the same transaction as its events, so a
-- retried command is recognised atomically (idempotency). WITHOUT ROWID: the primary key is the
-- table, one B-tree less to write per commit.
CREATE TABLE commands (
    -- The command's UUID, hyphenated lower-case text.
    command_id      TEXT    PRIMARY KEY NOT NULL,
    -- The stream the command was addressed to.
    stream_id       TEXT    NOT NULL,
    -- Global position of the command's first event; NULL if it produced no events.
    first_position  INTEGER,
    event_count     INTEGER NOT NULL CHECK (event_count >= 0),
    -- When the command was recorded, in unix microseconds (UTC).
    recorded_at     INTEGER NOT NULL
) WITHOUT ROWID, STRICT;

-- Defence in depth: the log is append-only. (The hash chain is what detects tampering.)
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER commands_no_update BEFORE UPDATE ON commands
BEGIN
    SELECT RAISE(ABORT, 'commands are append-only');
END;

CREATE TRIGGER commands_no_delete BEFORE DELETE ON commands
BEGIN
    SELECT RAISE(ABORT, 'commands are append-only');
END;
