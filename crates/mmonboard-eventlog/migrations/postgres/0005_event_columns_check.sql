-- Bulk reads of the log use PostgreSQL's binary COPY format, which sends values without their types (a
-- SELECT's rows carry them, and the readers check them there). So that a column whose type changed under
-- the log (an insider's ALTER TABLE) is refused by name rather than read as garbage, every such read calls
-- this function once, as a one-time filter evaluated before its first row: it raises unless the events
-- table's columns are of the types the readers decode. Columns are compared by name, so a later migration
-- may add columns. Never edit this file: a changed check is a `CREATE OR REPLACE` in a later migration.
CREATE FUNCTION mmonboard_event_columns_checked() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    expected CONSTANT text := 'event_id uuid, event_type text, global_position bigint, hash bytea, '
        'metadata text, payload text, recorded_at bigint, schema_version bigint, stream_id text, '
        'stream_version bigint';
    found text;
BEGIN
    SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attname)
      INTO found
      FROM pg_attribute
     WHERE attrelid = 'events'::regclass AND attnum > 0 AND NOT attisdropped
       AND attname IN ('global_position', 'stream_id', 'stream_version', 'event_id', 'event_type',
                       'schema_version', 'payload', 'metadata', 'recorded_at', 'hash');
    IF found IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'the events table''s columns are (%), not (%)', found, expected
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    RETURN true;
END;
$$;
