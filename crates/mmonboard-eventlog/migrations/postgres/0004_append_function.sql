-- The writer's insert as a server-side function, so that a writer deciding alone commits a batch in one
-- round trip: called outside a transaction block, the call is its own transaction, committed before its
-- answer arrives. It takes the log's write lock itself (a no-op when the caller's transaction already holds
-- it), so every statement below runs after the lock is granted and sees every batch committed under it
-- before. Never edit this file (sqlx refuses a migration whose checksum changed after it was applied): a new
-- behaviour is a `CREATE OR REPLACE` in a later migration, which must keep the OUT columns (writers hold the
-- call as a prepared statement, whose result type may not change under them).
--
-- The rows travel as one array per column. With `assumed_head` (a position, `assumed_head_hash` its hash)
-- the insert is guarded: it writes only if the log's head is still that event and none of the streams
-- `assumed_new` has an event, which is what the writer assumed when it decided the batch without reading
-- the log. It answers `(head_ok, ok)`: whether the head was as assumed, and whether the rows were written
-- (and `new_head` announced on the `mmonboard_events` channel, delivered at COMMIT). A NULL
-- `assumed_head` writes unconditionally and answers `(true, true)`.
CREATE FUNCTION mmonboard_append(
    positions            BIGINT[],
    stream_ids           TEXT[],
    stream_versions      BIGINT[],
    event_ids            TEXT[],
    event_types          TEXT[],
    schema_versions      BIGINT[],
    payloads             TEXT[],
    event_metadata       TEXT[],
    recorded_ats         BIGINT[],
    hashes               BYTEA[],
    command_ids          TEXT[],
    command_streams      TEXT[],
    -- 0 for a command without events (stored as NULL).
    first_positions      BIGINT[],
    event_counts         BIGINT[],
    command_recorded_ats BIGINT[],
    new_head             TEXT,
    assumed_head         BIGINT,
    assumed_new          TEXT[],
    assumed_head_hash    BYTEA,
    OUT head_ok          BOOLEAN,
    OUT ok               BOOLEAN
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- EXCLUSIVE conflicts with itself and with every INSERT, not with readers: writers queue, readers
    -- never wait. Held until the transaction ends.
    LOCK TABLE events IN EXCLUSIVE MODE;
    -- Under a stronger level every statement would see the snapshot taken before the lock was granted.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'mmonboard_append needs READ COMMITTED, not %',
            current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
    END IF;
    -- Each statement of a VOLATILE function takes its own READ COMMITTED snapshot, here after the lock:
    -- under it nobody else can insert, so the checks see exactly what the inserts follow.
    head_ok := assumed_head IS NULL
        OR ((SELECT COALESCE(MAX(global_position), 0) FROM events) = assumed_head
            AND (assumed_head = 0
                 OR (SELECT hash FROM events WHERE global_position = assumed_head) = assumed_head_hash));
    -- The streams are probed one by one through the stream index (a cached generic plan of
    -- `stream_id = ANY(...)`, made while the table was small, was seen scanning it whole).
    ok := head_ok AND NOT EXISTS (SELECT 1 FROM unnest(assumed_new) s
        WHERE EXISTS (SELECT 1 FROM events WHERE stream_id = s));
    IF NOT ok THEN
        RETURN;
    END IF;
    INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type,
        schema_version, payload, metadata, recorded_at, hash)
    SELECT * FROM unnest(positions, stream_ids, stream_versions, event_ids::uuid[], event_types,
        schema_versions, payloads, event_metadata, recorded_ats, hashes);
    INSERT INTO commands (command_id, stream_id, first_position, event_count, recorded_at)
    SELECT c, s, NULLIF(f, 0), n, r FROM unnest(command_ids::uuid[], command_streams, first_positions,
        event_counts, command_recorded_ats) AS t(c, s, f, n, r);
    PERFORM pg_notify('mmonboard_events', new_head);
END;
$$;
