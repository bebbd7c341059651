//! The read model tables: written by the projector, queried by anyone. The rows are computed here from each
//! portfolio's folded state, whatever the backend; `storage::{sqlite, postgres}` hold each backend's SQL.

use chrono::{DateTime, Utc};
use mmonboard_domain::eligibility::WabaIneligibility;
use mmonboard_domain::machine::{OboMigration, WabaRouting};
use mmonboard_domain::{Aggregate, DomainConfig};
use mmonboard_eventlog::{
    CompanionOptions, CompanionPool, CompanionTables, on_backend, open_companion_tables,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use mmonboard_eventlog::stored::unsigned;

use crate::ProjectionError;
use crate::storage::{AdAccountRecord, StatusRecord, TemplateRecord, postgres, sqlite};
// `on_backend!` resolves `sql::sqlite::STATEMENT` and `sql::postgres::STATEMENT` here.
use crate::storage as sql;

/// The read models' own migrations table, so they migrate independently of the log.
const MIGRATIONS_TABLE: &str = "_mmonboard_read_model_migrations";

/// One thing that stands in the way of a portfolio's next step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Blocker {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRow {
    pub portfolio_id: String,
    pub phase: String,
    pub stage: String,
    pub next_action: String,
    pub blocked_by: Vec<Blocker>,
    pub version: u64,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub last_position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdAccountRow {
    pub portfolio_id: String,
    pub waba_id: String,
    pub ad_account_id: String,
    pub created_at: DateTime<Utc>,
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSyncStatus {
    /// In its sync window, or its mirror has not reported synced yet.
    Syncing,
    Synced,
    /// Unused for longer than the dormancy period: its next send reactivates it.
    Dormant,
    /// Its latest category is not MARKETING: never sent through the MM API.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRow {
    pub portfolio_id: String,
    pub template_id: String,
    pub waba_id: String,
    pub name: String,
    pub language: String,
    pub category: String,
    pub changed_at: DateTime<Utc>,
    pub sync_window_ends_at: DateTime<Utc>,
    pub mirror_synced_at: Option<DateTime<Utc>>,
    pub last_activity_at: DateTime<Utc>,
}

impl TemplateRow {
    /// The status at `now`, by DOMAIN.md's 15-minute and 7-day rules.
    pub fn status_at(&self, now: DateTime<Utc>, config: &DomainConfig) -> TemplateSyncStatus {
        if self.category != "MARKETING" {
            TemplateSyncStatus::Unavailable
        } else if now - self.last_activity_at > config.dormancy_after {
            TemplateSyncStatus::Dormant
        } else if now < self.sync_window_ends_at || self.mirror_synced_at.is_none() {
            TemplateSyncStatus::Syncing
        } else {
            TemplateSyncStatus::Synced
        }
    }
}

fn routing_status(routing: &WabaRouting) -> &'static str {
    match routing {
        WabaRouting::NotOnboarded => "not_onboarded",
        WabaRouting::Onboarded { .. } => "onboarded",
        WabaRouting::Suspended { .. } => "suspended",
        WabaRouting::Offboarded { .. } => "offboarded",
    }
}

/// What stands in the way of the portfolio now, derived from its state.
fn blockers(aggregate: &Aggregate) -> Vec<Blocker> {
    let data = aggregate.data();
    let mut blockers = Vec::new();
    if let Some(stall) = aggregate.stall() {
        blockers.push(Blocker {
            code: "meta_failing".into(),
            message: format!(
                "step {} stalled after {} attempts: {}",
                stall.step, stall.attempts, stall.error
            ),
        });
    }
    if let Some(eligibility) = &data.eligibility {
        for reason in &eligibility.verdict.portfolio_reasons {
            blockers.push(Blocker {
                code: reason.code().to_owned(),
                message: reason.to_string(),
            });
        }
    }
    for (waba_id, record) in &data.wabas {
        if matches!(
            record.obo_migration,
            OboMigration::Pending | OboMigration::Requested { .. }
        ) {
            blockers.push(Blocker {
                code: "obo_migration_pending".into(),
                message: format!("portfolio still contains OBO WABA {waba_id}"),
            });
        }
        if let WabaRouting::Suspended { reason, .. } = &record.routing {
            blockers.push(Blocker {
                code: "waba_suspended".into(),
                message: format!("WABA {waba_id} is suspended ({reason})"),
            });
        }
        let other_reasons = record
            .verdict
            .reasons
            .iter()
            .filter(|reason| **reason != WabaIneligibility::OnBehalfOf);
        for reason in other_reasons {
            blockers.push(Blocker {
                code: "waba_ineligible".into(),
                message: format!("WABA {waba_id}: {reason}"),
            });
        }
    }
    blockers
}

/// The stage's stable name, as the API spells it (its serde name).
fn stage_name(stage: mmonboard_domain::Stage) -> String {
    match serde_json::to_value(stage) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{stage:?}"),
    }
}

/// The rows of the portfolios one projector batch touched, computed from their folded states.
#[derive(Debug, Default)]
pub(crate) struct PortfolioRows {
    /// Every touched portfolio: its ad account and template rows are replaced by those below.
    pub portfolio_ids: Vec<String>,
    pub statuses: Vec<StatusRow>,
    pub ad_accounts: Vec<AdAccountRow>,
    pub templates: Vec<TemplateRow>,
}

impl PortfolioRows {
    /// The rows of each `(state, position of its last event in the batch)`.
    pub(crate) fn of(portfolios: &[(&Aggregate, u64)]) -> Self {
        let mut rows = Self::default();
        for (aggregate, last_position) in portfolios {
            let portfolio_id = aggregate.portfolio_id().as_str().to_owned();
            let data = aggregate.data();
            let phase = aggregate.phase();
            rows.portfolio_ids.push(portfolio_id.clone());
            rows.statuses.push(StatusRow {
                portfolio_id: portfolio_id.clone(),
                phase: phase.as_str().to_owned(),
                stage: stage_name(phase.stage()),
                next_action: phase.next_action().to_owned(),
                blocked_by: blockers(aggregate),
                version: aggregate.version(),
                started_at: data.started_at,
                updated_at: aggregate.last_event_at(),
                last_position: *last_position,
            });
            if let Some(connected_at) = data.connected_at {
                for (waba_id, record) in &data.wabas {
                    let Some(ad_account_id) = &record.ad_account_id else {
                        continue;
                    };
                    rows.ad_accounts.push(AdAccountRow {
                        portfolio_id: portfolio_id.clone(),
                        waba_id: waba_id.as_str().to_owned(),
                        ad_account_id: ad_account_id.as_str().to_owned(),
                        created_at: connected_at,
                        status: routing_status(&record.routing).to_owned(),
                    });
                }
            }
            for (template_id, template) in &data.templates {
                rows.templates.push(TemplateRow {
                    portfolio_id: portfolio_id.clone(),
                    template_id: template_id.as_str().to_owned(),
                    waba_id: template.waba_id.as_str().to_owned(),
                    name: template.name.as_str().to_owned(),
                    language: template.language.as_str().to_owned(),
                    category: template.category.as_str().to_owned(),
                    changed_at: template.changed_at,
                    sync_window_ends_at: template.sync_window_ends_at,
                    mirror_synced_at: template.mirror_synced_at,
                    last_activity_at: template.last_activity_at,
                });
            }
        }
        rows
    }
}

/// The read model tables of one database, on either backend.
#[derive(Clone)]
pub struct ReadModels {
    pool: CompanionPool,
    /// Test support: fail the next write after its rows, before its checkpoint (a crash mid-transaction).
    fail_next_write: Arc<AtomicBool>,
}

impl ReadModels {
    /// Opens the read models in the log's database at `url` and migrates them.
    pub async fn open(url: &str) -> Result<Self, ProjectionError> {
        // Not durable on SQLite (NORMAL, not FULL): read models are derived, and rows and checkpoint commit
        // together, so a commit lost to a power cut is projected again from the checkpoint before it.
        let pool = open_companion_tables(
            url,
            CompanionTables {
                migrations_table: MIGRATIONS_TABLE,
                sqlite: sqlx::migrate!("./migrations/sqlite"),
                postgres: sqlx::migrate!("./migrations/postgres"),
            },
            CompanionOptions {
                max_connections: 4,
                durable: false,
            },
        )
        .await?;
        Ok(Self {
            pool,
            fail_next_write: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Test support: the next batch written fails after its rows and before its checkpoint, as a crash there
    /// would, so tests can show that rows and checkpoint commit together and a redelivery changes nothing.
    #[doc(hidden)]
    pub fn fail_next_write_before_checkpoint(&self) {
        self.fail_next_write.store(true, Ordering::SeqCst);
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Replace the touched portfolios' rows and move the projection's checkpoint to `position`, in one
    /// transaction: the read models never reflect events their checkpoint does not cover, or the reverse.
    pub(crate) async fn write(
        &self,
        rows: &PortfolioRows,
        name: &str,
        position: u64,
    ) -> Result<(), ProjectionError> {
        let fail = self.fail_next_write.swap(false, Ordering::SeqCst);
        match &self.pool {
            CompanionPool::Sqlite(pool) => sqlite::write(pool, rows, name, position, fail).await,
            CompanionPool::Postgres(pool) => {
                postgres::write(pool, rows, name, position, fail).await
            }
        }
    }

    /// Empty every read model and reset the checkpoint, in one transaction.
    pub(crate) async fn clear(&self, name: &str) -> Result<(), ProjectionError> {
        match &self.pool {
            CompanionPool::Sqlite(pool) => sqlite::clear(pool, name).await,
            CompanionPool::Postgres(pool) => postgres::clear(pool, name).await,
        }
    }

    /// The position the projection `name` has processed up to (0: nothing yet).
    pub async fn checkpoint(&self, name: &str) -> Result<u64, ProjectionError> {
        let position: Option<i64> = on_backend!(&self.pool, CHECKPOINT => |statement, pool| {
            sqlx::query_scalar(statement).bind(name).fetch_optional(pool).await?
        });
        Ok(position.map_or(Ok(0), |position| {
            unsigned("read_model_checkpoints", "position", position)
        })?)
    }

    /// The portfolio a WABA with a mirrored ad account belongs to (for webhooks that name only the WABA).
    pub async fn portfolio_of_waba(
        &self,
        waba_id: &str,
    ) -> Result<Option<String>, ProjectionError> {
        Ok(
            on_backend!(&self.pool, PORTFOLIO_OF_WABA => |statement, pool| {
                sqlx::query_scalar(statement).bind(waba_id).fetch_optional(pool).await?
            }),
        )
    }

    pub async fn status(&self, portfolio_id: &str) -> Result<Option<StatusRow>, ProjectionError> {
        let record: Option<StatusRecord> = on_backend!(&self.pool, STATUS => |statement, pool| {
            sqlx::query_as(statement).bind(portfolio_id).fetch_optional(pool).await?
        });
        record.map(StatusRecord::into_row).transpose()
    }

    /// Every portfolio's status, in portfolio id order.
    pub async fn statuses(&self) -> Result<Vec<StatusRow>, ProjectionError> {
        let records: Vec<StatusRecord> = on_backend!(&self.pool, STATUSES => |statement, pool| {
            sqlx::query_as(statement).fetch_all(pool).await?
        });
        records.into_iter().map(StatusRecord::into_row).collect()
    }

    pub async fn ad_accounts(
        &self,
        portfolio_id: &str,
    ) -> Result<Vec<AdAccountRow>, ProjectionError> {
        let records: Vec<AdAccountRecord> = on_backend!(&self.pool, AD_ACCOUNTS => |statement, pool| {
            sqlx::query_as(statement).bind(portfolio_id).fetch_all(pool).await?
        });
        records.into_iter().map(AdAccountRecord::into_row).collect()
    }

    pub async fn templates(&self, portfolio_id: &str) -> Result<Vec<TemplateRow>, ProjectionError> {
        let records: Vec<TemplateRecord> = on_backend!(&self.pool, TEMPLATES => |statement, pool| {
            sqlx::query_as(statement).bind(portfolio_id).fetch_all(pool).await?
        });
        records.into_iter().map(TemplateRecord::into_row).collect()
    }
}
