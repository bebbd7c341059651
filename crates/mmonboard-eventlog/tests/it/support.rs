//! What the tests share: SQLite files of their own, the log opened on a test database of either backend,
//! and raw access under the store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_eventlog::{
    Durability, EventLog, LogOptions, PgOptions, SqliteEventStore, SqliteOptions,
};
use sqlx::{ConnectOptions, SqliteConnection};
use tempfile::TempDir;

/// A fresh database file in its own directory, removed when dropped.
pub struct TempLog {
    _dir: TempDir,
    pub path: PathBuf,
}

impl TempLog {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("events.db");
        Self { _dir: dir, path }
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    pub async fn open(&self) -> SqliteEventStore {
        self.open_with(SqliteOptions::default()).await
    }

    /// `synchronous=NORMAL`: for tests whose subject is not durability, to keep them fast.
    pub async fn open_fast(&self) -> SqliteEventStore {
        self.open_with(SqliteOptions {
            synchronous: Durability::Normal,
            ..SqliteOptions::default()
        })
        .await
    }

    pub async fn open_with(&self, options: SqliteOptions) -> SqliteEventStore {
        SqliteEventStore::open(&self.url(), options)
            .await
            .expect("the store opens")
    }

    /// A plain connection to the file, as another program (or an attacker) would have.
    pub async fn raw_connection(&self) -> SqliteConnection {
        raw_connection(&self.path).await
    }
}

pub async fn raw_connection(path: &Path) -> SqliteConnection {
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("a raw connection")
}

pub async fn execute(connection: &mut SqliteConnection, sql: &'static str) {
    sqlx::query(sql)
        .execute(connection)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// Options for tests whose subject is not durability: SQLite at `synchronous=NORMAL`, to keep them
/// fast (PostgreSQL commits as its server is configured).
pub fn fast_options() -> LogOptions {
    LogOptions {
        sqlite: SqliteOptions {
            synchronous: Durability::Normal,
            ..SqliteOptions::default()
        },
        postgres: PgOptions::default(),
    }
}

/// The log on a test database, either backend.
pub async fn open_log(database: &TestDatabase) -> EventLog {
    open_log_with(database, &fast_options()).await
}

pub async fn open_log_with(database: &TestDatabase, options: &LogOptions) -> EventLog {
    EventLog::open(database.url(), options)
        .await
        .expect("the log opens")
}

/// Runs SQL on the test database directly, as another program (or an attacker) would, on either backend.
pub async fn execute_raw(database: &TestDatabase, sql: &str) -> Result<(), sqlx::Error> {
    match database.backend() {
        TestBackend::Sqlite => {
            let path = database.sqlite_path().expect("a SQLite file");
            let mut connection = raw_connection(&path).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut connection)
                .await?;
        }
        TestBackend::Postgres => {
            let mut connection = database
                .postgres_connection()
                .await
                .expect("a PostgreSQL connection");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut connection)
                .await?;
        }
    }
    Ok(())
}

/// Like `#[tokio::test]` for each check on both backends, on the current-thread runtime (where `join!`
/// sends every request before the writer task runs, so they land in one batch).
macro_rules! current_thread_backend_tests {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[tokio::test]
                async fn sqlite() {
                    let database = mmonboard_eventlog::testing::TestDatabase::sqlite();
                    super::$check(&database).await;
                    database.cleanup().await;
                }

                #[tokio::test]
                async fn postgres() {
                    let Some(database) = mmonboard_eventlog::testing::TestDatabase::postgres().await
                    else {
                        return;
                    };
                    super::$check(&database).await;
                    database.cleanup().await;
                }
            }
        )*
    };
}
pub(crate) use current_thread_backend_tests;

/// Closes a log shared with tasks that have all finished.
pub async fn close_shared(log: std::sync::Arc<EventLog>) {
    match std::sync::Arc::try_unwrap(log) {
        Ok(log) => log.close().await,
        Err(_) => panic!("the log is still shared when the test ends"),
    }
}
