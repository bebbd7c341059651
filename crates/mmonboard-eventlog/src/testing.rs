//! Test support shared by every crate's storage tests: a fresh database per test on either backend, and a
//! macro that runs one check on both. A PostgreSQL test database is created on the server named by
//! `MMONBOARD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and dropped afterwards.
//! When that server cannot be reached the PostgreSQL half is skipped with a notice on stderr, except under
//! `CI=true`, where it fails loudly: CI must never pass by skipping.

use std::path::PathBuf;

use sqlx::{ConnectOptions, Connection, PgConnection, postgres::PgConnectOptions};
use std::str::FromStr;
use uuid::Uuid;

/// The environment variable naming the PostgreSQL server (any database on it) tests create theirs on.
pub const POSTGRES_URL_ENV: &str = "MMONBOARD_TEST_POSTGRES_URL";

/// The server CI and the development machines run.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which backend a test database is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A database of its own for one test: a SQLite file in a temporary directory, or a PostgreSQL database
/// created for it. Call [`TestDatabase::cleanup`] at the end; dropping it also cleans up, from a thread of
/// its own.
pub struct TestDatabase {
    backend: TestBackend,
    url: String,
    sqlite_dir: Option<tempfile::TempDir>,
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh SQLite database file (not created yet: the first open creates it).
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for the test database");
        let url = format!("sqlite://{}", dir.path().join("mmonboard.db").display());
        Self {
            backend: TestBackend::Sqlite,
            url,
            sqlite_dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh, empty PostgreSQL database, or `None` (after a notice) when no server answers outside CI.
    pub async fn postgres() -> Option<Self> {
        let admin_url =
            std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin = match connect(&admin_url).await {
            Ok(connection) => connection,
            Err(error) => {
                if std::env::var("CI").is_ok_and(|value| value == "true") {
                    panic!(
                        "CI=true but the PostgreSQL server at {admin_url} ({POSTGRES_URL_ENV}) cannot be \
                         reached: {error}. Start it (see .ci/run) instead of skipping the PostgreSQL tests."
                    );
                }
                eprintln!(
                    "notice: skipping a PostgreSQL test: no server at {admin_url} ({error}); set \
                     {POSTGRES_URL_ENV} or start PostgreSQL to run it"
                );
                return None;
            }
        };
        let name = format!("mmonboard_t_{}", Uuid::now_v7().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|error| panic!("creating the test database {name}: {error}"));
        let _ = admin.close().await;
        let options = PgConnectOptions::from_str(&admin_url)
            .expect("the PostgreSQL test URL parses")
            .database(&name);
        let url = options.to_url_lossy().to_string();
        Some(Self {
            backend: TestBackend::Postgres,
            url,
            sqlite_dir: None,
            postgres: Some(PostgresDatabase { admin_url, name }),
        })
    }

    /// A fresh database on `backend` (`None` only for a PostgreSQL server that is skipped).
    pub async fn on(backend: TestBackend) -> Option<Self> {
        match backend {
            TestBackend::Sqlite => Some(Self::sqlite()),
            TestBackend::Postgres => Self::postgres().await,
        }
    }

    pub fn backend(&self) -> TestBackend {
        self.backend
    }

    /// The URL to open, as `--database` takes it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQLite file (for tests that tamper with it or copy it); `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.sqlite_dir
            .as_ref()
            .map(|dir| dir.path().join("mmonboard.db"))
    }

    /// A direct connection to a PostgreSQL test database, for tests that reach under the store (tampering,
    /// holding locks); `None` on SQLite.
    pub async fn postgres_connection(&self) -> Option<PgConnection> {
        if self.backend != TestBackend::Postgres {
            return None;
        }
        Some(
            connect(&self.url)
                .await
                .expect("a connection to the test database"),
        )
    }

    /// Removes the database. Every pool on it should be closed first; remaining sessions are terminated.
    pub async fn cleanup(mut self) {
        if let Some(database) = self.postgres.take() {
            database.drop_now().await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(database) = self.postgres.take() {
            // Drop may run inside a runtime (a failed assertion unwinding): a thread of its own with its own
            // runtime can block on the DROP without tangling with the caller's.
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(database.drop_now());
                }
            })
            .join();
        }
    }
}

impl PostgresDatabase {
    async fn drop_now(self) {
        match connect(&self.admin_url).await {
            Ok(mut admin) => {
                let dropped = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )))
                .execute(&mut admin)
                .await;
                if let Err(error) = dropped {
                    eprintln!(
                        "warning: the test database {} was not dropped: {error}",
                        self.name
                    );
                }
                let _ = admin.close().await;
            }
            Err(error) => eprintln!(
                "warning: the test database {} was not dropped (no connection: {error})",
                self.name
            ),
        }
    }
}

async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnectOptions::from_str(url)?.connect().await
}

/// Runs each check (an `async fn(&TestDatabase)`) on a fresh SQLite database and on a fresh PostgreSQL one,
/// as two tests `<check>::sqlite` and `<check>::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let database = $crate::testing::TestDatabase::sqlite();
                    super::$check(&database).await;
                    database.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(database) = $crate::testing::TestDatabase::postgres().await else {
                        return;
                    };
                    super::$check(&database).await;
                    database.cleanup().await;
                }
            }
        )*
    };
}

/// Runs each test (an `async fn(TestBackend)` that opens what it needs, and returns early when
/// [`TestDatabase::on`] gives `None`) on both backends, as two tests `sqlite::<test>` and `postgres::<test>`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::testing::TestBackend::Sqlite).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::testing::TestBackend::Postgres).await;
                }
            )*
        }
    };
}
