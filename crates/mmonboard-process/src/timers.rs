//! Durable timers in the log's database (table `process_timers`, migrated with its own migrations table).

use chrono::{DateTime, Utc};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::{CompanionOptions, CompanionPool, CompanionTables, open_companion_tables};
use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use crate::ProcessError;

const MIGRATIONS_TABLE: &str = "_mmonboard_process_migrations";

/// One pending deadline of one portfolio's step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub portfolio_id: PortfolioId,
    pub step_key: String,
    pub due_at: DateTime<Utc>,
    /// Consecutive failures of Meta for this step; 0 when the step merely waits.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Since when the step has been waiting for Meta (not failing: Meta answers, but is not there yet).
    pub waiting_since: Option<DateTime<Utc>>,
    /// How many times it looked while waiting.
    pub polls: u32,
    /// The step's stall was recorded in the portfolio's log.
    pub stall_recorded: bool,
}

/// The timers table.
#[derive(Clone)]
pub struct TimerStore {
    pool: SqlitePool,
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl TimerStore {
    /// Opens the timers in the log's database at `url` and migrates them.
    pub async fn open(url: &str) -> Result<Self, ProcessError> {
        // FULL: a timer is a promise to come back; losing one to a power cut would stall a flow.
        let pool = open_companion_tables(
            url,
            CompanionTables {
                migrations_table: MIGRATIONS_TABLE,
                sqlite: sqlx::migrate!("./migrations/sqlite"),
                postgres: sqlx::migrate!("./migrations/postgres"),
            },
            CompanionOptions {
                max_connections: 2,
                durable: true,
            },
        )
        .await?;
        let CompanionPool::Sqlite(pool) = pool else {
            return Err(ProcessError::Corrupt(
                "process tables on PostgreSQL are not wired yet".into(),
            ));
        };
        Ok(Self { pool })
    }

    /// The pool of the process manager's tables (the lease lives beside the timers).
    pub(crate) fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Set (or move) the deadline of one step.
    pub async fn set(&self, timer: &Timer, now: DateTime<Utc>) -> Result<(), ProcessError> {
        sqlx::query(
            "INSERT INTO process_timers \
             (portfolio_id, step_key, due_at, attempts, last_error, updated_at, waiting_since, polls, stall_recorded) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (portfolio_id, step_key) DO UPDATE SET due_at = excluded.due_at, \
             attempts = excluded.attempts, last_error = excluded.last_error, updated_at = excluded.updated_at, \
             waiting_since = excluded.waiting_since, polls = excluded.polls, \
             stall_recorded = excluded.stall_recorded",
        )
        .bind(timer.portfolio_id.as_str())
        .bind(&timer.step_key)
        .bind(micros(timer.due_at))
        .bind(i64::from(timer.attempts))
        .bind(timer.last_error.as_deref())
        .bind(micros(now))
        .bind(timer.waiting_since.map(micros))
        .bind(i64::from(timer.polls))
        .bind(timer.stall_recorded)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove(
        &self,
        portfolio_id: &PortfolioId,
        step_key: &str,
    ) -> Result<(), ProcessError> {
        sqlx::query("DELETE FROM process_timers WHERE portfolio_id = ? AND step_key = ?")
            .bind(portfolio_id.as_str())
            .bind(step_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every pending timer of one portfolio.
    pub async fn of_portfolio(
        &self,
        portfolio_id: &PortfolioId,
    ) -> Result<Vec<Timer>, ProcessError> {
        let rows =
            sqlx::query("SELECT * FROM process_timers WHERE portfolio_id = ? ORDER BY step_key")
                .bind(portfolio_id.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(timer_of).collect()
    }

    /// The portfolios with a timer due at `now`.
    pub async fn due(&self, now: DateTime<Utc>) -> Result<Vec<PortfolioId>, ProcessError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT portfolio_id FROM process_timers WHERE due_at <= ? ORDER BY portfolio_id",
        )
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|id| {
                PortfolioId::parse(id)
                    .map_err(|error| ProcessError::Corrupt(format!("process_timers: {error}")))
            })
            .collect()
    }

    /// Every pending timer, soonest first: for status screens and tests.
    pub async fn all(&self) -> Result<Vec<Timer>, ProcessError> {
        let rows =
            sqlx::query("SELECT * FROM process_timers ORDER BY due_at, portfolio_id, step_key")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(timer_of).collect()
    }
}

fn timer_of(row: &sqlx::sqlite::SqliteRow) -> Result<Timer, ProcessError> {
    let portfolio_id: String = row.try_get("portfolio_id")?;
    let attempts: i64 = row.try_get("attempts")?;
    let polls: i64 = row.try_get("polls")?;
    let waiting_since: Option<i64> = row.try_get("waiting_since")?;
    Ok(Timer {
        portfolio_id: PortfolioId::parse(&portfolio_id)
            .map_err(|error| ProcessError::Corrupt(format!("process_timers: {error}")))?,
        step_key: row.try_get("step_key")?,
        due_at: from_micros(row.try_get("due_at")?),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error")?,
        waiting_since: waiting_since.map(from_micros),
        polls: u32::try_from(polls).unwrap_or(u32::MAX),
        stall_recorded: row.try_get("stall_recorded")?,
    })
}
