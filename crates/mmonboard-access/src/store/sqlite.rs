//! The token store's SQL on SQLite.

use sqlx::SqlitePool;

use super::Row;

pub(super) async fn insert(pool: &SqlitePool, row: &Row) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO access_tokens (name, role, token_hash, created_at_us, expires_at_us) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&row.0)
    .bind(&row.1)
    .bind(&row.2)
    .bind(row.3)
    .bind(row.4)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn select_all(pool: &SqlitePool) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, role, token_hash, created_at_us, expires_at_us, revoked_at_us, last_used_at_us \
         FROM access_tokens ORDER BY created_at_us, name",
    )
    .fetch_all(pool)
    .await
}

/// Marks the token revoked; the number of rows changed (0 when unknown or revoked already).
pub(super) async fn revoke(pool: &SqlitePool, name: &str, at_us: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_tokens SET revoked_at_us = ? WHERE name = ? AND revoked_at_us IS NULL",
    )
    .bind(at_us)
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn exists(pool: &SqlitePool, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM access_tokens WHERE name = ?")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(found.is_some())
}

pub(super) async fn record_uses(
    pool: &SqlitePool,
    uses: &[(String, i64)],
) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    for (name, at_us) in uses {
        sqlx::query(
            "UPDATE access_tokens SET last_used_at_us = MAX(COALESCE(last_used_at_us, ?2), ?2) \
             WHERE name = ?1",
        )
        .bind(name)
        .bind(at_us)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await
}
