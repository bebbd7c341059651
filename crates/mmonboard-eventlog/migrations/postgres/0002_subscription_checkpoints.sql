-- Durable positions of named subscribers. Persisted names: NEVER rename the table or a column.
-- Unlike `events`, rows here are updated in place: a checkpoint is where a subscriber got to, not history.
CREATE TABLE subscription_checkpoints (
    -- The subscriber's stable name, e.g. a projection's name.
    name        TEXT    PRIMARY KEY,
    -- The global position of the last event the subscriber finished with (0: none yet).
    position    BIGINT  NOT NULL CHECK (position >= 0),
    -- When it was saved, in unix microseconds (UTC).
    updated_at  BIGINT  NOT NULL
);
