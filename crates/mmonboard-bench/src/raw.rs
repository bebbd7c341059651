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
