-- Aggregate snapshots: a cache of folded streams kept beside the log. Persisted names: NEVER rename the table
-- or a column. Rows are replaced in place and may be deleted at any time (`mmonboard snapshots clear`):
-- nothing here is history, and deleting every row changes nothing but how long a long stream takes to load.
CREATE TABLE aggregate_snapshots (
    -- The stream whose first `stream_version` events were folded.
    stream_id       TEXT    NOT NULL,
    -- The fingerprint of the code that folded and serialised the state: another build never reads it.
    fingerprint     TEXT    NOT NULL,
    -- How many of the stream's events the state folds.
    stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
    -- The id of the event at `stream_version`, checked on load against the log.
    last_event_id   TEXT    NOT NULL,
    -- The folded state, as the domain serialises it.
    state           BLOB    NOT NULL,
    -- When it was written, in unix microseconds (UTC).
    taken_at        INTEGER NOT NULL,
    PRIMARY KEY (stream_id, fingerprint)
) STRICT;
