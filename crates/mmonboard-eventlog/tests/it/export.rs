//! Export, offline verification of an export file, and import, on each backend: an import into an empty
//! log keeps positions, ids, times and hashes (the same head hash, the same export byte for byte, the
//! command records rebuilt); a broken file or a non-empty target writes nothing; `verify_export` names the
//! first broken line and position.

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_eventlog::{
    EventLog, EventStore, ExpectedVersion, ExportError, ExportRange, backend_tests, export, import,
    verify_export,
};

use crate::support::{fast_options, open_log};

backend_tests!(
    an_export_imports_byte_identical,
    a_non_empty_target_is_refused_and_nothing_written,
    a_corrupted_line_is_refused_by_import_and_verify,
    a_partial_export_verifies_but_does_not_import,
);

/// Ten events in four commands on two streams.
async fn ten_events(log: &EventLog) {
    let first = unique_stream("export-a");
    let second = unique_stream("export-b");
    append_ok(log, request(&first, ExpectedVersion::NoStream, events(3))).await;
    append_ok(log, request(&second, ExpectedVersion::NoStream, events(2))).await;
    append_ok(log, request(&first, ExpectedVersion::Exact(3), events(4))).await;
    append_ok(log, request(&second, ExpectedVersion::Exact(2), events(1))).await;
}

async fn export_bytes(log: &EventLog, range: ExportRange) -> Vec<u8> {
    let mut out = Vec::new();
    export(log, range, &mut out, &mut |_| {})
        .await
        .expect("the export");
    out
}

async fn another(database: &TestDatabase) -> TestDatabase {
    TestDatabase::on(database.backend())
        .await
        .expect("a second test database")
}

async fn an_export_imports_byte_identical(database: &TestDatabase) {
    let log = open_log(database).await;
    ten_events(&log).await;
    let exported = export_bytes(&log, ExportRange::default()).await;
    let source_head = log.verify().await.expect("verify").head;
    assert_eq!(source_head.map(|(position, _)| position), Some(10));
    let file = verify_export(&exported[..]).expect("verify the file");
    assert!(file.is_intact(), "{:?}", file.first_break);
    assert_eq!((file.events_checked, file.head), (10, source_head));

    let target = another(database).await;
    let summary = import(target.url(), &fast_options(), &exported[..])
        .await
        .expect("the import");
    assert_eq!((summary.events, summary.commands), (10, 4));
    assert_eq!(summary.head, source_head);
    let imported = open_log(&target).await;
    let report = imported.verify().await.expect("verify the import");
    assert_eq!(report.first_break, None);
    assert_eq!(report.head, source_head);
    assert_eq!(
        export_bytes(&imported, ExportRange::default()).await,
        exported
    );
    // The command records came along: a retried command is still recognised.
    let first = log.read_all(0, 1).await.expect("read")[0].clone();
    let found = imported
        .find_command(first.metadata.command_id)
        .await
        .expect("find the command")
        .expect("a known command");
    assert_eq!(found.len(), 3);
    imported.close().await;
    log.close().await;
    target.cleanup().await;
}

async fn a_non_empty_target_is_refused_and_nothing_written(database: &TestDatabase) {
    let log = open_log(database).await;
    ten_events(&log).await;
    let exported = export_bytes(&log, ExportRange::default()).await;
    let error = import(database.url(), &fast_options(), &exported[..])
        .await
        .expect_err("a non-empty target");
    assert!(error.to_string().contains("not empty"), "{error}");
    assert_eq!(log.head_position().await.expect("head"), 10);
    assert!(log.verify().await.expect("verify").is_intact());
    log.close().await;
}

async fn a_corrupted_line_is_refused_by_import_and_verify(database: &TestDatabase) {
    let log = open_log(database).await;
    ten_events(&log).await;
    let exported =
        String::from_utf8(export_bytes(&log, ExportRange::default()).await).expect("UTF-8");
    log.close().await;
    let mut lines: Vec<String> = exported.lines().map(str::to_owned).collect();
    // Line 8 is position 7: a payload byte changed (still valid JSON, still the exact form).
    lines[7] = lines[7].replacen(r#"\"n\":"#, r#"\"m\":"#, 1);
    assert_ne!(lines[7], exported.lines().nth(7).unwrap_or_default());
    let corrupted = lines.join("\n") + "\n";

    let report = verify_export(corrupted.as_bytes()).expect("verify the file");
    let found = report.first_break.expect("a break");
    assert_eq!((found.line, found.global_position), (8, Some(7)));
    assert!(found.reason.contains("hash mismatch"), "{}", found.reason);
    assert_eq!(report.head.map(|(position, _)| position), Some(6));

    let target = another(database).await;
    match import(target.url(), &fast_options(), corrupted.as_bytes()).await {
        Err(ExportError::Broken(found)) => assert_eq!(found.global_position, Some(7)),
        other => panic!("expected a broken file, got {other:?}"),
    }
    let imported = open_log(&target).await;
    assert_eq!(imported.head_position().await.expect("head"), 0);
    imported.close().await;

    // A line in another form (a space added) is refused even where no hashed field changed.
    let mut spaced = exported.lines().map(str::to_owned).collect::<Vec<_>>();
    spaced[2] = spaced[2].replacen(r#","stream""#, r#", "stream""#, 1);
    let report = verify_export((spaced.join("\n") + "\n").as_bytes()).expect("verify");
    let found = report.first_break.expect("a break");
    assert_eq!((found.line, found.global_position), (3, Some(2)));
    assert!(found.reason.contains("exact form"), "{}", found.reason);
    target.cleanup().await;
}

async fn a_partial_export_verifies_but_does_not_import(database: &TestDatabase) {
    let log = open_log(database).await;
    ten_events(&log).await;
    let part = export_bytes(
        &log,
        ExportRange {
            after: 4,
            to: Some(8),
        },
    )
    .await;
    let report = verify_export(&part[..]).expect("verify the part");
    assert!(report.is_intact(), "{:?}", report.first_break);
    assert_eq!(report.events_checked, 4);
    assert_eq!(report.head.map(|(position, _)| position), Some(8));
    let target = another(database).await;
    let error = import(target.url(), &fast_options(), &part[..])
        .await
        .expect_err("a partial export");
    assert!(error.to_string().contains("whole log"), "{error}");
    let error = export(
        &log,
        ExportRange {
            after: 11,
            to: None,
        },
        &mut Vec::new(),
        &mut |_| {},
    )
    .await
    .expect_err("no event 11");
    assert!(
        error.to_string().contains("no event at position 11"),
        "{error}"
    );
    log.close().await;
    target.cleanup().await;
}

/// How a SQLite user moves to PostgreSQL: export, import, the same head hash.
#[tokio::test]
async fn a_sqlite_log_moves_to_postgres_with_the_same_head() {
    let Some(target) = TestDatabase::on(TestBackend::Postgres).await else {
        return;
    };
    let source = TestDatabase::sqlite();
    let log = open_log(&source).await;
    ten_events(&log).await;
    let exported = export_bytes(&log, ExportRange::default()).await;
    let head = log.verify().await.expect("verify").head;
    import(target.url(), &fast_options(), &exported[..])
        .await
        .expect("the import");
    let moved = open_log(&target).await;
    let report = moved.verify().await.expect("verify");
    assert_eq!(report.first_break, None);
    assert_eq!(report.head, head);
    assert_eq!(export_bytes(&moved, ExportRange::default()).await, exported);
    moved.close().await;
    log.close().await;
    source.cleanup().await;
    target.cleanup().await;
}
