//! A background task whose storage fails recovers by itself: the projector's writes are made to fail (a
//! trigger refusing rows of the status read model, as a full disk or a lost connection would), `/readyz` says
//! degraded with the reason while commands still succeed, and once the writes work again the projector
//! catches up without a restart. On both backends.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use mmonboard_app::ManualClock;
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use serde_json::{Value, json};

use crate::support::{eventually, without_credentials};

/// Run SQL on the test database beside the server.
async fn execute(database: &TestDatabase, sql: &str) {
    match database.backend() {
        TestBackend::Sqlite => {
            use sqlx::ConnectOptions;
            let path = database.sqlite_path().expect("a SQLite file");
            let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .busy_timeout(Duration::from_secs(10))
                .connect()
                .await
                .expect("a connection");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut connection)
                .await
                .expect("the statement runs");
        }
        TestBackend::Postgres => {
            let mut connection = database.postgres_connection().await.expect("a connection");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut connection)
                .await
                .expect("the statement runs");
        }
    }
}

const BREAK_SQLITE: &str = "CREATE TRIGGER break_projector BEFORE INSERT ON read_onboarding_status \
     BEGIN SELECT RAISE(ABORT, 'injected storage failure'); END";
const MEND_SQLITE: &str = "DROP TRIGGER break_projector";
const BREAK_POSTGRES: &str = "CREATE FUNCTION break_projector() RETURNS trigger LANGUAGE plpgsql AS \
     $$ BEGIN RAISE EXCEPTION 'injected storage failure'; END $$; \
     CREATE TRIGGER break_projector BEFORE INSERT OR UPDATE ON read_onboarding_status \
     FOR EACH ROW EXECUTE FUNCTION break_projector()";
const MEND_POSTGRES: &str =
    "DROP TRIGGER break_projector ON read_onboarding_status; DROP FUNCTION break_projector()";

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn the_projector_recovers_by_itself_after_a_storage_failure(backend: TestBackend) {
    let Some(database) = TestDatabase::on(backend).await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let clock = ManualClock::starting_at(
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
            .single()
            .expect("a time"),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mmonboard_server::run_with(
        listener,
        database.url().to_owned(),
        clock,
        without_credentials(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    eventually("the server is ready", async || {
        get(&client, format!("{base}/readyz")).await.0 == 200
    })
    .await;
    let post = async |key: &str, command: Value| {
        client
            .post(format!("{base}/v1/portfolios/5550000001/commands"))
            .header("Idempotency-Key", key)
            .json(&command)
            .send()
            .await
            .expect("an answer")
            .status()
            .as_u16()
    };
    assert_eq!(post("one", json!({"type": "start_onboarding"})).await, 201);
    eventually("the status read model shows the portfolio", async || {
        get(&client, format!("{base}/v1/portfolios/5550000001/status"))
            .await
            .0
            == 200
    })
    .await;

    let (break_sql, mend_sql) = match backend {
        TestBackend::Sqlite => (BREAK_SQLITE, MEND_SQLITE),
        TestBackend::Postgres => (BREAK_POSTGRES, MEND_POSTGRES),
    };
    execute(&database, break_sql).await;
    // The trigger fires on the upsert of an existing row too (SQLite: the INSERT part of the upsert).
    assert_eq!(
        post("two", json!({"type": "offboard", "reason": "test"})).await,
        201,
        "commands succeed while the projector is down"
    );
    eventually("/readyz says degraded, naming the failure", async || {
        let (status, body) = get(&client, format!("{base}/readyz")).await;
        status == 503
            && body["status"] == "degraded"
            && body["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("injected storage failure"))
    })
    .await;

    execute(&database, mend_sql).await;
    eventually(
        "the projector catches up and the server is ready again",
        async || {
            let (status, _) = get(&client, format!("{base}/readyz")).await;
            let (_, row) = get(&client, format!("{base}/v1/portfolios/5550000001/status")).await;
            status == 200 && row["phase"] == "offboarded"
        },
    )
    .await;
    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
    database.cleanup().await;
}

mmonboard_eventlog::on_both_backends!(the_projector_recovers_by_itself_after_a_storage_failure);
