//! The read model tables: written by the projector, queried by anyone.

use chrono::{DateTime, Utc};
use mmonboard_domain::eligibility::WabaIneligibility;
use mmonboard_domain::machine::{OboMigration, WabaRouting};
use mmonboard_domain::{Aggregate, DomainConfig};
use mmonboard_eventlog::{CompanionOptions, CompanionPool, CompanionTables, open_companion_tables};
use serde::Serialize;
use sqlx::sqlite::SqlitePool;
use sqlx::{Row, Sqlite, Transaction};

use crate::ProjectionError;

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

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
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
            let code = serde_json::to_value(reason)
                .ok()
                .and_then(|value| {
                    value
                        .get("reason")
                        .and_then(|code| code.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            blockers.push(Blocker {
                code,
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

/// The read model tables of one database.
#[derive(Clone)]
pub struct ReadModels {
    pool: SqlitePool,
}

impl ReadModels {
    /// Opens the read models in the log's database at `url` and migrates them.
    pub async fn open(url: &str) -> Result<Self, ProjectionError> {
        // NORMAL, not FULL: read models are derived, and rows and checkpoint commit together, so a commit lost
        // to a power cut is projected again from the checkpoint before it.
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
        let CompanionPool::Sqlite(pool) = pool else {
            return Err(ProjectionError::Corrupt {
                global_position: 0,
                reason: "read models on PostgreSQL are not wired yet".into(),
            });
        };
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>, ProjectionError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Rewrite every row of these portfolios from their states: one statement per table for the whole batch
    /// (rows travel as JSON arrays that SQLite unpacks), not one per row.
    pub(crate) async fn write_portfolios(
        transaction: &mut Transaction<'static, Sqlite>,
        portfolios: &[(&Aggregate, u64)],
    ) -> Result<(), ProjectionError> {
        if portfolios.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(portfolios.len());
        let mut statuses = Vec::with_capacity(portfolios.len());
        let mut accounts = Vec::new();
        let mut templates = Vec::new();
        for (aggregate, last_position) in portfolios {
            let portfolio_id = aggregate.portfolio_id().as_str();
            let data = aggregate.data();
            let phase = aggregate.phase();
            ids.push(portfolio_id);
            statuses.push(serde_json::json!([
                portfolio_id,
                phase.as_str(),
                serde_json::to_value(phase.stage()).unwrap_or_default(),
                phase.next_action(),
                serde_json::to_string(&blockers(aggregate)).unwrap_or_else(|_| "[]".into()),
                aggregate.version(),
                data.started_at.map(micros),
                aggregate.last_event_at().map(micros),
                last_position,
            ]));
            if let Some(connected_at) = data.connected_at {
                for (waba_id, record) in &data.wabas {
                    let Some(ad_account_id) = &record.ad_account_id else {
                        continue;
                    };
                    accounts.push(serde_json::json!([
                        portfolio_id,
                        waba_id.as_str(),
                        ad_account_id.as_str(),
                        micros(connected_at),
                        routing_status(&record.routing),
                    ]));
                }
            }
            for (template_id, template) in &data.templates {
                templates.push(serde_json::json!([
                    portfolio_id,
                    template_id.as_str(),
                    template.waba_id.as_str(),
                    template.name.as_str(),
                    template.language.as_str(),
                    template.category.as_str(),
                    micros(template.changed_at),
                    micros(template.sync_window_ends_at),
                    template.mirror_synced_at.map(micros),
                    micros(template.last_activity_at),
                ]));
            }
        }
        sqlx::query(
            "INSERT INTO read_onboarding_status \
             (portfolio_id, phase, stage, next_action, blocked_by, version, started_at, updated_at, last_position) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
             value ->> 7, value ->> 8 FROM json_each(?) WHERE true \
             ON CONFLICT (portfolio_id) DO UPDATE SET phase = excluded.phase, stage = excluded.stage, \
             next_action = excluded.next_action, blocked_by = excluded.blocked_by, version = excluded.version, \
             started_at = excluded.started_at, updated_at = excluded.updated_at, last_position = excluded.last_position",
        )
        .bind(to_json(&statuses))
        .execute(&mut **transaction)
        .await?;
        let ids = to_json(&ids);
        sqlx::query(
            "DELETE FROM read_ad_accounts WHERE portfolio_id IN (SELECT value FROM json_each(?))",
        )
        .bind(&ids)
        .execute(&mut **transaction)
        .await?;
        sqlx::query(
            "DELETE FROM read_templates WHERE portfolio_id IN (SELECT value FROM json_each(?))",
        )
        .bind(&ids)
        .execute(&mut **transaction)
        .await?;
        if !accounts.is_empty() {
            sqlx::query(
                "INSERT INTO read_ad_accounts (portfolio_id, waba_id, ad_account_id, created_at, status) \
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)",
            )
            .bind(to_json(&accounts))
            .execute(&mut **transaction)
            .await?;
        }
        if !templates.is_empty() {
            sqlx::query(
                "INSERT INTO read_templates (portfolio_id, template_id, waba_id, name, language, category, changed_at, \
                 sync_window_ends_at, mirror_synced_at, last_activity_at) SELECT value ->> 0, value ->> 1, \
                 value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9 \
                 FROM json_each(?)",
            )
            .bind(to_json(&templates))
            .execute(&mut **transaction)
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn save_checkpoint(
        transaction: &mut Transaction<'static, Sqlite>,
        name: &str,
        position: u64,
    ) -> Result<(), ProjectionError> {
        sqlx::query(
            "INSERT INTO read_model_checkpoints (name, position, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(position as i64)
        .bind(Utc::now().timestamp_micros())
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }

    /// Empty every read model and reset the checkpoint, in one transaction.
    pub(crate) async fn clear(&self, name: &str) -> Result<(), ProjectionError> {
        let mut transaction = self.begin().await?;
        for table in [
            "read_onboarding_status",
            "read_ad_accounts",
            "read_templates",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *transaction)
                .await?;
        }
        Self::save_checkpoint(&mut transaction, name, 0).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The position the projection `name` has processed up to (0: nothing yet).
    pub async fn checkpoint(&self, name: &str) -> Result<u64, ProjectionError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM read_model_checkpoints WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(position
            .and_then(|position| u64::try_from(position).ok())
            .unwrap_or(0))
    }

    /// The portfolio a WABA with a mirrored ad account belongs to (for webhooks that name only the WABA).
    pub async fn portfolio_of_waba(
        &self,
        waba_id: &str,
    ) -> Result<Option<String>, ProjectionError> {
        Ok(sqlx::query_scalar(
            "SELECT portfolio_id FROM read_ad_accounts WHERE waba_id = ? ORDER BY created_at DESC LIMIT 1",
        )
        .bind(waba_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn status(&self, portfolio_id: &str) -> Result<Option<StatusRow>, ProjectionError> {
        let row = sqlx::query("SELECT * FROM read_onboarding_status WHERE portfolio_id = ?")
            .bind(portfolio_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| status_row(&row)).transpose()
    }

    /// Every portfolio's status, in portfolio id order.
    pub async fn statuses(&self) -> Result<Vec<StatusRow>, ProjectionError> {
        let rows = sqlx::query("SELECT * FROM read_onboarding_status ORDER BY portfolio_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(status_row).collect()
    }

    pub async fn ad_accounts(
        &self,
        portfolio_id: &str,
    ) -> Result<Vec<AdAccountRow>, ProjectionError> {
        let rows =
            sqlx::query("SELECT * FROM read_ad_accounts WHERE portfolio_id = ? ORDER BY waba_id")
                .bind(portfolio_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(AdAccountRow {
                    portfolio_id: row.try_get("portfolio_id")?,
                    waba_id: row.try_get("waba_id")?,
                    ad_account_id: row.try_get("ad_account_id")?,
                    created_at: time(row.try_get("created_at")?),
                    status: row.try_get("status")?,
                })
            })
            .collect()
    }

    pub async fn templates(&self, portfolio_id: &str) -> Result<Vec<TemplateRow>, ProjectionError> {
        let rows =
            sqlx::query("SELECT * FROM read_templates WHERE portfolio_id = ? ORDER BY template_id")
                .bind(portfolio_id)
                .fetch_all(&self.pool)
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
                    changed_at: time(row.try_get("changed_at")?),
                    sync_window_ends_at: time(row.try_get("sync_window_ends_at")?),
                    mirror_synced_at: row.try_get::<Option<i64>, _>("mirror_synced_at")?.map(time),
                    last_activity_at: time(row.try_get("last_activity_at")?),
                })
            })
            .collect()
    }
}

fn status_row(row: &sqlx::sqlite::SqliteRow) -> Result<StatusRow, ProjectionError> {
    let blocked_by: String = row.try_get("blocked_by")?;
    Ok(StatusRow {
        portfolio_id: row.try_get("portfolio_id")?,
        phase: row.try_get("phase")?,
        stage: row.try_get("stage")?,
        next_action: row.try_get("next_action")?,
        blocked_by: serde_json::from_str(&blocked_by).unwrap_or_default(),
        version: u64::try_from(row.try_get::<i64, _>("version")?).unwrap_or_default(),
        started_at: row.try_get::<Option<i64>, _>("started_at")?.map(time),
        updated_at: row.try_get::<Option<i64>, _>("updated_at")?.map(time),
        last_position: u64::try_from(row.try_get::<i64, _>("last_position")?).unwrap_or_default(),
    })
}
