use std::path::{Path, PathBuf};
use std::time::Duration;

use mmonboard_eventlog::{Durability, SqliteEventStore, SqliteOptions};
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
