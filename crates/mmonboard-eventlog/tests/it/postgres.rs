//! What only the PostgreSQL log has: the same events hash to the same chain as on SQLite (so a log moves
//! between backends with its head hash), wake-ups by NOTIFY from other processes, a listener that
//! survives losing its connection, and several processes migrating one fresh database at once.

use std::time::Duration;

use sqlx::Connection;

use mmonboard_eventlog::conformance::{
    append_ok, events, replay_stopping_at, replayed, request, unique_stream,
};
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{
    EventStore, ExpectedVersion, PgEventStore, PgOptions, RecordedEvent, StoreError, Subscription,
    SubscriptionOptions,
};

use crate::support::{execute_raw, open_log};

const DEADLINE: Duration = Duration::from_secs(60);

async fn postgres() -> Option<TestDatabase> {
    TestDatabase::postgres().await
}

/// Never polls within a test: anything it is woken for came from the head watch.
fn no_polling() -> SubscriptionOptions {
    SubscriptionOptions {
        page_size: 100,
        poll_interval: Duration::from_secs(3600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_commands_give_the_same_chain_on_both_backends() {
    let Some(database) = postgres().await else {
        return;
    };
    let sqlite = TestDatabase::sqlite();
    let on_postgres = open_log(&database).await;
    let on_sqlite = open_log(&sqlite).await;
    let streams = [unique_stream("same-a"), unique_stream("same-b")];
    for round in 0..6_u64 {
        let stream = &streams[(round % 2) as usize];
        let mut command = request(stream, ExpectedVersion::Any, events(round % 3));
        command.metadata.actor = "an \"escaped\" actor ✓".to_owned();
        if let Some(event) = command.events.first_mut() {
            event.payload = "{ \"kept\" :  \"verbatim\",\n \"n\": [1,2] }".to_owned();
        }
        let from_postgres = on_postgres.append(command.clone()).await.expect("appends");
        let from_sqlite = on_sqlite.append(command).await.expect("appends");
        assert_eq!(
            from_postgres, from_sqlite,
            "same positions, versions and hashes"
        );
    }
    let postgres_report = on_postgres.verify().await.expect("verify");
    assert!(postgres_report.is_intact());
    assert_eq!(postgres_report, on_sqlite.verify().await.expect("verify"));
    assert_eq!(
        on_postgres.read_all(0, 100).await.expect("read"),
        on_sqlite.read_all(0, 100).await.expect("read")
    );
    on_postgres.close().await;
    on_sqlite.close().await;
    database.cleanup().await;
    sqlite.cleanup().await;
}

/// Reads of every length through a store that reads `COPY` from the first event, and one that never does.
fn copy_options(copy_reads_from: usize) -> PgOptions {
    PgOptions {
        copy_reads_from,
        // One reader: a connection a failed read left behind would serve the next read.
        read_connections: 1,
        ..PgOptions::default()
    }
}

/// A fresh database whose log holds one stream of `count` events, and those events; `None` where PostgreSQL
/// may be skipped.
async fn a_log_of(
    count: u64,
) -> Option<(
    TestDatabase,
    mmonboard_eventlog::EventLog,
    Vec<RecordedEvent>,
)> {
    let database = postgres().await?;
    let log = open_log(&database).await;
    let stream = unique_stream("copy");
    let appended = append_ok(
        &log,
        request(&stream, ExpectedVersion::NoStream, events(count)),
    )
    .await;
    Some((database, log, appended))
}

/// Reads take each value as the wire sends it, so a column whose type changed under the log (an insider's
/// ALTER TABLE) is refused with the types found, never read as garbage: one of another width, and one of the
/// same eight bytes, which only a type check can tell from the real thing. A `SELECT` is checked by the
/// types its rows carry, a `COPY` by the statement's own check. Once the type is changed back, the same
/// stores read again: the connection the refused read used was not left broken in the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_of_another_type_is_refused_by_name() {
    for (column, new_type, found_by_select, found_by_copy) in [
        (
            "schema_version",
            "integer",
            "\"INT4\"",
            "schema_version integer",
        ),
        (
            "recorded_at",
            "float8",
            "\"FLOAT8\"",
            "recorded_at double precision",
        ),
    ] {
        let Some((database, log, _)) = a_log_of(2).await else {
            return;
        };
        let by_select = PgEventStore::open(database.url(), copy_options(usize::MAX))
            .await
            .expect("opens");
        let by_copy = PgEventStore::open(database.url(), copy_options(1))
            .await
            .expect("opens");
        let before = by_select.read_all(0, 10).await.expect("reads");
        assert_eq!(by_copy.read_all(0, 10).await.expect("reads"), before);
        let alter = |to: &str| format!("ALTER TABLE events ALTER COLUMN {column} TYPE {to}");
        execute_raw(&database, &alter(new_type))
            .await
            .expect("the column's type changes");
        // The SELECT store's statement was prepared before the change; the server refuses to run it
        // ("cached plan must not change result type"), so a fresh store shows the decoder's own check.
        let fresh_select = PgEventStore::open_read_only(database.url(), copy_options(usize::MAX))
            .await
            .expect("opens");
        for (store, found, not) in [
            (&fresh_select, found_by_select, "not [\"INT8\""),
            (&by_copy, found_by_copy, "not (event_id uuid"),
        ] {
            let message = store
                .read_all(0, 10)
                .await
                .expect_err("a read of the changed table fails")
                .to_string();
            assert!(
                message.contains(found) && message.contains(not),
                "{column}: {message}"
            );
        }
        execute_raw(&database, &alter("bigint"))
            .await
            .expect("the column's type changes back");
        assert_eq!(by_copy.read_all(0, 10).await.expect("reads again"), before);
        for store in [by_select, by_copy, fresh_select] {
            store.close().await;
        }
        log.close().await;
        database.cleanup().await;
    }
}

/// A `COPY` read and a `SELECT` read of the same log give the same events, for short and long pages, pages
/// read as two halves, pages ending at the head, and a limit beyond any position (a read past the head is a
/// `SELECT` on both stores, as their head watches know of nothing there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_select_reads_give_the_same_events() {
    let Some(database) = postgres().await else {
        return;
    };
    let log = open_log(&database).await;
    let streams = [unique_stream("copy-a"), unique_stream("copy-b")];
    for round in 0..12_u64 {
        let stream = &streams[(round % 2) as usize];
        let mut command = request(stream, ExpectedVersion::Any, events(100));
        command.metadata.actor = format!("an \"escaped\" actor ✓ {round}");
        if let Some(event) = command.events.first_mut() {
            event.payload = "{ \"kept\" :  \"verbatim ✓\",\n \"n\": [1,2] }".to_owned();
        }
        append_ok(&log, command).await;
    }
    let by_select = PgEventStore::open(database.url(), copy_options(usize::MAX))
        .await
        .expect("opens");
    let by_copy = PgEventStore::open(database.url(), copy_options(1))
        .await
        .expect("opens");
    for (after, limit) in [
        (0, usize::MAX),
        (0, 2000),
        (0, 1200),
        (5, 1500),
        (600, 1024),
        (1199, 10),
        (1200, 10),
    ] {
        let expected = by_select.read_all(after, limit).await.expect("reads");
        let last = after.saturating_add(limit as u64).min(1200);
        assert_eq!(
            expected
                .iter()
                .map(|event| event.global_position)
                .collect::<Vec<_>>(),
            (after + 1..=last).collect::<Vec<_>>(),
            "read_all({after}, {limit})"
        );
        assert_eq!(
            by_copy.read_all(after, limit).await.expect("reads"),
            expected,
            "read_all({after}, {limit})"
        );
    }
    by_select.close().await;
    by_copy.close().await;
    log.close().await;
    database.cleanup().await;
}

/// A store reading replays of at least `copy_reads_from` events as `COPY` segments that long, two fetched
/// at once.
fn segment_options(copy_reads_from: usize) -> PgOptions {
    PgOptions {
        copy_reads_from,
        read_connections: 3,
        ..PgOptions::default()
    }
}

/// A replay read as `COPY` segments (here of 64 events, two fetched at once) lends exactly the events
/// `read_all` returns: from the start, from the middle of a segment, with a limit inside a segment, past the
/// head, with events appended since the store opened, with the last events gone while the head watch still
/// counts them (a segment cut short), and past a gap an insider made, where the segments no longer line up. A visitor's
/// error stops it midway, and the connections of the segments still being fetched are not left broken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_by_copy_segments_visits_what_read_all_returns() {
    let Some((database, log, _)) = a_log_of(1_000).await else {
        return;
    };
    let by_select = PgEventStore::open(database.url(), copy_options(usize::MAX))
        .await
        .expect("opens");
    let by_segments = PgEventStore::open(database.url(), segment_options(64))
        .await
        .expect("opens");
    for (after, limit) in [
        (0, usize::MAX),
        (0, 640),
        (5, 333),
        (900, 500),
        (999, 10),
        (1_000, 10),
        (0, 0),
    ] {
        assert_eq!(
            replayed(&by_segments, after, limit).await,
            by_select.read_all(after, limit).await.expect("reads"),
            "replay({after}, {limit})"
        );
    }
    // Events appended since the store opened are visited too, whether its head watch has heard of them yet
    // (they are in the planned segments) or not (they are read through `read_all` after them).
    let stream = unique_stream("copy-late");
    append_ok(
        &log,
        request(&stream, ExpectedVersion::NoStream, events(70)),
    )
    .await;
    let everything = by_select.read_all(0, usize::MAX).await.expect("reads");
    assert_eq!(everything.len(), 1_070);
    assert_eq!(replayed(&by_segments, 0, usize::MAX).await, everything);
    let mut head = by_segments.watch_head();
    tokio::time::timeout(DEADLINE, head.wait_for(|head| *head >= 1_070))
        .await
        .expect("the head watch hears of the late events in time")
        .expect("the store is open");

    // Segments of 200, all fetched while the visitor fails on the first event: the fetches it aborts (some
    // mid-COPY) leave no broken connection behind.
    let aborting = PgEventStore::open(database.url(), segment_options(200))
        .await
        .expect("opens");
    for _ in 0..3 {
        let (stopped, seen) = replay_stopping_at(&aborting, 0, 1).await;
        assert!(
            matches!(stopped, Err(StoreError::Invalid(_))),
            "{stopped:?}"
        );
        assert_eq!(seen, [1]);
        assert_eq!(replayed(&aborting, 0, usize::MAX).await, everything);
    }
    aborting.close().await;

    let (stopped, seen) = replay_stopping_at(&by_segments, 0, 300).await;
    assert!(
        matches!(stopped, Err(StoreError::Invalid(_))),
        "{stopped:?}"
    );
    assert_eq!(seen, (1..=300).collect::<Vec<_>>());
    assert_eq!(replayed(&by_segments, 0, usize::MAX).await, everything);

    // The log's last events gone while the store's head watch still counts them: the last segment comes
    // back short, which is the end of the log.
    execute_raw(
        &database,
        "ALTER TABLE events DISABLE TRIGGER USER; \
         DELETE FROM events WHERE global_position > 1060; \
         ALTER TABLE events ENABLE TRIGGER USER",
    )
    .await
    .expect("an insider deletes the last rows");
    let cut_short = by_select.read_all(0, usize::MAX).await.expect("reads");
    assert_eq!(cut_short.len(), 1_060);
    assert_eq!(replayed(&by_segments, 0, usize::MAX).await, cut_short);

    execute_raw(
        &database,
        "ALTER TABLE events DISABLE TRIGGER USER;          DELETE FROM events WHERE global_position = 150;          ALTER TABLE events ENABLE TRIGGER USER",
    )
    .await
    .expect("an insider deletes a row");
    let with_a_gap = by_select.read_all(0, usize::MAX).await.expect("reads");
    assert_eq!(with_a_gap.len(), 1_059);
    assert_eq!(replayed(&by_segments, 0, usize::MAX).await, with_a_gap);
    by_select.close().await;
    by_segments.close().await;
    log.close().await;
    database.cleanup().await;
}

/// A row that cannot be decoded fails a `COPY` read in the middle of its stream, naming the position; the
/// connection is closed rather than returned inside the COPY, so the next read works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_read_failing_midway_leaves_no_broken_connection() {
    let Some((database, log, _)) = a_log_of(300).await else {
        return;
    };
    execute_raw(
        &database,
        "ALTER TABLE events DISABLE TRIGGER USER; \
         UPDATE events SET stream_id = 'a control ' || chr(1) WHERE global_position = 200; \
         ALTER TABLE events ENABLE TRIGGER USER",
    )
    .await
    .expect("an insider corrupts a row");
    let by_copy = PgEventStore::open(database.url(), copy_options(1))
        .await
        .expect("opens");
    match by_copy.read_all(0, 300).await {
        Err(StoreError::Corrupt {
            global_position, ..
        }) => assert_eq!(global_position, 200),
        other => panic!("expected the corrupt row to be named, got {other:?}"),
    }
    let before = by_copy.read_all(0, 150).await.expect("the next read works");
    assert_eq!(before.len(), 150);
    by_copy.close().await;
    log.close().await;
    database.cleanup().await;
}

/// A read-only store on a log last migrated before the columns check existed reads through `SELECT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_the_columns_check_is_read_by_select() {
    let Some((database, log, appended)) = a_log_of(3).await else {
        return;
    };
    execute_raw(&database, "DROP FUNCTION mmonboard_event_columns_checked()")
        .await
        .expect("the check is gone");
    let reader = PgEventStore::open_read_only(database.url(), copy_options(1))
        .await
        .expect("opens");
    assert_eq!(reader.read_all(0, 10).await.expect("reads"), appended);
    reader.close().await;
    log.close().await;
    database.cleanup().await;
}

/// Another store's commit (another process's, in production) wakes a subscriber that never polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_commit_wakes_a_subscriber_by_notify() {
    let Some(database) = postgres().await else {
        return;
    };
    let ours = std::sync::Arc::new(open_log(&database).await);
    let theirs = open_log(&database).await;
    let mut subscription = Subscription::after(std::sync::Arc::clone(&ours), 0, no_polling());
    let waiting = tokio::spawn(async move { subscription.next_batch().await.map(|b| b.len()) });
    let stream = unique_stream("notified");
    append_ok(
        &theirs,
        request(&stream, ExpectedVersion::NoStream, events(2)),
    )
    .await;
    let delivered = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("woken before the deadline")
        .expect("joined")
        .expect("a batch");
    assert!((1..=2).contains(&delivered));
    theirs.close().await;
    crate::support::close_shared(ours).await;
    database.cleanup().await;
}

/// Killing the listener's connection loses the notifications sent meanwhile, not the wake-up: the
/// listener reconnects and looks at the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_after_losing_its_connection() {
    let Some(database) = postgres().await else {
        return;
    };
    let ours = PgEventStore::open(database.url(), PgOptions::default())
        .await
        .expect("opens");
    let theirs = open_log(&database).await;
    let mut head = ours.watch_head();
    let mut admin = database.postgres_connection().await.expect("a connection");
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'mmonboard-eventlog-listener') t",
    )
    .fetch_one(&mut admin)
    .await
    .expect("terminates");
    assert!(terminated >= 1, "the listeners' connections were found");
    let stream = unique_stream("after-reconnect");
    append_ok(
        &theirs,
        request(&stream, ExpectedVersion::NoStream, events(3)),
    )
    .await;
    tokio::time::timeout(DEADLINE, head.wait_for(|position| *position >= 3))
        .await
        .expect("the head moved before the deadline")
        .expect("the store is open");
    // And it goes on hearing later commits.
    append_ok(
        &theirs,
        request(&stream, ExpectedVersion::Exact(3), events(1)),
    )
    .await;
    tokio::time::timeout(DEADLINE, head.wait_for(|position| *position >= 4))
        .await
        .expect("the head moved before the deadline")
        .expect("the store is open");
    theirs.close().await;
    ours.close().await;
    database.cleanup().await;
}

/// Several processes starting at once on a fresh database: sqlx's migration lock lets one migrate, the
/// others find it migrated, and all of them work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_fresh_database_all_work() {
    let Some(database) = postgres().await else {
        return;
    };
    let (first, second, third) = tokio::join!(
        open_log(&database),
        open_log(&database),
        open_log(&database)
    );
    let stream = unique_stream("all");
    for (version, store) in [&first, &second, &third].into_iter().enumerate() {
        append_ok(
            store,
            request(&stream, ExpectedVersion::Exact(version as u64), events(1)),
        )
        .await;
    }
    assert_eq!(third.stream_version(&stream).await.expect("version"), 3);
    for store in [first, second, third] {
        store.close().await;
    }
    database.cleanup().await;
}

#[tokio::test]
async fn bad_urls_and_options_are_refused_with_the_reason() {
    match PgEventStore::open("postgres://[::1", PgOptions::default()).await {
        Err(StoreError::Invalid(message)) => {
            assert!(message.contains("bad PostgreSQL URL"), "{message}")
        }
        Err(other) => panic!("expected Invalid, got {other}"),
        Ok(_) => panic!("a malformed URL opened"),
    }
    let options = PgOptions {
        max_batch: 0,
        ..PgOptions::default()
    };
    match PgEventStore::open("postgres://postgres@127.0.0.1/test", options).await {
        Err(StoreError::Invalid(message)) => assert!(message.contains("max_batch"), "{message}"),
        Err(other) => panic!("expected Invalid, got {other}"),
        Ok(_) => panic!("max_batch 0 was accepted"),
    }
}

/// Another process holding the log's write lock: an append waits for the lock timeout and fails with Busy,
/// writing nothing, both when the writer would commit in one trip (it wrote last, so it decides alone and
/// its insert takes the lock itself) and when it reads first (after the failure it knows nothing); once the
/// lock is released the next append lands right after the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_lock_makes_appends_busy_until_released() {
    let Some(database) = postgres().await else {
        return;
    };
    let lock_timeout = Duration::from_millis(50);
    let options = mmonboard_eventlog::LogOptions {
        postgres: PgOptions {
            lock_timeout,
            ..PgOptions::default()
        },
        ..crate::support::fast_options()
    };
    let store = crate::support::open_log_with(&database, &options).await;
    let stream = unique_stream("busy");
    append_ok(
        &store,
        request(&stream, ExpectedVersion::NoStream, events(1)),
    )
    .await;

    let mut other_process = database
        .postgres_connection()
        .await
        .expect("a PostgreSQL connection");
    sqlx::raw_sql("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut other_process)
        .await
        .expect("the other process takes the lock");
    for attempt in ["deciding alone", "reading first"] {
        match store
            .append(request(&stream, ExpectedVersion::Exact(1), events(1)))
            .await
        {
            Err(mmonboard_eventlog::AppendError::Store(StoreError::Busy { waited })) => {
                assert_eq!(waited, lock_timeout, "{attempt}");
            }
            other => panic!("{attempt}: expected Busy, got {other:?}"),
        }
    }
    // Readers do not wait for writers.
    assert_eq!(store.stream_version(&stream).await.expect("version"), 1);
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut other_process)
        .await
        .expect("the other process lets go");
    sqlx::Connection::close(other_process)
        .await
        .expect("the other process disconnects");

    let appended = append_ok(
        &store,
        request(&stream, ExpectedVersion::Exact(1), events(1)),
    )
    .await;
    assert_eq!(
        appended[0].global_position, 2,
        "the busy appends wrote nothing"
    );
    assert!(store.verify().await.expect("verify").is_intact());
    store.close().await;
    database.cleanup().await;
}

/// A role that may read the log but not call the columns check (a hardened database that revoked EXECUTE
/// from PUBLIC) reads through `SELECT`, the same events, instead of failing every long read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_call_the_check_reads_by_select() {
    let Some((database, log, appended)) = a_log_of(3).await else {
        return;
    };
    let role = format!("mmonboard_reader_{}", uuid::Uuid::now_v7().simple());
    execute_raw(
        &database,
        &format!(
            "REVOKE EXECUTE ON FUNCTION mmonboard_event_columns_checked() FROM PUBLIC; \
             CREATE ROLE {role} LOGIN; GRANT SELECT ON events, commands TO {role}"
        ),
    )
    .await
    .expect("a reader role without EXECUTE");
    let mut url = url::Url::parse(database.url()).expect("the test URL parses");
    url.set_username(&role).expect("a URL with a user");
    let mut as_reader = sqlx::PgConnection::connect(url.as_str())
        .await
        .expect("the reader connects");
    let refused = sqlx::raw_sql("SELECT mmonboard_event_columns_checked()")
        .execute(&mut as_reader)
        .await
        .expect_err("the reader may not call the check");
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );
    as_reader.close().await.expect("closes");
    let reader = PgEventStore::open_read_only(url.as_str(), copy_options(1))
        .await
        .expect("opens");
    assert_eq!(reader.read_all(0, 10).await.expect("reads"), appended);
    reader.close().await;
    execute_raw(
        &database,
        &format!("DROP OWNED BY {role}; DROP ROLE {role}"),
    )
    .await
    .expect("the role is dropped");
    log.close().await;
    database.cleanup().await;
}
