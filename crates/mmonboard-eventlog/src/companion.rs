//! Tables kept beside the log in its database by other components (read models, the process manager's
//! timers and lease, subscription checkpoints, tokens): a pool of their own, migrated with a migrations table
//! of their own, so the log's migrations never see them and theirs never touch the log. Each set ships one
//! migration folder per backend; [`open_companion_tables`] picks the backend from the URL, as the log does.
//!
//! The pool is an enum of the two drivers' pools rather than a trait object: each seam above matches on it
//! once per method and runs that backend's SQL, which keeps the SQL of each backend in one module per seam
//! and keeps every caller of the seam free of driver types.

use std::str::FromStr;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::backend::Backend;
use crate::error::StoreError;

/// One set of companion tables: its migrations, one folder per backend, and its own migrations table.
pub struct CompanionTables {
    /// The set's own migrations table: persisted, never renamed.
    pub migrations_table: &'static str,
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

/// How a companion pool is opened.
#[derive(Debug, Clone, Copy)]
pub struct CompanionOptions {
    pub max_connections: u32,
    /// SQLite only: `synchronous=FULL` (a commit survives a power cut) rather than `NORMAL`. PostgreSQL
    /// commits durably as the server is configured (`synchronous_commit`).
    pub durable: bool,
}

impl Default for CompanionOptions {
    fn default() -> Self {
        Self {
            max_connections: 2,
            durable: true,
        }
    }
}

/// A pool on the log's database for one set of companion tables.
#[derive(Clone, Debug)]
pub enum CompanionPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl CompanionPool {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// Opens a pool on the log's database at `url` (either backend) and runs the set's migrations.
pub async fn open_companion_tables(
    url: &str,
    tables: CompanionTables,
    options: CompanionOptions,
) -> Result<CompanionPool, StoreError> {
    let CompanionTables {
        migrations_table,
        sqlite,
        postgres,
    } = tables;
    match Backend::of_url(url)? {
        Backend::Sqlite => {
            let connect = sqlite_options(url, options.durable)?;
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .test_before_acquire(false)
                .connect_with(connect)
                .await?;
            let mut connection = pool.acquire().await?;
            let mut migrator = sqlite;
            migrator.dangerous_set_table_name(migrations_table);
            migrate(
                &migrator,
                Backend::Sqlite,
                &mut *connection,
                MIGRATION_BUDGET,
            )
            .await?;
            drop(connection);
            Ok(CompanionPool::Sqlite(pool))
        }
        Backend::Postgres => {
            let connect = postgres_options(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .test_before_acquire(false)
                .connect_with(connect)
                .await?;
            let mut connection = pool.acquire().await?;
            let mut migrator = postgres;
            migrator.dangerous_set_table_name(migrations_table);
            migrate(
                &migrator,
                Backend::Postgres,
                &mut *connection,
                MIGRATION_BUDGET,
            )
            .await?;
            drop(connection);
            Ok(CompanionPool::Postgres(pool))
        }
    }
}

/// How a companion connection to a SQLite log is made: the log's file (never created here: the log creates
/// it), a bounded wait for the write lock, and the durability asked for.
pub(crate) fn sqlite_options(url: &str, durable: bool) -> Result<SqliteConnectOptions, StoreError> {
    let synchronous = if durable {
        SqliteSynchronous::Full
    } else {
        SqliteSynchronous::Normal
    };
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|error| StoreError::Invalid(format!("bad SQLite URL {url:?}: {error}")))?
        .busy_timeout(Duration::from_secs(5))
        .synchronous(synchronous))
}

pub(crate) fn postgres_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url).map_err(|error| {
        StoreError::Invalid(format!(
            "bad PostgreSQL URL: {}",
            crate::backend::redact_url(url, &error)
        ))
    })
}

/// Runs every pending migration of `migrator` on one connection, retrying while another process seems to be
/// migrating the same database: the log's own migrations (`sqlite/`) and every set of companion tables.
///
/// `run_direct` (what `run` calls: all pending migrations, none skipped) on one connection: `run` goes
/// through `Acquire`, whose higher-ranked bounds make the future not `Send`, so it could not be called inside
/// a spawned task.
///
/// sqlx takes no lock around SQLite migrations: two processes opening one database at once may both find a
/// migration pending and both apply it; the loser fails (a table or column exists already, a version is
/// recorded twice, the file is locked) with its transaction rolled back. Looking again then finds it applied.
/// So a locked file is waited for within `budget`, and any other failure of a migration's statements is
/// looked at again up to [`MIGRATION_ATTEMPTS`] times in all: a migration that is wrong fails every time. On
/// PostgreSQL sqlx serialises migrators with an advisory lock, so the retry never matters there. The delays
/// are backon's; the loop is ours because each attempt borrows the one connection mutably.
pub(crate) async fn migrate<C: Migrate + Send>(
    migrator: &Migrator,
    backend: Backend,
    connection: &mut C,
    budget: Duration,
) -> Result<(), StoreError> {
    let mut delays = opening_backoff(budget).build();
    let mut failures = 0;
    loop {
        let error = match migrator.run_direct(None, connection, false).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        failures += 1;
        let again = match &error {
            MigrateError::Execute(error) | MigrateError::ExecuteMigration(error, _) => {
                (backend == Backend::Sqlite && crate::sqlite::locked(error))
                    || failures < MIGRATION_ATTEMPTS
            }
            _ => false,
        };
        match delays.next() {
            Some(delay) if again => tokio::time::sleep(delay).await,
            _ => return Err(error.into()),
        }
    }
}

/// How many times a migration that fails (other than on a locked file) is tried when another process may be
/// migrating the same database.
const MIGRATION_ATTEMPTS: u32 = 5;

/// The waits between attempts to open or migrate a database another process is opening or migrating at the
/// same moment: short (the other one is done within milliseconds), jittered so two losers do not meet again,
/// for at most `budget` in all.
pub(crate) fn opening_backoff(budget: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(50))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(budget))
}

/// How long migrating companion tables waits, in all, for another process migrating them: the companions'
/// busy timeout (`sqlite_options`).
const MIGRATION_BUDGET: Duration = Duration::from_secs(5);

/// Runs `$body` with the statement `$statement` of the pool's backend and the backend's pool: `sql::sqlite::
/// $statement` or `sql::postgres::$statement`, resolved where the macro is called (each seam keeps its SQL in
/// a `sql` module with one submodule per backend). The body is expanded once per backend, so it may use the
/// driver's own types; what it returns must be the same type for both.
///
/// ```text
/// let removed = on_backend!(&self.pool, REMOVE_TIMER => |statement, pool| {
///     sqlx::query(statement).bind(id).execute(pool).await?.rows_affected()
/// });
/// ```
#[macro_export]
macro_rules! on_backend {
    ($pool:expr, $statement:ident => |$sql:ident, $backend_pool:ident| $body:expr) => {
        match $pool {
            $crate::CompanionPool::Sqlite($backend_pool) => {
                let $sql = sql::sqlite::$statement;
                $body
            }
            $crate::CompanionPool::Postgres($backend_pool) => {
                let $sql = sql::postgres::$statement;
                $body
            }
        }
    };
}
