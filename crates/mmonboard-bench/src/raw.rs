//! The raw baselines: the same kind of rows through plain sqlx, with no event-sourcing library in the way and
//! the same journal mode and durability as the log.

use std::path::Path;
use std::time::Instant;

use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};

/// A payload of the size the workloads store (~220 bytes).
pub(crate) fn payload(index: usize) -> String {
    format!(
        r#"{{"waba_id":"104000000{index:06}","template_id":"107000000{index:06}","name":"black_friday_offer","language":"pt_BR","category":"MARKETING","sync_window_ends_at":"2026-11-25T10:15:00Z","at":"2026-11-25T10:00:00Z"}}"#
    )
}

async fn connect(path: &Path) -> Result<SqliteConnection, sqlx::Error> {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
}

const CREATE: &str = "CREATE TABLE raw (id INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, version INTEGER NOT NULL, payload TEXT NOT NULL)";

/// Single-row insert transactions on one held connection: rows per second.
pub(crate) async fn insert_rate(path: &Path, rows: usize) -> Result<f64, sqlx::Error> {
    let mut connection = connect(path).await?;
    sqlx::query(CREATE).execute(&mut connection).await?;
    let payloads: Vec<String> = (0..rows).map(payload).collect();
    let started = Instant::now();
    for (index, payload) in payloads.iter().enumerate() {
        let mut transaction = connection.begin().await?;
        sqlx::query("INSERT INTO raw (stream_id, version, payload) VALUES (?, ?, ?)")
            .bind("raw-1")
            .bind(index as i64 + 1)
            .bind(payload)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    connection.close().await?;
    Ok(rate)
}

/// A plain sequential SELECT of every row, decoding each payload: rows per second.
pub(crate) async fn select_rate(path: &Path, rows: usize) -> Result<f64, sqlx::Error> {
    let mut connection = connect(path).await?;
    sqlx::query(CREATE).execute(&mut connection).await?;
    let mut transaction = connection.begin().await?;
    for chunk_start in (0..rows).step_by(5_000) {
        let chunk: Vec<String> = (chunk_start..rows.min(chunk_start + 5_000))
            .map(payload)
            .collect();
        let json = serde_json::to_string(&chunk)
            .map_err(|error| sqlx::Error::Protocol(error.to_string()))?;
        sqlx::query("INSERT INTO raw (stream_id, version, payload) SELECT 'raw-1', key + 1, value FROM json_each(?)")
            .bind(json)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    let started = Instant::now();
    let mut decoded = 0usize;
    let mut rows_stream = sqlx::query_as::<_, (i64, String, i64, String)>(
        "SELECT id, stream_id, version, payload FROM raw ORDER BY id",
    )
    .fetch(&mut connection);
    while let Some((_, _, _, payload)) = rows_stream.try_next().await? {
        let value: serde_json::Value = serde_json::from_str(&payload)
            .map_err(|error| sqlx::Error::Protocol(error.to_string()))?;
        decoded += usize::from(value.is_object());
    }
    drop(rows_stream);
    let rate = decoded as f64 / started.elapsed().as_secs_f64();
    connection.close().await?;
    Ok(rate)
}

/// The physical read limit on SQLite: the log's own rows read through rusqlite on one connection, every
/// column borrowed from the row and each payload decoded as JSON, with no event-sourcing code in the way. One
/// connection is kept for every run (its page cache warm, as the log's readers keep theirs), opened as they
/// are (read-only, the same cache and memory map).
pub(crate) struct RusqliteRaw {
    connection: std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
}

/// One raw read: rows read and decoded, and how long it took.
pub(crate) struct RawRead {
    pub rows: usize,
    pub seconds: f64,
}

impl RawRead {
    pub(crate) fn rate(&self) -> f64 {
        self.rows as f64 / self.seconds
    }

    pub(crate) fn ms(&self) -> f64 {
        self.seconds * 1_000.0
    }
}

const RAW_COLUMNS: &str = "SELECT global_position, stream_id, stream_version, event_id, event_type, \
     schema_version, payload, metadata, recorded_at, hash FROM events";

fn raw_error(error: impl std::fmt::Display) -> crate::BenchError {
    crate::BenchError::Raw(error.to_string())
}

impl RusqliteRaw {
    pub(crate) fn open(log: &Path) -> Result<Self, crate::BenchError> {
        use rusqlite::OpenFlags;
        let connection = rusqlite::Connection::open_with_flags(
            log,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(raw_error)?;
        connection
            .execute_batch("PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536;")
            .map_err(raw_error)?;
        Ok(Self {
            connection: std::sync::Arc::new(std::sync::Mutex::new(connection)),
        })
    }

    /// Every event of the log in global order.
    pub(crate) async fn read_all(&self) -> Result<RawRead, crate::BenchError> {
        self.read(format!("{RAW_COLUMNS} ORDER BY global_position"), None)
            .await
    }

    /// Every event of one stream in version order.
    pub(crate) async fn read_stream(&self, stream_id: &str) -> Result<RawRead, crate::BenchError> {
        self.read(
            format!("{RAW_COLUMNS} WHERE stream_id = ?1 ORDER BY stream_version"),
            Some(stream_id.to_owned()),
        )
        .await
    }

    async fn read(
        &self,
        query: String,
        stream_id: Option<String>,
    ) -> Result<RawRead, crate::BenchError> {
        let connection = std::sync::Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let connection = connection
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let started = Instant::now();
            let mut statement = connection.prepare_cached(&query).map_err(raw_error)?;
            let mut rows = match &stream_id {
                Some(stream_id) => statement.query([stream_id]),
                None => statement.query([]),
            }
            .map_err(raw_error)?;
            let mut decoded = 0_usize;
            while let Some(row) = rows.next().map_err(raw_error)? {
                let mut touched = 0_usize;
                for column in [1, 3, 4, 7] {
                    touched += row
                        .get_ref(column)
                        .and_then(|value| Ok(value.as_str()?.len()))
                        .map_err(raw_error)?;
                }
                for column in [0, 2, 5, 8] {
                    touched += row
                        .get_ref(column)
                        .and_then(|value| Ok(value.as_i64()?))
                        .map_err(raw_error)? as usize;
                }
                touched += row
                    .get_ref(9)
                    .and_then(|value| Ok(value.as_blob()?.len()))
                    .map_err(raw_error)?;
                let payload = row
                    .get_ref(6)
                    .and_then(|value| Ok(value.as_str()?))
                    .map_err(raw_error)?;
                let value: serde_json::Value = serde_json::from_str(payload).map_err(raw_error)?;
                std::hint::black_box(touched);
                decoded += usize::from(value.is_object());
            }
            Ok(RawRead {
                rows: decoded,
                seconds: started.elapsed().as_secs_f64(),
            })
        })
        .await
        .map_err(|error| crate::BenchError::Raw(format!("the raw read thread failed: {error}")))?
    }
}
