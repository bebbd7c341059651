//! Durable timers in the log's database (table `process_timers`, migrated with its own migrations table), on
//! either backend; the statements are in `sql.rs`.

use chrono::{DateTime, Utc};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::stored::{micros, time_from_micros, unsigned};
use mmonboard_eventlog::{
    CompanionOptions, CompanionPool, CompanionTables, on_backend, open_companion_tables,
};

use crate::ProcessError;
use crate::sql;

const MIGRATIONS_TABLE: &str = "_mmonboard_process_migrations";
/// The timers' table (persisted: never rename).
const TABLE: &str = "process_timers";

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

/// The timers table, on either backend.
#[derive(Clone)]
pub struct TimerStore {
    pool: CompanionPool,
}

/// A `process_timers` row as stored.
#[derive(sqlx::FromRow)]
struct TimerRecord {
    portfolio_id: String,
    step_key: String,
    due_at: i64,
    attempts: i64,
    last_error: Option<String>,
    waiting_since: Option<i64>,
    polls: i64,
    stall_recorded: bool,
}

impl TimerStore {
    /// Opens the timers in the log's database at `url` and migrates them (with the lease beside them).
    pub async fn open(url: &str) -> Result<Self, ProcessError> {
        // Durable: a timer is a promise to come back; losing one to a power cut would stall a flow.
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
        Ok(Self { pool })
    }

    /// The process manager's lease, held as `holder`, in the same tables.
    pub fn lease(&self, holder: impl Into<String>) -> crate::Lease {
        crate::Lease::new(self.pool.clone(), holder.into())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Set (or move) the deadline of one step.
    pub async fn set(&self, timer: &Timer, now: DateTime<Utc>) -> Result<(), ProcessError> {
        // The same parameters, in `SET_TIMER`'s order, on either backend's query.
        macro_rules! set_timer {
            ($statement:expr) => {
                sqlx::query($statement)
                    .bind(timer.portfolio_id.as_str())
                    .bind(&timer.step_key)
                    .bind(micros(timer.due_at))
                    .bind(i64::from(timer.attempts))
                    .bind(timer.last_error.as_deref())
                    .bind(micros(now))
                    .bind(timer.waiting_since.map(micros))
                    .bind(i64::from(timer.polls))
                    .bind(timer.stall_recorded)
            };
        }
        match &self.pool {
            // The write lock first (see `Lease::try_hold`): SQLite refuses an upsert's read-to-write upgrade at
            // once when another connection committed in between.
            CompanionPool::Sqlite(pool) => {
                let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
                set_timer!(sql::sqlite::SET_TIMER)
                    .execute(&mut *transaction)
                    .await?;
                transaction.commit().await?;
            }
            CompanionPool::Postgres(pool) => {
                set_timer!(sql::postgres::SET_TIMER).execute(pool).await?;
            }
        }
        Ok(())
    }

    pub async fn remove(
        &self,
        portfolio_id: &PortfolioId,
        step_key: &str,
    ) -> Result<(), ProcessError> {
        on_backend!(&self.pool, REMOVE_TIMER => |statement, pool| {
            sqlx::query(statement)
                .bind(portfolio_id.as_str())
                .bind(step_key)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every pending timer of one portfolio.
    pub async fn of_portfolio(
        &self,
        portfolio_id: &PortfolioId,
    ) -> Result<Vec<Timer>, ProcessError> {
        let records: Vec<TimerRecord> = on_backend!(&self.pool, TIMERS_OF_PORTFOLIO => |statement, pool| {
            sqlx::query_as(statement)
                .bind(portfolio_id.as_str())
                .fetch_all(pool)
                .await?
        });
        records.into_iter().map(timer_of).collect()
    }

    /// The portfolios with a timer due at `now`.
    pub async fn due(&self, now: DateTime<Utc>) -> Result<Vec<PortfolioId>, ProcessError> {
        let ids: Vec<String> = on_backend!(&self.pool, DUE_PORTFOLIOS => |statement, pool| {
            sqlx::query_scalar(statement)
                .bind(micros(now))
                .fetch_all(pool)
                .await?
        });
        ids.iter().map(|id| portfolio_id(id)).collect()
    }

    /// Every pending timer, soonest first: for status screens and tests.
    pub async fn all(&self) -> Result<Vec<Timer>, ProcessError> {
        let records: Vec<TimerRecord> = on_backend!(&self.pool, ALL_TIMERS => |statement, pool| {
            sqlx::query_as(statement).fetch_all(pool).await?
        });
        records.into_iter().map(timer_of).collect()
    }
}

fn portfolio_id(id: &str) -> Result<PortfolioId, ProcessError> {
    PortfolioId::parse(id).map_err(|error| ProcessError::Corrupt(format!("{TABLE}: {error}")))
}

fn timer_of(record: TimerRecord) -> Result<Timer, ProcessError> {
    Ok(Timer {
        portfolio_id: portfolio_id(&record.portfolio_id)?,
        step_key: record.step_key,
        due_at: time_from_micros(TABLE, "due_at", record.due_at)?,
        attempts: unsigned(TABLE, "attempts", record.attempts)?,
        last_error: record.last_error,
        waiting_since: record
            .waiting_since
            .map(|micros| time_from_micros(TABLE, "waiting_since", micros))
            .transpose()?,
        polls: unsigned(TABLE, "polls", record.polls)?,
        stall_recorded: record.stall_recorded,
    })
}
