//! The token store: a companion table set beside the log, in the log's database, on either backend. Each
//! method matches on the pool once and runs that backend's SQL (`sql.rs`); nothing above
//! sees a driver type or a driver error. Its migrations table, [`MIGRATIONS_TABLE`], is persisted: never
//! rename it.

mod sql;

use chrono::{DateTime, Utc};
use mmonboard_eventlog::stored::{micros, time_from_micros};
use mmonboard_eventlog::{
    CompanionOptions, CompanionPool, CompanionTables, on_backend, open_companion_tables,
};

use crate::error::AccessError;
use crate::role::Role;
use crate::token::{TokenHash, TokenName, TokenSecret};

/// The token store's own migrations table. Persisted: never rename.
pub const MIGRATIONS_TABLE: &str = "_access_migrations";

/// One stored row: name, role, hash, created, expires, revoked, last used (microseconds since the epoch).
type Row = (
    String,
    String,
    Vec<u8>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// What is known of a token, never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: TokenName,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TokenRecord {
    /// Whether a request at `now` with this token is let in.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires| now < expires)
    }
}

/// A token as the server's cache holds it: its record and the hash a presented token must match.
#[derive(Debug, Clone)]
pub struct Credential {
    pub hash: TokenHash,
    pub record: TokenRecord,
}

/// A token just created: its record, and its secret, to be shown once.
#[derive(Debug)]
pub struct IssuedToken {
    pub record: TokenRecord,
    pub secret: TokenSecret,
}

/// The tokens of one database.
#[derive(Clone, Debug)]
pub struct TokenStore {
    pool: CompanionPool,
}

impl TokenStore {
    /// Opens the store in the log's database at `url` (either backend), creating its table on first use.
    pub async fn open(url: &str) -> Result<Self, AccessError> {
        let pool = open_companion_tables(
            url,
            CompanionTables {
                migrations_table: MIGRATIONS_TABLE,
                sqlite: sqlx::migrate!("./migrations/sqlite"),
                postgres: sqlx::migrate!("./migrations/postgres"),
            },
            CompanionOptions::default(),
        )
        .await?;
        Ok(Self { pool })
    }

    /// Creates a token named `name` with `role`; the name must be new (revoked names included).
    pub async fn create(
        &self,
        name: &TokenName,
        role: Role,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<IssuedToken, AccessError> {
        let secret = TokenSecret::generate()?;
        let row: Row = (
            name.as_str().to_owned(),
            role.as_str().to_owned(),
            secret.hash().as_bytes().to_vec(),
            micros(created_at),
            expires_at.map(micros),
            None,
            None,
        );
        let inserted = on_backend!(&self.pool, INSERT_TOKEN => |statement, pool| {
            sqlx::query(statement)
                .bind(&row.0)
                .bind(&row.1)
                .bind(&row.2)
                .bind(row.3)
                .bind(row.4)
                .execute(pool)
                .await
                .map(|_| ())
        });
        match inserted {
            Ok(()) => Ok(IssuedToken {
                record: record(row)?.record,
                secret,
            }),
            Err(error)
                if error
                    .as_database_error()
                    .is_some_and(|error| error.is_unique_violation()) =>
            {
                Err(AccessError::NameTaken(name.as_str().to_owned()))
            }
            Err(error) => Err(store_error(error)),
        }
    }

    /// Every token, oldest first, revoked and expired ones included.
    pub async fn list(&self) -> Result<Vec<TokenRecord>, AccessError> {
        Ok(self
            .credentials()
            .await?
            .into_iter()
            .map(|credential| credential.record)
            .collect())
    }

    /// Every token with its hash: what the server's cache loads.
    pub async fn credentials(&self) -> Result<Vec<Credential>, AccessError> {
        let rows: Vec<Row> = on_backend!(&self.pool, ALL_TOKENS => |statement, pool| {
            sqlx::query_as(statement).fetch_all(pool).await
        })
        .map_err(store_error)?;
        rows.into_iter().map(record).collect()
    }

    /// Whether any token would be let in at `now`: `serve` refuses to start without one.
    pub async fn has_usable_token(&self, now: DateTime<Utc>) -> Result<bool, AccessError> {
        Ok(self
            .list()
            .await?
            .iter()
            .any(|record| record.is_usable_at(now)))
    }

    /// Revokes the token named `name` at `at`.
    pub async fn revoke(&self, name: &TokenName, at: DateTime<Utc>) -> Result<(), AccessError> {
        let changed = on_backend!(&self.pool, REVOKE_TOKEN => |statement, pool| {
            sqlx::query(statement)
                .bind(micros(at))
                .bind(name.as_str())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        if changed > 0 {
            return Ok(());
        }
        let found: Option<(i64,)> = on_backend!(&self.pool, TOKEN_EXISTS => |statement, pool| {
            sqlx::query_as(statement)
                .bind(name.as_str())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        let exists = found.is_some();
        Err(if exists {
            AccessError::AlreadyRevoked(name.as_str().to_owned())
        } else {
            AccessError::UnknownToken(name.as_str().to_owned())
        })
    }

    /// Records when tokens were last used (a later time than the stored one wins; an earlier one is kept
    /// out, so flushes from several servers in any order agree).
    pub async fn record_uses(
        &self,
        uses: &[(TokenName, DateTime<Utc>)],
    ) -> Result<(), AccessError> {
        if uses.is_empty() {
            return Ok(());
        }
        let uses: Vec<(String, i64)> = uses
            .iter()
            .map(|(name, at)| (name.as_str().to_owned(), micros(*at)))
            .collect();
        on_backend!(&self.pool, RECORD_USE => |statement, pool| {
            async {
                let mut transaction = pool.begin().await?;
                for (name, at_us) in &uses {
                    sqlx::query(statement)
                        .bind(name)
                        .bind(at_us)
                        .execute(&mut *transaction)
                        .await?;
                }
                transaction.commit().await
            }
            .await
        })
        .map_err(store_error)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A driver error, as text: the driver's types stay inside this module.
fn store_error(error: sqlx::Error) -> AccessError {
    AccessError::Store(error.to_string())
}

/// The table the tokens are stored in (persisted: never rename).
const TABLE: &str = "access_tokens";

fn time(column: &'static str, micros: i64) -> Result<DateTime<Utc>, AccessError> {
    time_from_micros(TABLE, column, micros).map_err(|error| AccessError::Store(error.to_string()))
}

fn record(row: Row) -> Result<Credential, AccessError> {
    let (name, role, hash, created, expires, revoked, last_used) = row;
    let corrupt = |what: &str| AccessError::Store(format!("the stored token {name:?} has {what}"));
    Ok(Credential {
        hash: TokenHash::from_bytes(&hash).ok_or_else(|| corrupt("a hash that is not 32 bytes"))?,
        record: TokenRecord {
            name: TokenName::parse(&name).map_err(|_| corrupt("an invalid name"))?,
            role: role.parse().map_err(|_| corrupt("an unknown role"))?,
            created_at: time("created_at_us", created)?,
            expires_at: expires.map(|at| time("expires_at_us", at)).transpose()?,
            revoked_at: revoked.map(|at| time("revoked_at_us", at)).transpose()?,
            last_used_at: last_used
                .map(|at| time("last_used_at_us", at))
                .transpose()?,
        },
    })
}
