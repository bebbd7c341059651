//! The benchmark on PostgreSQL: a temporary database on the server `--database` names (created for the run
//! and dropped after it), the raw PostgreSQL baselines measured in the same run (single-row insert transactions
//! at `synchronous_commit=on` on a held connection; a sequential SELECT decoding every JSON payload), and the
//! workloads through the same `EventLog` the service uses.

use std::str::FromStr;
use std::time::Instant;

use futures_util::TryStreamExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

use crate::BenchError;
use crate::raw::payload;

/// A database of the benchmark's own on the server, dropped by [`TemporaryDatabase::drop_now`].
pub(crate) struct TemporaryDatabase {
    server: PgConnectOptions,
    name: String,
    pub url: String,
}

impl TemporaryDatabase {
    pub(crate) async fn create(server_url: &str) -> Result<Self, BenchError> {
        let server = PgConnectOptions::from_str(server_url)?;
        let name = format!("mmonboard_bench_{}", Uuid::now_v7().simple());
        let mut admin = server.connect().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let url = server.clone().database(&name).to_url_lossy().to_string();
        Ok(Self { server, name, url })
    }

    pub(crate) async fn drop_now(self) -> Result<(), BenchError> {
        let mut admin = self.server.connect().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok(())
    }
}

async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    let mut connection = PgConnectOptions::from_str(url)?.connect().await?;
    // The durability the log runs with: a commit returns once it is flushed to the WAL.
    sqlx::query("SET synchronous_commit = on")
        .execute(&mut connection)
        .await?;
    Ok(connection)
}

const CREATE: &str = "CREATE TABLE raw (id BIGINT PRIMARY KEY, stream_id TEXT NOT NULL, \
     version BIGINT NOT NULL, payload TEXT NOT NULL)";

/// Single-row insert transactions on one held connection: rows per second.
pub(crate) async fn insert_rate(url: &str, rows: usize) -> Result<f64, sqlx::Error> {
    let mut connection = connect(url).await?;
    sqlx::query(CREATE).execute(&mut connection).await?;
    let payloads: Vec<String> = (0..rows).map(payload).collect();
    let started = Instant::now();
    for (index, payload) in payloads.iter().enumerate() {
        let mut transaction = connection.begin().await?;
        sqlx::query("INSERT INTO raw (id, stream_id, version, payload) VALUES ($1, $2, $3, $4)")
            .bind(index as i64 + 1)
            .bind("raw-1")
            .bind(index as i64 + 1)
            .bind(payload)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE raw")
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(rate)
}

/// A plain sequential SELECT of every row, decoding each payload: rows per second.
pub(crate) async fn select_rate(url: &str, rows: usize) -> Result<f64, sqlx::Error> {
    let mut connection = connect(url).await?;
    sqlx::query(CREATE).execute(&mut connection).await?;
    for chunk_start in (0..rows).step_by(5_000) {
        let ids: Vec<i64> = (chunk_start..rows.min(chunk_start + 5_000))
            .map(|index| index as i64 + 1)
            .collect();
        let payloads: Vec<String> = (chunk_start..rows.min(chunk_start + 5_000))
            .map(payload)
            .collect();
        sqlx::query(
            "INSERT INTO raw (id, stream_id, version, payload) \
             SELECT id, 'raw-1', id, payload FROM UNNEST($1::bigint[], $2::text[]) AS t(id, payload)",
        )
        .bind(ids)
        .bind(payloads)
        .execute(&mut connection)
        .await?;
    }
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
    sqlx::query("DROP TABLE raw")
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(rate)
}

/// The log's own rows read raw: one sequential SELECT of every column of `events` in global order on one held
/// connection, each value taken as the wire sends it (no per-value type check: the bytes of the integers,
/// the text, the id and the hash, each text checked as UTF-8) and each payload decoded as JSON. What one
/// connection reading those rows costs before any of the log's decoding, checks or folding: rows per second.
pub(crate) async fn read_log_rate(url: &str) -> Result<f64, sqlx::Error> {
    use sqlx::Row;
    let mut connection = connect(url).await?;
    let started = Instant::now();
    let mut decoded = 0usize;
    let mut rows = sqlx::query(
        "SELECT global_position, stream_id, stream_version, event_id, event_type, schema_version, \
         payload, metadata, recorded_at, hash FROM events ORDER BY global_position",
    )
    .fetch(&mut connection);
    while let Some(row) = rows.try_next().await? {
        let mut touched = 0usize;
        for column in [0, 2, 5, 8] {
            let bytes = row.try_get_raw(column)?.as_bytes().map_err(protocol)?;
            let bytes = <[u8; 8]>::try_from(bytes)
                .map_err(|_| sqlx::Error::Protocol(format!("column {column} is not 8 bytes")))?;
            touched = touched.wrapping_add(i64::from_be_bytes(bytes) as usize);
        }
        for column in [1, 4, 7] {
            let bytes = row.try_get_raw(column)?.as_bytes().map_err(protocol)?;
            touched += std::str::from_utf8(bytes).map_err(protocol)?.len();
        }
        for column in [3, 9] {
            touched += row.try_get_raw(column)?.as_bytes().map_err(protocol)?.len();
        }
        std::hint::black_box(touched);
        let payload = std::str::from_utf8(row.try_get_raw(6)?.as_bytes().map_err(protocol)?)
            .map_err(protocol)?;
        let value: serde_json::Value = serde_json::from_str(payload).map_err(protocol)?;
        decoded += usize::from(value.is_object());
    }
    drop(rows);
    let rate = decoded as f64 / started.elapsed().as_secs_f64();
    connection.close().await?;
    Ok(rate)
}

/// A value the raw read could not take, as sqlx reports a malformed message.
fn protocol(error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Protocol(error.to_string())
}
