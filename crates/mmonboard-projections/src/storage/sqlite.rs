//! The read models on SQLite. A batch's rows travel as JSON arrays that SQLite unpacks with `json_each`: one
//! statement per table for the whole batch, not one per row (each sqlx round trip costs more than a row).

use chrono::Utc;
use sqlx::sqlite::SqlitePool;

use super::{blockers_text, micros, position};
use crate::ProjectionError;
use crate::read_models::PortfolioRows;

pub(crate) const UPSERT_STATUSES: &str = "INSERT INTO read_onboarding_status \
     (portfolio_id, phase, stage, next_action, blocked_by, version, started_at, updated_at, last_position) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
     value ->> 7, value ->> 8 FROM json_each(?1) WHERE true \
     ON CONFLICT (portfolio_id) DO UPDATE SET phase = excluded.phase, stage = excluded.stage, \
     next_action = excluded.next_action, blocked_by = excluded.blocked_by, version = excluded.version, \
     started_at = excluded.started_at, updated_at = excluded.updated_at, last_position = excluded.last_position";
pub(crate) const DELETE_AD_ACCOUNTS: &str =
    "DELETE FROM read_ad_accounts WHERE portfolio_id IN (SELECT value FROM json_each(?1))";
pub(crate) const DELETE_TEMPLATES: &str =
    "DELETE FROM read_templates WHERE portfolio_id IN (SELECT value FROM json_each(?1))";
pub(crate) const INSERT_AD_ACCOUNTS: &str = "INSERT INTO read_ad_accounts \
     (portfolio_id, waba_id, ad_account_id, created_at, status) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?1)";
pub(crate) const INSERT_TEMPLATES: &str = "INSERT INTO read_templates (portfolio_id, template_id, waba_id, name, \
     language, category, changed_at, sync_window_ends_at, mirror_synced_at, last_activity_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
     value ->> 7, value ->> 8, value ->> 9 FROM json_each(?1)";
pub(crate) const SAVE_CHECKPOINT: &str =
    mmonboard_eventlog::checkpoint_sql!(sqlite, save, "read_model_checkpoints");
pub(crate) const CHECKPOINT: &str =
    mmonboard_eventlog::checkpoint_sql!(sqlite, load, "read_model_checkpoints");
pub(crate) const PORTFOLIO_OF_WABA: &str = "SELECT portfolio_id FROM read_ad_accounts WHERE waba_id = ?1 \
     ORDER BY created_at DESC LIMIT 1";
pub(crate) const STATUS: &str = "SELECT * FROM read_onboarding_status WHERE portfolio_id = ?1";
pub(crate) const STATUSES: &str = "SELECT * FROM read_onboarding_status ORDER BY portfolio_id";
pub(crate) const AD_ACCOUNTS: &str =
    "SELECT * FROM read_ad_accounts WHERE portfolio_id = ?1 ORDER BY waba_id";
pub(crate) const TEMPLATES: &str =
    "SELECT * FROM read_templates WHERE portfolio_id = ?1 ORDER BY template_id";
pub(crate) const CLEAR: [&str; 3] = [
    "DELETE FROM read_onboarding_status",
    "DELETE FROM read_ad_accounts",
    "DELETE FROM read_templates",
];

fn json(rows: &impl serde::Serialize) -> Result<String, ProjectionError> {
    serde_json::to_string(rows).map_err(|error| {
        super::corrupt(
            "read models",
            format!("a row cannot be written as JSON: {error}"),
        )
    })
}

pub(crate) async fn write(
    pool: &SqlitePool,
    rows: &PortfolioRows,
    name: &str,
    up_to: u64,
    fail_before_checkpoint: bool,
) -> Result<(), ProjectionError> {
    let up_to = position(up_to)?;
    // Each row a JSON array, serialised straight from a tuple of its columns (no `Value` tree per row).
    let statuses = rows
        .statuses
        .iter()
        .map(|row| {
            (
                &row.portfolio_id,
                &row.phase,
                &row.stage,
                &row.next_action,
                blockers_text(&row.blocked_by),
                row.version,
                row.started_at.map(micros),
                row.updated_at.map(micros),
                row.last_position,
            )
        })
        .collect::<Vec<_>>();
    let accounts = rows
        .ad_accounts
        .iter()
        .map(|row| {
            (
                &row.portfolio_id,
                &row.waba_id,
                &row.ad_account_id,
                micros(row.created_at),
                &row.status,
            )
        })
        .collect::<Vec<_>>();
    let templates = rows
        .templates
        .iter()
        .map(|row| {
            (
                &row.portfolio_id,
                &row.template_id,
                &row.waba_id,
                &row.name,
                &row.language,
                &row.category,
                micros(row.changed_at),
                micros(row.sync_window_ends_at),
                row.mirror_synced_at.map(micros),
                micros(row.last_activity_at),
            )
        })
        .collect::<Vec<_>>();
    let ids = json(&rows.portfolio_ids)?;
    let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
    if !statuses.is_empty() {
        sqlx::query(UPSERT_STATUSES)
            .bind(json(&statuses)?)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(DELETE_AD_ACCOUNTS)
            .bind(&ids)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(DELETE_TEMPLATES)
            .bind(&ids)
            .execute(&mut *transaction)
            .await?;
    }
    if !accounts.is_empty() {
        sqlx::query(INSERT_AD_ACCOUNTS)
            .bind(json(&accounts)?)
            .execute(&mut *transaction)
            .await?;
    }
    if !templates.is_empty() {
        sqlx::query(INSERT_TEMPLATES)
            .bind(json(&templates)?)
            .execute(&mut *transaction)
            .await?;
    }
    if fail_before_checkpoint {
        // Dropping the transaction rolls the rows back, as a crash before the COMMIT would.
        return Err(super::corrupt(
            "read_model_checkpoints",
            "injected failure between the rows and the checkpoint".to_owned(),
        ));
    }
    sqlx::query(SAVE_CHECKPOINT)
        .bind(name)
        .bind(up_to)
        .bind(micros(Utc::now()))
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}

pub(crate) async fn clear(pool: &SqlitePool, name: &str) -> Result<(), ProjectionError> {
    let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
    for statement in CLEAR {
        sqlx::query(statement).execute(&mut *transaction).await?;
    }
    sqlx::query(SAVE_CHECKPOINT)
        .bind(name)
        .bind(0_i64)
        .bind(micros(Utc::now()))
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}
