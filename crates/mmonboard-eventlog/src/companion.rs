//! Tables kept beside the log in its database by other components (read models, the process manager's
//! timers): a pool of their own, migrated with a migrations table of their own, so the log's migrations never
//! see them and theirs never touch the log.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Open a pool on the log's database at `url` and run `migrator` with `migrations_table`.
pub async fn open_companion_tables(
    url: &str,
    mut migrator: Migrator,
    migrations_table: &'static str,
    synchronous: SqliteSynchronous,
    max_connections: u32,
) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .busy_timeout(Duration::from_secs(5))
        .synchronous(synchronous);
    let pool = SqlitePoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    migrator.dangerous_set_table_name(migrations_table);
    // `run_direct` (what `run` calls: all pending migrations, none skipped) on one connection: `run` goes
    // through `Acquire`, whose higher-ranked bounds make the future not `Send`, so it could not be called
    // inside a spawned task.
    //
    // sqlx takes no lock around SQLite migrations: two processes opening one database at once may both find a
    // migration pending and both apply it; the loser fails (its table or column exists already) with its
    // transaction rolled back. Looking again then finds it applied. A migration that is wrong fails every time.
    let mut connection = pool.acquire().await?;
    let mut attempt = 1;
    loop {
        match migrator.run_direct(None, &mut *connection, false).await {
            Ok(()) => break,
            Err(_) if attempt < MIGRATION_ATTEMPTS => attempt += 1,
            Err(error) => return Err(sqlx::Error::Migrate(Box::new(error))),
        }
    }
    drop(connection);
    Ok(pool)
}

/// How many times migrating is tried when another process may be migrating the same database.
const MIGRATION_ATTEMPTS: u32 = 5;
