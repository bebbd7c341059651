-- The process manager's durable timers: one row per portfolio and step that waits for a time (a sync window's
-- end, the next poll of Meta, a retry after a failure). A row survives restarts; firing it re-plans the
-- portfolio from its log, and each step's command has an id derived from the state it was decided on, so a
-- timer that fires twice (a crash between the step and the row's removal) never does the step twice.
CREATE TABLE process_timers (
    portfolio_id  TEXT    NOT NULL,
    step_key      TEXT    NOT NULL,
    due_at        INTEGER NOT NULL, -- microseconds since the epoch, on the process manager's clock
    attempts      INTEGER NOT NULL, -- consecutive failures of Meta for this step (0 when merely waiting)
    last_error    TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (portfolio_id, step_key)
) STRICT;

CREATE INDEX process_timers_due ON process_timers (due_at);
