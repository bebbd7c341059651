//! The read models on PostgreSQL. A batch's rows travel as one array per column, unpacked with `UNNEST`: one
//! statement per table for the whole batch, not one per row.

use chrono::Utc;
use sqlx::postgres::PgPool;

use super::{blockers_text, micros, position};
use crate::ProjectionError;
use crate::read_models::PortfolioRows;

pub(crate) const UPSERT_STATUSES: &str = "INSERT INTO read_onboarding_status \
     (portfolio_id, phase, stage, next_action, blocked_by, version, started_at, updated_at, last_position) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], \
     $7::bigint[], $8::bigint[], $9::bigint[]) \
     ON CONFLICT (portfolio_id) DO UPDATE SET phase = excluded.phase, stage = excluded.stage, \
     next_action = excluded.next_action, blocked_by = excluded.blocked_by, version = excluded.version, \
     started_at = excluded.started_at, updated_at = excluded.updated_at, last_position = excluded.last_position";
pub(crate) const DELETE_AD_ACCOUNTS: &str =
    "DELETE FROM read_ad_accounts WHERE portfolio_id = ANY($1::text[])";
pub(crate) const DELETE_TEMPLATES: &str =
    "DELETE FROM read_templates WHERE portfolio_id = ANY($1::text[])";
pub(crate) const INSERT_AD_ACCOUNTS: &str = "INSERT INTO read_ad_accounts \
     (portfolio_id, waba_id, ad_account_id, created_at, status) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])";
pub(crate) const INSERT_TEMPLATES: &str = "INSERT INTO read_templates (portfolio_id, template_id, waba_id, name, \
     language, category, changed_at, sync_window_ends_at, mirror_synced_at, last_activity_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])";
pub(crate) const SAVE_CHECKPOINT: &str =
    mmonboard_eventlog::checkpoint_sql!(postgres, save, "read_model_checkpoints");
pub(crate) const CHECKPOINT: &str =
    mmonboard_eventlog::checkpoint_sql!(postgres, load, "read_model_checkpoints");
pub(crate) const PORTFOLIO_OF_WABA: &str = "SELECT portfolio_id FROM read_ad_accounts WHERE waba_id = $1 \
     ORDER BY created_at DESC LIMIT 1";
pub(crate) const STATUS: &str = "SELECT * FROM read_onboarding_status WHERE portfolio_id = $1";
pub(crate) const STATUSES: &str = "SELECT * FROM read_onboarding_status ORDER BY portfolio_id";
pub(crate) const AD_ACCOUNTS: &str =
    "SELECT * FROM read_ad_accounts WHERE portfolio_id = $1 ORDER BY waba_id";
pub(crate) const TEMPLATES: &str =
    "SELECT * FROM read_templates WHERE portfolio_id = $1 ORDER BY template_id";
/// One statement, so the three tables are emptied together (and faster than DELETE).
pub(crate) const CLEAR: &str = "TRUNCATE read_onboarding_status, read_ad_accounts, read_templates";

fn signed(value: u64) -> Result<i64, ProjectionError> {
    position(value)
}

pub(crate) async fn write(
    pool: &PgPool,
    rows: &PortfolioRows,
    name: &str,
    up_to: u64,
    fail_before_checkpoint: bool,
) -> Result<(), ProjectionError> {
    let up_to = position(up_to)?;
    let mut transaction = pool.begin().await?;
    if !rows.statuses.is_empty() {
        let statuses = &rows.statuses;
        let versions = statuses
            .iter()
            .map(|row| signed(row.version))
            .collect::<Result<Vec<_>, _>>()?;
        let last_positions = statuses
            .iter()
            .map(|row| signed(row.last_position))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query(UPSERT_STATUSES)
            .bind(column(statuses, |row| row.portfolio_id.clone()))
            .bind(column(statuses, |row| row.phase.clone()))
            .bind(column(statuses, |row| row.stage.clone()))
            .bind(column(statuses, |row| row.next_action.clone()))
            .bind(column(statuses, |row| blockers_text(&row.blocked_by)))
            .bind(versions)
            .bind(column(statuses, |row| row.started_at.map(micros)))
            .bind(column(statuses, |row| row.updated_at.map(micros)))
            .bind(last_positions)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(DELETE_AD_ACCOUNTS)
            .bind(&rows.portfolio_ids)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(DELETE_TEMPLATES)
            .bind(&rows.portfolio_ids)
            .execute(&mut *transaction)
            .await?;
    }
    if !rows.ad_accounts.is_empty() {
        let accounts = &rows.ad_accounts;
        sqlx::query(INSERT_AD_ACCOUNTS)
            .bind(column(accounts, |row| row.portfolio_id.clone()))
            .bind(column(accounts, |row| row.waba_id.clone()))
            .bind(column(accounts, |row| row.ad_account_id.clone()))
            .bind(column(accounts, |row| micros(row.created_at)))
            .bind(column(accounts, |row| row.status.clone()))
            .execute(&mut *transaction)
            .await?;
    }
    if !rows.templates.is_empty() {
        let templates = &rows.templates;
        sqlx::query(INSERT_TEMPLATES)
            .bind(column(templates, |row| row.portfolio_id.clone()))
            .bind(column(templates, |row| row.template_id.clone()))
            .bind(column(templates, |row| row.waba_id.clone()))
            .bind(column(templates, |row| row.name.clone()))
            .bind(column(templates, |row| row.language.clone()))
            .bind(column(templates, |row| row.category.clone()))
            .bind(column(templates, |row| micros(row.changed_at)))
            .bind(column(templates, |row| micros(row.sync_window_ends_at)))
            .bind(column(templates, |row| row.mirror_synced_at.map(micros)))
            .bind(column(templates, |row| micros(row.last_activity_at)))
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

fn column<R, T>(rows: &[R], value: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

pub(crate) async fn clear(pool: &PgPool, name: &str) -> Result<(), ProjectionError> {
    let mut transaction = pool.begin().await?;
    sqlx::query(CLEAR).execute(&mut *transaction).await?;
    sqlx::query(SAVE_CHECKPOINT)
        .bind(name)
        .bind(0_i64)
        .bind(micros(Utc::now()))
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}
