//! The read models' SQL, one module per backend with the same statement names and write functions; the rows
//! as stored (the same columns on both) and their checked conversion into the read models' types. Times are stored as unix
//! microseconds on both; a stored value this crate could not have written is an error, never a default.

pub(crate) mod postgres;
pub(crate) mod sqlite;

/// A `read_onboarding_status` row as stored (the same columns on both backends).
#[derive(sqlx::FromRow)]
pub(crate) struct StatusRecord {
    portfolio_id: String,
    phase: String,
    stage: String,
    next_action: String,
    blocked_by: String,
    version: i64,
    started_at: Option<i64>,
    updated_at: Option<i64>,
    last_position: i64,
}

impl StatusRecord {
    pub(crate) fn into_row(self) -> Result<StatusRow, ProjectionError> {
        const TABLE: &str = "read_onboarding_status";
        Ok(StatusRow {
            blocked_by: blockers_of(&self.blocked_by)?,
            version: unsigned(TABLE, "version", self.version)?,
            started_at: self
                .started_at
                .map(|at| time_from_micros(TABLE, "started_at", at))
                .transpose()?,
            updated_at: self
                .updated_at
                .map(|at| time_from_micros(TABLE, "updated_at", at))
                .transpose()?,
            last_position: unsigned(TABLE, "last_position", self.last_position)?,
            portfolio_id: self.portfolio_id,
            phase: self.phase,
            stage: self.stage,
            next_action: self.next_action,
        })
    }
}

/// A `read_ad_accounts` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct AdAccountRecord {
    portfolio_id: String,
    waba_id: String,
    ad_account_id: String,
    created_at: i64,
    status: String,
}

impl AdAccountRecord {
    pub(crate) fn into_row(self) -> Result<AdAccountRow, ProjectionError> {
        Ok(AdAccountRow {
            created_at: time_from_micros("read_ad_accounts", "created_at", self.created_at)?,
            portfolio_id: self.portfolio_id,
            waba_id: self.waba_id,
            ad_account_id: self.ad_account_id,
            status: self.status,
        })
    }
}

/// A `read_templates` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct TemplateRecord {
    portfolio_id: String,
    template_id: String,
    waba_id: String,
    name: String,
    language: String,
    category: String,
    changed_at: i64,
    sync_window_ends_at: i64,
    mirror_synced_at: Option<i64>,
    last_activity_at: i64,
}

impl TemplateRecord {
    pub(crate) fn into_row(self) -> Result<TemplateRow, ProjectionError> {
        const TABLE: &str = "read_templates";
        Ok(TemplateRow {
            changed_at: time_from_micros(TABLE, "changed_at", self.changed_at)?,
            sync_window_ends_at: time_from_micros(
                TABLE,
                "sync_window_ends_at",
                self.sync_window_ends_at,
            )?,
            mirror_synced_at: self
                .mirror_synced_at
                .map(|at| time_from_micros(TABLE, "mirror_synced_at", at))
                .transpose()?,
            last_activity_at: time_from_micros(TABLE, "last_activity_at", self.last_activity_at)?,
            portfolio_id: self.portfolio_id,
            template_id: self.template_id,
            waba_id: self.waba_id,
            name: self.name,
            language: self.language,
            category: self.category,
        })
    }
}

pub(crate) use mmonboard_eventlog::stored::micros;
use mmonboard_eventlog::stored::{time_from_micros, unsigned};

use crate::ProjectionError;
use crate::read_models::{AdAccountRow, Blocker, StatusRow, TemplateRow};

pub(crate) fn blockers_of(text: &str) -> Result<Vec<Blocker>, ProjectionError> {
    serde_json::from_str(text).map_err(|error| {
        corrupt(
            "read_onboarding_status",
            format!("blocked_by is not a list of blockers: {error}"),
        )
    })
}

pub(crate) fn blockers_text(blockers: &[Blocker]) -> String {
    // A list of two plain strings per item always serializes.
    serde_json::to_string(blockers).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn position(value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value).map_err(|_| {
        ProjectionError::Store(mmonboard_eventlog::StoreError::Invalid(format!(
            "position {value} is out of range"
        )))
    })
}

pub(crate) fn corrupt(table: &str, reason: String) -> ProjectionError {
    ProjectionError::CorruptRow {
        table: table.to_owned(),
        reason,
    }
}
