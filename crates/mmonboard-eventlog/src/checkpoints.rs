//! Durable positions of named subscribers (table `subscription_checkpoints`, created by the log's own
//! migrations on either backend), so a subscriber resumes where it acknowledged. One seam, both backends: the
//! pool is the backend's, the SQL is in [`sql`], one module per backend.

use chrono::Utc;

use crate::backend::Backend;
use crate::companion::CompanionPool;
use crate::error::StoreError;

/// The saved positions of named subscribers in the log's database.
#[derive(Clone, Debug)]
pub struct Checkpoints {
    pool: CompanionPool,
}

impl Checkpoints {
    /// Opens the checkpoints of the log at `url`. The log must have been opened once (it creates the table).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = match Backend::of_url(url)? {
            Backend::Sqlite => CompanionPool::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(crate::companion::sqlite_options(url, true)?)
                    .await?,
            ),
            Backend::Postgres => CompanionPool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(crate::companion::postgres_options(url)?)
                    .await?,
            ),
        };
        Ok(Self { pool })
    }

    /// The saved position of `name`, 0 when it never saved one.
    pub async fn load(&self, name: &str) -> Result<u64, StoreError> {
        let position: Option<i64> = match &self.pool {
            CompanionPool::Sqlite(pool) => {
                sqlx::query_scalar(sql::sqlite::LOAD)
                    .bind(name)
                    .fetch_optional(pool)
                    .await?
            }
            CompanionPool::Postgres(pool) => {
                sqlx::query_scalar(sql::postgres::LOAD)
                    .bind(name)
                    .fetch_optional(pool)
                    .await?
            }
        };
        match position {
            None => Ok(0),
            Some(position) => u64::try_from(position).map_err(|_| StoreError::Corrupt {
                global_position: 0,
                reason: format!("subscription checkpoint {name:?} holds position {position}"),
            }),
        }
    }

    /// Remember that `name` is done with everything up to `position`.
    pub async fn save(&self, name: &str, position: u64) -> Result<(), StoreError> {
        let position = i64::try_from(position)
            .map_err(|_| StoreError::Invalid(format!("position {position} is out of range")))?;
        let now = Utc::now().timestamp_micros();
        match &self.pool {
            CompanionPool::Sqlite(pool) => {
                // Take the write lock first: an autocommit upsert reads before it writes, and when another
                // connection commits in between, SQLite refuses the upgrade at once (SQLITE_BUSY_SNAPSHOT)
                // without waiting for the busy timeout. BEGIN IMMEDIATE waits for the lock instead.
                let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(sql::sqlite::SAVE)
                    .bind(name)
                    .bind(position)
                    .bind(now)
                    .execute(&mut *transaction)
                    .await?;
                transaction.commit().await?;
            }
            CompanionPool::Postgres(pool) => {
                sqlx::query(sql::postgres::SAVE)
                    .bind(name)
                    .bind(position)
                    .bind(now)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The statements, per backend (table and columns are persisted: never rename).
mod sql {
    pub(super) mod sqlite {
        pub const LOAD: &str = crate::checkpoint_sql!(sqlite, load, "subscription_checkpoints");
        pub const SAVE: &str = crate::checkpoint_sql!(sqlite, save, "subscription_checkpoints");
    }

    pub(super) mod postgres {
        pub const LOAD: &str = crate::checkpoint_sql!(postgres, load, "subscription_checkpoints");
        pub const SAVE: &str = crate::checkpoint_sql!(postgres, save, "subscription_checkpoints");
    }
}

/// The statements of a table of named positions (`name` its key, `position`, `updated_at` in microseconds)
/// for one backend: `load` takes the name, `save` the name, the position and the time (an upsert). The
/// subscriptions' checkpoints (`subscription_checkpoints`) and the read models' (`read_model_checkpoints`,
/// saved in the same transaction as their rows) are such tables.
///
/// ```text
/// const SAVE_CHECKPOINT: &str = checkpoint_sql!(postgres, save, "read_model_checkpoints");
/// ```
#[macro_export]
macro_rules! checkpoint_sql {
    (sqlite, load, $table:literal) => {
        concat!("SELECT position FROM ", $table, " WHERE name = ?1")
    };
    (sqlite, save, $table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (name, position, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET ",
            "position = excluded.position, updated_at = excluded.updated_at"
        )
    };
    (postgres, load, $table:literal) => {
        concat!("SELECT position FROM ", $table, " WHERE name = $1")
    };
    (postgres, save, $table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (name, position, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET ",
            "position = excluded.position, updated_at = excluded.updated_at"
        )
    };
}
