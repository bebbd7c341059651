-- The event log's schema on PostgreSQL, the same tables and columns as the SQLite log's. Every table,
-- column, function and trigger name here is persisted and part of the audit contract: NEVER rename or
-- repurpose one; add new columns or tables in a later migration.

-- events: one row per recorded event, in commit order.
CREATE TABLE events (
    -- Assigned by the writer as previous head + 1 under a lock held until COMMIT: gap-free, in commit
    -- order. Deliberately not a sequence (a sequence hands out numbers in an order commits need not keep).
    global_position BIGINT  PRIMARY KEY CHECK (global_position >= 1),
    -- The stream (aggregate instance) the event belongs to.
    stream_id       TEXT    NOT NULL,
    -- Contiguous from 1 within its stream.
    stream_version  BIGINT  NOT NULL CHECK (stream_version >= 1),
    -- The event's UUID; unique across the log.
    event_id        UUID    NOT NULL UNIQUE,
    -- The stable event type name chosen by the domain.
    event_type      TEXT    NOT NULL,
    -- The schema version of the payload (a u32), for upcasting on read.
    schema_version  BIGINT  NOT NULL CHECK (schema_version >= 0 AND schema_version <= 4294967295),
    -- The JSON payload, verbatim as given by the appender. TEXT, not jsonb: the hash covers the exact text.
    payload         TEXT    NOT NULL,
    -- The command's metadata (command id, actor, correlation, causation) as JSON text, verbatim.
    metadata        TEXT    NOT NULL,
    -- When the event was recorded, in unix microseconds (UTC).
    recorded_at     BIGINT  NOT NULL,
    -- SHA-256(previous event's hash || canonical bytes of this event): the tamper-evident chain.
    hash            BYTEA   NOT NULL CHECK (length(hash) = 32),
    UNIQUE (stream_id, stream_version)
);

-- commands: one row per applied command, written in the same transaction as its events, so a retried
-- command is recognised atomically (idempotency).
CREATE TABLE commands (
    -- The command's UUID.
    command_id      UUID    PRIMARY KEY,
    -- The stream the command was addressed to.
    stream_id       TEXT    NOT NULL,
    -- Global position of the command's first event; NULL if it produced no events.
    first_position  BIGINT,
    event_count     BIGINT  NOT NULL CHECK (event_count >= 0),
    -- When the command was recorded, in unix microseconds (UTC).
    recorded_at     BIGINT  NOT NULL
);

-- Defence in depth: the log is append-only. (The hash chain is what detects tampering.)
CREATE FUNCTION mmonboard_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% are append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION mmonboard_refuse_change();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION mmonboard_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION mmonboard_refuse_change();
CREATE TRIGGER commands_no_update BEFORE UPDATE ON commands
    FOR EACH ROW EXECUTE FUNCTION mmonboard_refuse_change();
CREATE TRIGGER commands_no_delete BEFORE DELETE ON commands
    FOR EACH ROW EXECUTE FUNCTION mmonboard_refuse_change();
CREATE TRIGGER commands_no_truncate BEFORE TRUNCATE ON commands
    FOR EACH STATEMENT EXECUTE FUNCTION mmonboard_refuse_change();
