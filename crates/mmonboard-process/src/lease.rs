//! One active process manager per database (table `process_lease`, on either backend).
//!
//! Every `serve` replica runs a process manager, but only the holder of the lease follows the log and calls
//! Meta; the others stand by and try for it every [`LeaseOptions::renew_every`]. The holder renews its lease at
//! that interval, also while a step waits on Meta, and releases it at shutdown, so a standby takes over at its
//! next try (within `renew_every`); a holder that dies lets it lapse, and a standby takes it within `ttl` plus
//! `renew_every`. The lease runs on its own clock (real time, also in the accelerated demo), injected so that
//! tests move it by hand.
//!
//! A holder acts only until one renewal interval before its lease could be taken: one that cannot renew (its
//! database stalls, its process is paused) drops the step in flight and stands by, as a crash would. So two
//! instances overlap at most by a request already on its way to Meta. Even then the log stays right: the
//! derived command ids, the read before every write and the terms intent marker record each step once.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_eventlog::stored::{micros, time_from_micros};
use mmonboard_eventlog::{CompanionPool, on_backend};

use crate::ProcessError;
use crate::sql;

/// The lease's row: one process manager per log.
const LEASE: &str = "process_manager";

/// The longest lease accepted.
const MAX_TTL: Duration = Duration::from_secs(3600);

/// How long a lease lasts and how often it is renewed (or, by a standby, tried for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    pub ttl: Duration,
    pub renew_every: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

impl LeaseOptions {
    /// A lease must be renewed well before it lapses.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_every.is_zero() || self.renew_every.saturating_mul(2) > self.ttl {
            return Err(format!(
                "the process lease must be renewed at least twice per lifetime: renew every {:?}, ttl {:?}",
                self.renew_every, self.ttl
            ));
        }
        if self.ttl > MAX_TTL {
            return Err(format!(
                "the process lease ttl {:?} is longer than {MAX_TTL:?}: a dead holder would block its standbys that long",
                self.ttl
            ));
        }
        Ok(())
    }
}

/// Who holds the lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub expires_at: DateTime<Utc>,
    pub acquired_at: DateTime<Utc>,
}

/// One named lease (a row of `process_lease`), for one would-be holder, on either backend.
#[derive(Clone)]
pub struct Lease {
    pool: CompanionPool,
    name: Cow<'static, str>,
    holder: String,
}

/// A `process_lease` row as stored.
#[derive(sqlx::FromRow)]
struct LeaseRecord {
    holder: String,
    expires_at: i64,
    acquired_at: i64,
}

impl Lease {
    pub(crate) fn new(pool: CompanionPool, holder: String) -> Self {
        Self {
            pool,
            name: Cow::Borrowed(LEASE),
            holder,
        }
    }

    /// The lease's name: its row in `process_lease`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This instance's name in the lease table.
    pub fn holder_name(&self) -> &str {
        &self.holder
    }

    /// Take the lease, or renew it, for `ttl` from `now`: true when this instance holds it afterwards. It is
    /// taken only when free, lapsed, or already ours: one statement, so two instances never both win.
    pub async fn try_hold(&self, now: DateTime<Utc>, ttl: Duration) -> Result<bool, ProcessError> {
        let expires_at = now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        let affected = match &self.pool {
            // The write lock first: an autocommit upsert reads before it writes, and SQLite refuses that
            // upgrade at once (SQLITE_BUSY_SNAPSHOT) when another connection committed in between.
            CompanionPool::Sqlite(pool) => {
                let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
                let affected = sqlx::query(sql::sqlite::HOLD_LEASE)
                    .bind(self.name.as_ref())
                    .bind(&self.holder)
                    .bind(micros(expires_at))
                    .bind(micros(now))
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected();
                transaction.commit().await?;
                affected
            }
            CompanionPool::Postgres(pool) => sqlx::query(sql::postgres::HOLD_LEASE)
                .bind(self.name.as_ref())
                .bind(&self.holder)
                .bind(micros(expires_at))
                .bind(micros(now))
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(affected == 1)
    }

    /// Give the lease up (at shutdown), if this instance holds it, so that a standby takes over at once.
    pub async fn release(&self) -> Result<(), ProcessError> {
        on_backend!(&self.pool, RELEASE_LEASE => |statement, pool| {
            sqlx::query(statement)
                .bind(self.name.as_ref())
                .bind(&self.holder)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The current holder, whether or not its lease has lapsed.
    pub async fn current(&self) -> Result<Option<LeaseHolder>, ProcessError> {
        let record: Option<LeaseRecord> = on_backend!(&self.pool, CURRENT_LEASE => |statement, pool| {
            sqlx::query_as(statement)
                .bind(self.name.as_ref())
                .fetch_optional(pool)
                .await?
        });
        record
            .map(|record| {
                Ok(LeaseHolder {
                    holder: record.holder,
                    expires_at: time_from_micros("process_lease", "expires_at", record.expires_at)?,
                    acquired_at: time_from_micros(
                        "process_lease",
                        "acquired_at",
                        record.acquired_at,
                    )?,
                })
            })
            .transpose()
    }
}

impl crate::TimerStore {
    /// A lease of another name than the process manager's, in the same table, for another component that
    /// must run once per database (the outbox relay: `relay`). The process manager's own stays
    /// [`crate::TimerStore::lease`].
    pub fn lease_named(
        &self,
        name: impl Into<String>,
        holder: impl Into<String>,
    ) -> Result<Lease, ProcessError> {
        let name = name.into();
        if name.trim().is_empty() || name == LEASE {
            return Err(ProcessError::Corrupt(format!(
                "a named lease needs a non-blank name other than {LEASE:?}, not {name:?}"
            )));
        }
        let mut lease = self.lease(holder);
        lease.name = Cow::Owned(name);
        Ok(lease)
    }
}
