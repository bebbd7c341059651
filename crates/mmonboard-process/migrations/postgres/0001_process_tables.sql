-- The process manager's tables on PostgreSQL: the same tables and columns as SQLite's three migrations reach
-- (times in unix microseconds). Persisted names: never rename a table or a column.

-- Durable timers: one row per portfolio and step that waits for a time (a sync window's end, the next poll of
-- Meta, a retry after a failure). A row survives restarts; firing it re-plans the portfolio from its log, and
-- each step's command has an id derived from the state it was decided on, so a timer that fires twice never
-- does the step twice.
CREATE TABLE process_timers (
    portfolio_id    TEXT     NOT NULL,
    step_key        TEXT     NOT NULL,
    due_at          BIGINT   NOT NULL, -- microseconds since the epoch, on the process manager's clock
    attempts        BIGINT   NOT NULL, -- consecutive failures of Meta for this step (0 when merely waiting)
    last_error      TEXT,
    updated_at      BIGINT   NOT NULL,
    waiting_since   BIGINT,            -- since when the step waits for Meta to get somewhere; NULL: not waiting
    polls           BIGINT   NOT NULL DEFAULT 0,
    stall_recorded  BOOLEAN  NOT NULL DEFAULT FALSE, -- the step's stall is in the portfolio's log already
    PRIMARY KEY (portfolio_id, step_key)
);

CREATE INDEX process_timers_due ON process_timers (due_at);

-- One active process manager per database: the instance whose lease has not expired is the only one that calls
-- Meta; the others stand by and take over once it lapses (or is released at shutdown).
CREATE TABLE process_lease (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL, -- microseconds since the epoch (the lease clock: real time)
    acquired_at BIGINT NOT NULL  -- when this holder first took it
);
