//! Aggregate snapshots beside the log (table `aggregate_snapshots`, its own migrations table): for each stream
//! and each fingerprint of the code that folded it, the latest folded state the application stored, with the
//! stream version it folds and the id of the event at that version. The log knows nothing of what the bytes
//! mean; the application serialises and restores them and checks them against the log before trusting them.
//!
//! A snapshot is only a cache: rows are replaced in place, never needed for correctness, and may all be
//! deleted at any time. One seam, both backends: the pool is the backend's, the SQL is in [`sql`].

use chrono::Utc;
use uuid::Uuid;

use crate::companion::{CompanionOptions, CompanionPool, CompanionTables, open_companion_tables};
use crate::error::StoreError;
use crate::model::StreamId;
use crate::on_backend;

/// The snapshots' own migrations table: persisted, never renamed.
pub const SNAPSHOT_MIGRATIONS_TABLE: &str = "_mmonboard_snapshot_migrations";

/// One stored snapshot of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// How many of the stream's events `state` folds (at least 1).
    pub stream_version: u64,
    /// The id of the event at `stream_version`: a snapshot whose event is not the log's is not used.
    pub last_event_id: Uuid,
    /// The folded state as the application serialised it.
    pub state: Vec<u8>,
}

/// The snapshots kept in the log's database, on either backend.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    pool: CompanionPool,
}

impl SnapshotStore {
    /// Opens the snapshots of the log at `url` and migrates their table. The log must exist (on SQLite the
    /// file is never created here).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        // Not durable on SQLite (NORMAL, not FULL): a snapshot lost to a power cut is a cache miss.
        let pool = open_companion_tables(
            url,
            CompanionTables {
                migrations_table: SNAPSHOT_MIGRATIONS_TABLE,
                sqlite: sqlx::migrate!("./snapshot-migrations/sqlite"),
                postgres: sqlx::migrate!("./snapshot-migrations/postgres"),
            },
            CompanionOptions {
                max_connections: 2,
                durable: false,
            },
        )
        .await?;
        Ok(Self { pool })
    }

    /// The snapshot of `stream_id` written under `fingerprint`, if there is one.
    pub async fn load(
        &self,
        stream_id: &StreamId,
        fingerprint: &str,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let row: Option<(i64, String, Vec<u8>)> = on_backend!(&self.pool, LOAD => |statement, pool| {
            sqlx::query_as(statement)
                .bind(stream_id.as_str())
                .bind(fingerprint)
                .fetch_optional(pool)
                .await?
        });
        let Some((stream_version, last_event_id, state)) = row else {
            return Ok(None);
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            global_position: 0,
            reason: format!("snapshot of stream {stream_id}: {reason}"),
        };
        let stream_version = u64::try_from(stream_version)
            .ok()
            .filter(|version| *version > 0)
            .ok_or_else(|| corrupt(format!("stream version {stream_version}")))?;
        let last_event_id = Uuid::try_parse(&last_event_id)
            .map_err(|error| corrupt(format!("event id {last_event_id:?}: {error}")))?;
        Ok(Some(StoredSnapshot {
            stream_version,
            last_event_id,
            state,
        }))
    }

    /// Store `snapshot` of `stream_id` under `fingerprint`, unless a snapshot of a later version is stored
    /// there already (two writers racing leave the newer one).
    pub async fn save(
        &self,
        stream_id: &StreamId,
        fingerprint: &str,
        snapshot: &StoredSnapshot,
    ) -> Result<(), StoreError> {
        let version = i64::try_from(snapshot.stream_version)
            .ok()
            .filter(|version| *version > 0)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "a snapshot's stream version must be between 1 and {}, not {}",
                    i64::MAX,
                    snapshot.stream_version
                ))
            })?;
        if fingerprint.is_empty() {
            return Err(StoreError::Invalid(
                "a snapshot needs the fingerprint of the code that folded it".to_owned(),
            ));
        }
        let event_id = snapshot.last_event_id.hyphenated().to_string();
        let now = Utc::now().timestamp_micros();
        match &self.pool {
            CompanionPool::Sqlite(pool) => {
                // The write lock first: an upsert reads before it writes, and SQLite refuses a read-to-write
                // upgrade at once when another connection committed in between (see checkpoints.rs).
                let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(sql::sqlite::SAVE)
                    .bind(stream_id.as_str())
                    .bind(fingerprint)
                    .bind(version)
                    .bind(event_id)
                    .bind(snapshot.state.as_slice())
                    .bind(now)
                    .execute(&mut *transaction)
                    .await?;
                transaction.commit().await?;
            }
            CompanionPool::Postgres(pool) => {
                sqlx::query(sql::postgres::SAVE)
                    .bind(stream_id.as_str())
                    .bind(fingerprint)
                    .bind(version)
                    .bind(event_id)
                    .bind(snapshot.state.as_slice())
                    .bind(now)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Delete every snapshot; how many there were.
    pub async fn clear(&self) -> Result<u64, StoreError> {
        Ok(on_backend!(&self.pool, CLEAR => |statement, pool| {
            sqlx::query(statement).execute(pool).await?.rows_affected()
        }))
    }

    /// Delete the snapshots written under any fingerprint but `fingerprint` (by other builds); how many.
    pub async fn remove_other_fingerprints(&self, fingerprint: &str) -> Result<u64, StoreError> {
        Ok(
            on_backend!(&self.pool, REMOVE_OTHER_FINGERPRINTS => |statement, pool| {
                sqlx::query(statement)
                    .bind(fingerprint)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }),
        )
    }

    /// How many snapshots are stored under `fingerprint`.
    pub async fn count(&self, fingerprint: &str) -> Result<u64, StoreError> {
        let count: i64 = on_backend!(&self.pool, COUNT => |statement, pool| {
            sqlx::query_scalar(statement)
                .bind(fingerprint)
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The statements, per backend (table and columns are persisted: never rename).
mod sql {
    pub(super) mod sqlite {
        pub const LOAD: &str = "SELECT stream_version, last_event_id, state FROM aggregate_snapshots \
             WHERE stream_id = ?1 AND fingerprint = ?2";
        pub const SAVE: &str = "INSERT INTO aggregate_snapshots \
             (stream_id, fingerprint, stream_version, last_event_id, state, taken_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (stream_id, fingerprint) DO UPDATE SET \
             stream_version = excluded.stream_version, last_event_id = excluded.last_event_id, \
             state = excluded.state, taken_at = excluded.taken_at \
             WHERE excluded.stream_version > aggregate_snapshots.stream_version";
        pub const CLEAR: &str = "DELETE FROM aggregate_snapshots";
        pub const REMOVE_OTHER_FINGERPRINTS: &str =
            "DELETE FROM aggregate_snapshots WHERE fingerprint <> ?1";
        pub const COUNT: &str = "SELECT COUNT(*) FROM aggregate_snapshots WHERE fingerprint = ?1";
    }

    pub(super) mod postgres {
        pub const LOAD: &str = "SELECT stream_version, last_event_id, state FROM aggregate_snapshots \
             WHERE stream_id = $1 AND fingerprint = $2";
        pub const SAVE: &str = "INSERT INTO aggregate_snapshots \
             (stream_id, fingerprint, stream_version, last_event_id, state, taken_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream_id, fingerprint) DO UPDATE SET \
             stream_version = excluded.stream_version, last_event_id = excluded.last_event_id, \
             state = excluded.state, taken_at = excluded.taken_at \
             WHERE excluded.stream_version > aggregate_snapshots.stream_version";
        pub const CLEAR: &str = "DELETE FROM aggregate_snapshots";
        pub const REMOVE_OTHER_FINGERPRINTS: &str =
            "DELETE FROM aggregate_snapshots WHERE fingerprint <> $1";
        pub const COUNT: &str = "SELECT COUNT(*) FROM aggregate_snapshots WHERE fingerprint = $1";
    }
}
