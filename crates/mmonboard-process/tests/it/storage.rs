//! The process manager's storage seam (timers and lease), one conformance suite run on both backends: what the
//! manager relies on must hold on SQLite and on PostgreSQL alike.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mmonboard_domain::ids::PortfolioId;
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_eventlog::{EventLog, LogOptions, backend_tests};
use mmonboard_process::{Timer, TimerStore};

/// The tables live beside the log, which creates the database: open it first, as `serve` does.
async fn open_timers(database: &TestDatabase) -> TimerStore {
    let log = EventLog::open(database.url(), &LogOptions::default())
        .await
        .expect("the log opens");
    log.close().await;
    TimerStore::open(database.url()).await.expect("timers open")
}

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
        .single()
        .expect("a valid time")
        + TimeDelta::minutes(minute)
}

fn portfolio(id: &str) -> PortfolioId {
    PortfolioId::parse(id).expect("a valid portfolio id")
}

fn timer(portfolio_id: &str, step_key: &str, due_minute: i64) -> Timer {
    Timer {
        portfolio_id: portfolio(portfolio_id),
        step_key: step_key.to_owned(),
        due_at: at(due_minute),
        attempts: 0,
        last_error: None,
        waiting_since: None,
        polls: 0,
        stall_recorded: false,
    }
}

async fn timers_are_set_moved_listed_and_removed(database: &TestDatabase) {
    let timers = open_timers(database).await;
    assert!(timers.all().await.expect("all").is_empty());

    timers
        .set(&timer("1000000001", "complete_sync", 15), at(0))
        .await
        .expect("set");
    timers
        .set(&timer("1000000001", "check_eligibility", 5), at(0))
        .await
        .expect("set");
    timers
        .set(&timer("1000000002", "connect", 1), at(0))
        .await
        .expect("set");

    // Moving a timer replaces it, with every field.
    let moved = Timer {
        attempts: 3,
        last_error: Some("Meta answered 503: ünavailable".to_owned()),
        waiting_since: Some(at(2)),
        polls: 7,
        stall_recorded: true,
        ..timer("1000000001", "complete_sync", 20)
    };
    timers.set(&moved, at(1)).await.expect("move");

    let of_first = timers
        .of_portfolio(&portfolio("1000000001"))
        .await
        .expect("of_portfolio");
    assert_eq!(
        of_first,
        vec![timer("1000000001", "check_eligibility", 5), moved.clone()],
        "one portfolio's timers in step order, every field as set"
    );

    let all = timers.all().await.expect("all");
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|timer| (timer.portfolio_id.as_str(), timer.step_key.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![
            ("1000000002", "connect"),
            ("1000000001", "check_eligibility"),
            ("1000000001", "complete_sync"),
        ],
        "soonest first"
    );

    assert_eq!(
        timers.due(at(0)).await.expect("due"),
        Vec::<PortfolioId>::new()
    );
    assert_eq!(
        timers.due(at(5)).await.expect("due"),
        vec![portfolio("1000000001"), portfolio("1000000002")],
        "a timer due exactly now is due; each portfolio once"
    );

    timers
        .remove(&portfolio("1000000001"), "check_eligibility")
        .await
        .expect("remove");
    timers
        .remove(&portfolio("1000000001"), "no_such_step")
        .await
        .expect("removing what is not there is no error");
    assert_eq!(
        timers.due(at(5)).await.expect("due"),
        vec![portfolio("1000000002")]
    );

    // Reopening (a restart) finds the timers as left.
    timers.close().await;
    let reopened = TimerStore::open(database.url())
        .await
        .expect("timers reopen");
    assert_eq!(reopened.all().await.expect("all").len(), 2);
    reopened.close().await;
}

async fn one_holder_at_a_time_and_a_lapsed_lease_is_taken_over(database: &TestDatabase) {
    let timers = open_timers(database).await;
    let first = timers.lease("instance-a");
    let second = timers.lease("instance-b");
    let ttl = Duration::from_secs(15);

    assert_eq!(first.current().await.expect("current"), None);
    assert!(
        first.try_hold(at(0), ttl).await.expect("hold"),
        "a free lease is taken"
    );
    assert!(
        !second.try_hold(at(0), ttl).await.expect("hold"),
        "a held lease is not taken"
    );
    // Renewing keeps the first acquisition time and moves the expiry.
    let renewed_at = at(0) + TimeDelta::seconds(5);
    assert!(first.try_hold(renewed_at, ttl).await.expect("renew"));
    let holder = first.current().await.expect("current").expect("a holder");
    assert_eq!(holder.holder, "instance-a");
    assert_eq!(holder.acquired_at, at(0));
    assert_eq!(holder.expires_at, renewed_at + TimeDelta::seconds(15));

    // Lapsed: the standby takes it, and the old holder can no longer renew.
    let lapsed = renewed_at + TimeDelta::seconds(15);
    assert!(second.try_hold(lapsed, ttl).await.expect("take over"));
    assert!(!first.try_hold(lapsed, ttl).await.expect("renew"));
    let holder = second.current().await.expect("current").expect("a holder");
    assert_eq!(
        (holder.holder.as_str(), holder.acquired_at),
        ("instance-b", lapsed)
    );

    // Releasing is only the holder's: a stranger's release changes nothing.
    first.release().await.expect("release by a non-holder");
    assert_eq!(
        second
            .current()
            .await
            .expect("current")
            .map(|holder| holder.holder),
        Some("instance-b".to_owned())
    );
    second.release().await.expect("release");
    assert_eq!(second.current().await.expect("current"), None);
    assert!(
        first
            .try_hold(lapsed, ttl)
            .await
            .expect("hold after release")
    );
    timers.close().await;
}

/// Many would-be holders racing for one free lease: exactly one wins.
async fn racing_holders_never_both_win(database: &TestDatabase) {
    let timers = open_timers(database).await;
    let ttl = Duration::from_secs(15);
    for round in 0..10_i64 {
        let now = at(round);
        let contenders: Vec<_> = (0..8)
            .map(|index| {
                let lease = timers.lease(format!("round-{round}-instance-{index}"));
                tokio::spawn(async move { lease.try_hold(now, ttl).await.expect("hold") })
            })
            .collect();
        let mut winners = 0;
        for contender in contenders {
            if contender.await.expect("contender task") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one holder");
        // Let the lease lapse before the next round.
        let holder = timers
            .lease("nobody")
            .current()
            .await
            .expect("current")
            .expect("a holder");
        assert_eq!(holder.expires_at, now + TimeDelta::seconds(15));
        let lease = timers.lease(holder.holder);
        lease.release().await.expect("release");
    }
    timers.close().await;
}

/// A lease of another name (the relay's) is its own row: holding it neither takes nor blocks the process
/// manager's, and the manager's own name or a blank one is refused.
async fn a_named_lease_is_independent_of_the_process_managers(database: &TestDatabase) {
    let timers = open_timers(database).await;
    let ttl = Duration::from_secs(30);
    let manager = timers.lease("instance-a");
    let relay = timers
        .lease_named("relay", "instance-b")
        .expect("a named lease");
    assert_eq!(relay.name(), "relay");
    assert!(
        manager.try_hold(at(0), ttl).await.expect("hold"),
        "the manager's lease is free"
    );
    assert!(
        relay.try_hold(at(0), ttl).await.expect("hold"),
        "the relay's lease is another row"
    );
    let other_relay = timers
        .lease_named("relay", "instance-c")
        .expect("a named lease");
    assert!(
        !other_relay.try_hold(at(0), ttl).await.expect("hold"),
        "a held named lease is not taken"
    );
    assert_eq!(
        relay
            .current()
            .await
            .expect("current")
            .map(|holder| holder.holder),
        Some("instance-b".to_owned())
    );
    assert_eq!(
        manager
            .current()
            .await
            .expect("current")
            .map(|holder| holder.holder),
        Some("instance-a".to_owned())
    );
    for name in ["", "  ", manager.name()] {
        assert!(
            timers.lease_named(name, "instance-d").is_err(),
            "{name:?} is refused"
        );
    }
}

/// Writes under the store, as only damage would.
async fn damage(database: &TestDatabase, statement: &'static str) {
    use sqlx::{Connection, Executor};
    match database.backend() {
        TestBackend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(database.url())
                .await
                .expect("a connection");
            connection.execute(statement).await.expect("damaged");
            connection.close().await.expect("closed");
        }
        TestBackend::Postgres => {
            let mut connection = database.postgres_connection().await.expect("a connection");
            connection.execute(statement).await.expect("damaged");
            connection.close().await.expect("closed");
        }
    }
}

async fn a_corrupt_row_is_an_error_naming_its_table_and_column_never_a_default(
    database: &TestDatabase,
) {
    let timers = open_timers(database).await;
    timers
        .set(&timer("1000000001", "connect", 1), at(0))
        .await
        .expect("set");
    damage(database, "UPDATE process_timers SET attempts = -1").await;
    let error = timers.all().await.expect_err("a negative count is corrupt");
    assert!(
        error
            .to_string()
            .contains("process_timers: attempts = -1 is out of range"),
        "{error}"
    );
    damage(
        database,
        "UPDATE process_timers SET attempts = 0, due_at = 9223372036854775807",
    )
    .await;
    let error = timers
        .of_portfolio(&portfolio("1000000001"))
        .await
        .expect_err("a time out of range is corrupt");
    assert!(
        error
            .to_string()
            .contains("process_timers: due_at = 9223372036854775807 is not a time"),
        "{error}"
    );

    let lease = timers.lease("first");
    assert!(
        lease
            .try_hold(at(0), Duration::from_secs(15))
            .await
            .expect("held")
    );
    damage(
        database,
        "UPDATE process_lease SET acquired_at = -9223372036854775807",
    )
    .await;
    let error = lease
        .current()
        .await
        .expect_err("a time out of range is corrupt");
    assert!(
        error
            .to_string()
            .contains("process_lease: acquired_at = -9223372036854775807 is not a time"),
        "{error}"
    );
    timers.close().await;
}

backend_tests!(
    timers_are_set_moved_listed_and_removed,
    one_holder_at_a_time_and_a_lapsed_lease_is_taken_over,
    a_named_lease_is_independent_of_the_process_managers,
    racing_holders_never_both_win,
    a_corrupt_row_is_an_error_naming_its_table_and_column_never_a_default,
);
