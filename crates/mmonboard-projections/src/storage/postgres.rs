//! The read models on PostgreSQL. A batch's rows travel as one array per column, unpacked with `UNNEST`: one
//! statement per table for the whole batch, not one per row.

use chrono::Utc;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

use super::{blockers_of, blockers_text, count, micros, optional_time, position, time};
use crate::ProjectionError;
use crate::read_models::{AdAccountRow, PortfolioRows, StatusRow, TemplateRow};

const UPSERT_STATUSES: &str = "INSERT INTO read_onboarding_status \
     (portfolio_id, phase, stage, next_action, blocked_by, version, started_at, updated_at, last_position) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], \
     $7::bigint[], $8::bigint[], $9::bigint[]) \
     ON CONFLICT (portfolio_id) DO UPDATE SET phase = excluded.phase, stage = excluded.stage, \
     next_action = excluded.next_action, blocked_by = excluded.blocked_by, version = excluded.version, \
     started_at = excluded.started_at, updated_at = excluded.updated_at, last_position = excluded.last_position";
const DELETE_AD_ACCOUNTS: &str =
    "DELETE FROM read_ad_accounts WHERE portfolio_id = ANY($1::text[])";
const DELETE_TEMPLATES: &str = "DELETE FROM read_templates WHERE portfolio_id = ANY($1::text[])";
const INSERT_AD_ACCOUNTS: &str = "INSERT INTO read_ad_accounts \
     (portfolio_id, waba_id, ad_account_id, created_at, status) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])";
const INSERT_TEMPLATES: &str = "INSERT INTO read_templates (portfolio_id, template_id, waba_id, name, \
     language, category, changed_at, sync_window_ends_at, mirror_synced_at, last_activity_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])";
const SAVE_CHECKPOINT: &str = "INSERT INTO read_model_checkpoints (name, position, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
     updated_at = excluded.updated_at";
const CHECKPOINT: &str = "SELECT position FROM read_model_checkpoints WHERE name = $1";
const PORTFOLIO_OF_WABA: &str = "SELECT portfolio_id FROM read_ad_accounts WHERE waba_id = $1 \
     ORDER BY created_at DESC LIMIT 1";
const STATUS: &str = "SELECT * FROM read_onboarding_status WHERE portfolio_id = $1";
const STATUSES: &str = "SELECT * FROM read_onboarding_status ORDER BY portfolio_id";
const AD_ACCOUNTS: &str = "SELECT * FROM read_ad_accounts WHERE portfolio_id = $1 ORDER BY waba_id";
const TEMPLATES: &str = "SELECT * FROM read_templates WHERE portfolio_id = $1 ORDER BY template_id";
/// One statement, so the three tables are emptied together (and faster than DELETE).
const CLEAR: &str = "TRUNCATE read_onboarding_status, read_ad_accounts, read_templates";

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
        .bind(Utc::now().timestamp_micros())
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
        .bind(Utc::now().timestamp_micros())
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}

pub(crate) async fn checkpoint(pool: &PgPool, name: &str) -> Result<u64, ProjectionError> {
    let position: Option<i64> = sqlx::query_scalar(CHECKPOINT)
        .bind(name)
        .fetch_optional(pool)
        .await?;
    position.map_or(Ok(0), |position| {
        count("read_model_checkpoints", "position", position)
    })
}

pub(crate) async fn portfolio_of_waba(
    pool: &PgPool,
    waba_id: &str,
) -> Result<Option<String>, ProjectionError> {
    Ok(sqlx::query_scalar(PORTFOLIO_OF_WABA)
        .bind(waba_id)
        .fetch_optional(pool)
        .await?)
}

pub(crate) async fn status(
    pool: &PgPool,
    portfolio_id: &str,
) -> Result<Option<StatusRow>, ProjectionError> {
    let row = sqlx::query(STATUS)
        .bind(portfolio_id)
        .fetch_optional(pool)
        .await?;
    row.map(|row| status_row(&row)).transpose()
}

pub(crate) async fn statuses(pool: &PgPool) -> Result<Vec<StatusRow>, ProjectionError> {
    let rows = sqlx::query(STATUSES).fetch_all(pool).await?;
    rows.iter().map(status_row).collect()
}

pub(crate) async fn ad_accounts(
    pool: &PgPool,
    portfolio_id: &str,
) -> Result<Vec<AdAccountRow>, ProjectionError> {
    let rows = sqlx::query(AD_ACCOUNTS)
        .bind(portfolio_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(AdAccountRow {
                portfolio_id: row.try_get("portfolio_id")?,
                waba_id: row.try_get("waba_id")?,
                ad_account_id: row.try_get("ad_account_id")?,
                created_at: time("read_ad_accounts", "created_at", row.try_get("created_at")?)?,
                status: row.try_get("status")?,
            })
        })
        .collect()
}

pub(crate) async fn templates(
    pool: &PgPool,
    portfolio_id: &str,
) -> Result<Vec<TemplateRow>, ProjectionError> {
    const TABLE: &str = "read_templates";
    let rows = sqlx::query(TEMPLATES)
        .bind(portfolio_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(TemplateRow {
                portfolio_id: row.try_get("portfolio_id")?,
                template_id: row.try_get("template_id")?,
                waba_id: row.try_get("waba_id")?,
                name: row.try_get("name")?,
                language: row.try_get("language")?,
                category: row.try_get("category")?,
                changed_at: time(TABLE, "changed_at", row.try_get("changed_at")?)?,
                sync_window_ends_at: time(
                    TABLE,
                    "sync_window_ends_at",
                    row.try_get("sync_window_ends_at")?,
                )?,
                mirror_synced_at: optional_time(
                    TABLE,
                    "mirror_synced_at",
                    row.try_get("mirror_synced_at")?,
                )?,
                last_activity_at: time(
                    TABLE,
                    "last_activity_at",
                    row.try_get("last_activity_at")?,
                )?,
            })
        })
        .collect()
}

fn status_row(row: &PgRow) -> Result<StatusRow, ProjectionError> {
    const TABLE: &str = "read_onboarding_status";
    let blocked_by: String = row.try_get("blocked_by")?;
    Ok(StatusRow {
        portfolio_id: row.try_get("portfolio_id")?,
        phase: row.try_get("phase")?,
        stage: row.try_get("stage")?,
        next_action: row.try_get("next_action")?,
        blocked_by: blockers_of(&blocked_by)?,
        version: count(TABLE, "version", row.try_get("version")?)?,
        started_at: optional_time(TABLE, "started_at", row.try_get("started_at")?)?,
        updated_at: optional_time(TABLE, "updated_at", row.try_get("updated_at")?)?,
        last_position: count(TABLE, "last_position", row.try_get("last_position")?)?,
    })
}
