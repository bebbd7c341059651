-- How long a step has been waiting for Meta to get somewhere (an ad account, a WABA onboarded, a signature),
-- and how many times it looked: a wait past the process manager's bound is recorded as a stall.
ALTER TABLE process_timers ADD COLUMN waiting_since INTEGER; -- microseconds since the epoch; NULL: not waiting
ALTER TABLE process_timers ADD COLUMN polls INTEGER NOT NULL DEFAULT 0;
-- The step's stall is in the portfolio's log already: recorded once per stall, not at every retry.
ALTER TABLE process_timers ADD COLUMN stall_recorded INTEGER NOT NULL DEFAULT 0;
