//! The signed checkpoints' conformance suite, on each backend: recorded at the head after the chain is
//! checked, once per key and position, append-only, checked against the log (signature, trusted key, the hash
//! still at its position), exported beside the events and imported with them; a wrong key fails by name.

use chrono::{TimeZone, Utc};
use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::testing::TestDatabase;
use mmonboard_eventlog::{
    CheckpointError, CheckpointKey, EventLog, EventStore, ExpectedVersion, ExportRange,
    RecordOutcome, SignedCheckpoints, TrustedKey, backend_tests, check_checkpoints, export, import,
    verify_export_trusting,
};

use crate::support::{execute_raw, fast_options, open_log};

backend_tests!(
    checkpoints_are_recorded_once_per_key_and_position,
    an_empty_log_has_nothing_to_sign,
    the_table_is_append_only,
    checkpoints_are_checked_against_the_log_and_the_trusted_keys,
    a_broken_log_is_not_signed,
    checkpoints_travel_in_the_export_and_the_import,
);

fn key(n: u8) -> CheckpointKey {
    CheckpointKey::from_seed(&[n; 32])
}

fn at(minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, minute, 0)
        .single()
        .expect("a valid time")
}

/// Five events, then `checkpoints` opened beside them.
async fn five_events(database: &TestDatabase) -> (EventLog, SignedCheckpoints) {
    let log = open_log(database).await;
    let stream = unique_stream("signed");
    append_ok(&log, request(&stream, ExpectedVersion::NoStream, events(3))).await;
    append_ok(&log, request(&stream, ExpectedVersion::Exact(3), events(2))).await;
    let checkpoints = SignedCheckpoints::open(database.url())
        .await
        .expect("the checkpoints open");
    (log, checkpoints)
}

async fn recorded(
    checkpoints: &SignedCheckpoints,
    log: &EventLog,
    key: &CheckpointKey,
    now: chrono::DateTime<Utc>,
) -> RecordOutcome {
    checkpoints.record(log, key, now).await.expect("recorded")
}

async fn checkpoints_are_recorded_once_per_key_and_position(database: &TestDatabase) {
    let (log, checkpoints) = five_events(database).await;
    let head = log.verify().await.expect("verify").head.expect("a head");
    let RecordOutcome::Recorded(first) = recorded(&checkpoints, &log, &key(1), at(0)).await else {
        panic!("the head was not signed");
    };
    assert_eq!((first.position, first.head_hash), head);
    assert_eq!(first.key_id, key(1).key_id());
    assert_eq!(first.recorded_at(), Some(at(0)));
    // Again at the same head: nothing new.
    assert_eq!(
        recorded(&checkpoints, &log, &key(1), at(1)).await,
        RecordOutcome::AlreadySigned(first.clone())
    );
    // Another key signs the same position.
    let RecordOutcome::Recorded(other) = recorded(&checkpoints, &log, &key(2), at(1)).await else {
        panic!("the second key did not sign");
    };
    let stream = unique_stream("signed-more");
    append_ok(&log, request(&stream, ExpectedVersion::NoStream, events(2))).await;
    let RecordOutcome::Recorded(later) = recorded(&checkpoints, &log, &key(1), at(2)).await else {
        panic!("the new head was not signed");
    };
    assert_eq!(later.position, 7);
    let listed = checkpoints.list().await.expect("the list");
    let mut expected = vec![first.clone(), other.clone(), later.clone()];
    expected.sort_by(|a, b| (a.position, &a.key_id).cmp(&(b.position, &b.key_id)));
    assert_eq!(listed, expected);
    // The log reads the same rows on its own connections.
    assert_eq!(
        log.signed_checkpoints().await.expect("the log's list"),
        expected
    );
    checkpoints.close().await;
    log.close().await;
}

async fn an_empty_log_has_nothing_to_sign(database: &TestDatabase) {
    let log = open_log(database).await;
    let checkpoints = SignedCheckpoints::open(database.url())
        .await
        .expect("the checkpoints open");
    assert_eq!(
        recorded(&checkpoints, &log, &key(1), at(0)).await,
        RecordOutcome::EmptyLog
    );
    assert!(checkpoints.list().await.expect("the list").is_empty());
    checkpoints.close().await;
    log.close().await;
}

async fn the_table_is_append_only(database: &TestDatabase) {
    let (log, checkpoints) = five_events(database).await;
    recorded(&checkpoints, &log, &key(1), at(0)).await;
    for sql in [
        "UPDATE signed_checkpoints SET position = 4",
        "DELETE FROM signed_checkpoints",
    ] {
        let error = execute_raw(database, sql)
            .await
            .expect_err("the table refuses the change");
        assert!(error.to_string().contains("append-only"), "{sql}: {error}");
    }
    assert_eq!(checkpoints.list().await.expect("the list").len(), 1);
    checkpoints.close().await;
    log.close().await;
}

async fn checkpoints_are_checked_against_the_log_and_the_trusted_keys(database: &TestDatabase) {
    let (log, checkpoints) = five_events(database).await;
    recorded(&checkpoints, &log, &key(1), at(0)).await;
    let report = log.verify().await.expect("verify");
    let stored = checkpoints.list().await.expect("the list");

    let trusted = [key(1).trusted()];
    let sound = check_checkpoints(&log, &stored, &trusted, report.head)
        .await
        .expect("checked");
    assert_eq!(sound.first_break, None);
    assert_eq!(sound.newest.as_ref(), stored.first());

    // Without trusted keys every signature is still checked against its own key.
    let untrusted = check_checkpoints(&log, &stored, &[], report.head)
        .await
        .expect("checked");
    assert_eq!(untrusted.first_break, None);

    let wrong = [key(9).trusted()];
    let refused = check_checkpoints(&log, &stored, &wrong, report.head)
        .await
        .expect("checked")
        .first_break
        .expect("a wrong key fails");
    assert_eq!(refused.global_position, 5);
    assert!(
        refused.reason.contains("not a trusted key") && refused.reason.contains(key(9).key_id()),
        "{}",
        refused.reason
    );

    // No checkpoint at all proves nothing to someone who asked for one.
    let none = check_checkpoints(&log, &[], &trusted, report.head)
        .await
        .expect("checked")
        .first_break
        .expect("nothing signed");
    assert!(none.reason.contains("no checkpoint"), "{}", none.reason);

    // A checkpoint beyond the head: the log was cut back.
    let short = check_checkpoints(&log, &stored, &trusted, Some((4, [0; 32])))
        .await
        .expect("checked")
        .first_break
        .expect("cut off");
    assert_eq!(short.global_position, 5);
    assert!(short.reason.contains("missing"), "{}", short.reason);

    // An altered checkpoint no longer verifies.
    let mut altered = stored[0].clone();
    altered.recorded_at_micros += 1;
    let forged = check_checkpoints(&log, &[altered], &trusted, report.head)
        .await
        .expect("checked")
        .first_break
        .expect("a forged checkpoint");
    assert!(
        forged.reason.contains("does not verify"),
        "{}",
        forged.reason
    );
    checkpoints.close().await;
    log.close().await;
}

async fn a_broken_log_is_not_signed(database: &TestDatabase) {
    let (log, checkpoints) = five_events(database).await;
    let sql = match database.backend() {
        mmonboard_eventlog::testing::TestBackend::Sqlite => {
            "DROP TRIGGER events_no_update; UPDATE events SET payload = '{\"n\":1}' WHERE global_position = 2"
        }
        mmonboard_eventlog::testing::TestBackend::Postgres => {
            "BEGIN; ALTER TABLE events DISABLE TRIGGER events_no_update; UPDATE events SET payload = \
             '{\"n\":1}' WHERE global_position = 2; ALTER TABLE events ENABLE TRIGGER events_no_update; \
             COMMIT"
        }
    };
    execute_raw(database, sql).await.expect("tampered");
    match checkpoints.record(&log, &key(1), at(0)).await {
        Err(CheckpointError::Broken(found)) => assert_eq!(found.global_position, 2, "{found:?}"),
        other => panic!("a broken log was signed: {other:?}"),
    }
    assert!(checkpoints.list().await.expect("the list").is_empty());
    checkpoints.close().await;
    log.close().await;
}

async fn checkpoints_travel_in_the_export_and_the_import(database: &TestDatabase) {
    let (log, checkpoints) = five_events(database).await;
    recorded(&checkpoints, &log, &key(1), at(0)).await;
    let stream = unique_stream("signed-tail");
    append_ok(&log, request(&stream, ExpectedVersion::NoStream, events(2))).await;
    recorded(&checkpoints, &log, &key(1), at(1)).await;
    let mut exported = Vec::new();
    let summary = export(&log, ExportRange::default(), &mut exported, &mut |_| {})
        .await
        .expect("the export");
    assert_eq!((summary.events, summary.checkpoints), (7, 2));
    let text = String::from_utf8(exported.clone()).expect("UTF-8");
    let kinds: Vec<&str> = text
        .lines()
        .map(|line| {
            if line.contains("\"kind\":\"checkpoint\"") {
                "c"
            } else if line.contains("\"kind\":\"event\"") {
                "e"
            } else {
                "h"
            }
        })
        .collect();
    // Each checkpoint right after the event it signs.
    assert_eq!(kinds.concat(), "heeeeeceec");

    let trusted = [key(1).trusted()];
    let file = verify_export_trusting(&exported[..], None, &trusted).expect("verify the file");
    assert!(file.is_intact(), "{:?}", file.first_break);
    assert_eq!(file.checkpoints_checked, 2);
    assert_eq!(
        file.newest_checkpoint.map(|checkpoint| checkpoint.position),
        Some(7)
    );
    let wrong = verify_export_trusting(&exported[..], None, &[key(3).trusted()])
        .expect("verify the file")
        .first_break
        .expect("a wrong key fails");
    assert_eq!((wrong.line, wrong.global_position), (7, Some(5)));
    assert!(
        wrong.reason.contains("not a trusted key"),
        "{}",
        wrong.reason
    );

    // A line dropped from the middle: the checkpoint of 5 no longer follows event 5.
    let without_five: String = text
        .lines()
        .filter(|line| !line.contains("\"position\":5,\"stream\""))
        .map(|line| format!("{line}\n"))
        .collect();
    let dropped = verify_export_trusting(without_five.as_bytes(), None, &trusted)
        .expect("verify the file")
        .first_break
        .expect("a missing event");
    assert_eq!(dropped.global_position, Some(5), "{dropped:?}");
    assert!(
        dropped.reason.contains("follows the event at position 4"),
        "{}",
        dropped.reason
    );

    for target_backend in [
        mmonboard_eventlog::testing::TestBackend::Sqlite,
        mmonboard_eventlog::testing::TestBackend::Postgres,
    ] {
        let Some(target) = TestDatabase::on(target_backend).await else {
            continue;
        };
        let imported = import(target.url(), &fast_options(), &exported[..])
            .await
            .expect("the import");
        assert_eq!((imported.events, imported.checkpoints), (7, 2));
        let restored = EventLog::open(target.url(), &fast_options())
            .await
            .expect("the restored log");
        assert_eq!(
            restored.signed_checkpoints().await.expect("the list"),
            checkpoints.list().await.expect("the list")
        );
        let mut again = Vec::new();
        export(&restored, ExportRange::default(), &mut again, &mut |_| {})
            .await
            .expect("the second export");
        assert_eq!(
            again, exported,
            "the export of the import is byte-identical"
        );
        let head = restored.verify().await.expect("verify").head;
        let stored = restored.signed_checkpoints().await.expect("the list");
        let report = check_checkpoints(&restored, &stored, &trusted, head)
            .await
            .expect("checked");
        assert_eq!(report.first_break, None);
        restored.close().await;
        target.cleanup().await;
    }
    checkpoints.close().await;
    log.close().await;
}

#[test]
fn key_texts_round_trip_and_bad_ones_are_named() {
    let key = CheckpointKey::from_seed(&[7; 32]);
    let again = CheckpointKey::parse(&key.private_text()).expect("the private text");
    assert_eq!(again.key_id(), key.key_id());
    let public = key.trusted();
    assert_eq!(
        TrustedKey::parse(&public.text()).expect("the public text"),
        public
    );
    assert_eq!(public.key_id().len(), 16);
    let error = TrustedKey::parse("ed25519:abc")
        .expect_err("short")
        .to_string();
    assert!(error.contains("64 hex digits"), "{error}");
    let error = TrustedKey::from_argument("/nonexistent/key.pub")
        .expect_err("no file")
        .to_string();
    assert!(error.contains("neither a public key"), "{error}");
    let error = CheckpointKey::parse(&public.text())
        .expect_err("a public key")
        .to_string();
    assert!(error.contains("not an mmonboard signing key"), "{error}");
}
