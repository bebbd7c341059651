//! Every statement of the process manager's tables (`process_timers`, `process_lease`), one module per
//! backend with the same names. Table and column names are persisted: never rename one.

pub(crate) mod sqlite {
    pub const SET_TIMER: &str = "INSERT INTO process_timers \
         (portfolio_id, step_key, due_at, attempts, last_error, updated_at, waiting_since, polls, stall_recorded) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (portfolio_id, step_key) DO UPDATE SET due_at = excluded.due_at, \
         attempts = excluded.attempts, last_error = excluded.last_error, updated_at = excluded.updated_at, \
         waiting_since = excluded.waiting_since, polls = excluded.polls, stall_recorded = excluded.stall_recorded";
    pub const REMOVE_TIMER: &str =
        "DELETE FROM process_timers WHERE portfolio_id = ?1 AND step_key = ?2";
    pub const TIMERS_OF_PORTFOLIO: &str = "SELECT portfolio_id, step_key, due_at, attempts, last_error, \
         waiting_since, polls, stall_recorded FROM process_timers WHERE portfolio_id = ?1 ORDER BY step_key";
    pub const DUE_PORTFOLIOS: &str = "SELECT DISTINCT portfolio_id FROM process_timers \
         WHERE due_at <= ?1 ORDER BY portfolio_id";
    pub const ALL_TIMERS: &str = "SELECT portfolio_id, step_key, due_at, attempts, last_error, \
         waiting_since, polls, stall_recorded FROM process_timers ORDER BY due_at, portfolio_id, step_key";
    /// Taken only when free, lapsed, or already ours: one statement, so two instances never both win.
    pub const HOLD_LEASE: &str = "INSERT INTO process_lease (name, holder, expires_at, acquired_at) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
         acquired_at = CASE WHEN process_lease.holder = excluded.holder \
                            THEN process_lease.acquired_at ELSE excluded.acquired_at END \
         WHERE process_lease.holder = excluded.holder OR process_lease.expires_at <= ?4";
    pub const RELEASE_LEASE: &str = "DELETE FROM process_lease WHERE name = ?1 AND holder = ?2";
    pub const CURRENT_LEASE: &str =
        "SELECT holder, expires_at, acquired_at FROM process_lease WHERE name = ?1";
}

pub(crate) mod postgres {
    pub const SET_TIMER: &str = "INSERT INTO process_timers \
         (portfolio_id, step_key, due_at, attempts, last_error, updated_at, waiting_since, polls, stall_recorded) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (portfolio_id, step_key) DO UPDATE SET due_at = excluded.due_at, \
         attempts = excluded.attempts, last_error = excluded.last_error, updated_at = excluded.updated_at, \
         waiting_since = excluded.waiting_since, polls = excluded.polls, stall_recorded = excluded.stall_recorded";
    pub const REMOVE_TIMER: &str =
        "DELETE FROM process_timers WHERE portfolio_id = $1 AND step_key = $2";
    pub const TIMERS_OF_PORTFOLIO: &str = "SELECT portfolio_id, step_key, due_at, attempts, last_error, \
         waiting_since, polls, stall_recorded FROM process_timers WHERE portfolio_id = $1 ORDER BY step_key";
    pub const DUE_PORTFOLIOS: &str = "SELECT DISTINCT portfolio_id FROM process_timers \
         WHERE due_at <= $1 ORDER BY portfolio_id";
    pub const ALL_TIMERS: &str = "SELECT portfolio_id, step_key, due_at, attempts, last_error, \
         waiting_since, polls, stall_recorded FROM process_timers ORDER BY due_at, portfolio_id, step_key";
    /// Taken only when free, lapsed, or already ours. Under READ COMMITTED, `ON CONFLICT DO UPDATE ... WHERE`
    /// locks the conflicting row and re-checks the condition on its newest version, so of two instances
    /// racing for a lapsed lease exactly one updates it.
    pub const HOLD_LEASE: &str = "INSERT INTO process_lease (name, holder, expires_at, acquired_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
         acquired_at = CASE WHEN process_lease.holder = excluded.holder \
                            THEN process_lease.acquired_at ELSE excluded.acquired_at END \
         WHERE process_lease.holder = excluded.holder OR process_lease.expires_at <= $4";
    pub const RELEASE_LEASE: &str = "DELETE FROM process_lease WHERE name = $1 AND holder = $2";
    pub const CURRENT_LEASE: &str =
        "SELECT holder, expires_at, acquired_at FROM process_lease WHERE name = $1";
}
