//! The tamper matrix, on each backend, against a log with signed checkpoints: every column of every event
//! changed (with and without re-chaining the hashes after it), case changes, swaps, deletions (with and
//! without renumbering), truncation (with and without the command records), every column of every command
//! record and of every checkpoint. Each case rewrites the tables from a model of their rows with the
//! append-only triggers out of the way, as someone with write access to the database could, then runs what
//! `mmonboard verify --trusted-key` runs; every case must be detected, naming a position in the range the case
//! allows (the position changed, or the first position of its command, up to the first checkpoint covering it
//! for a re-chained log). A rewrite of the unchanged rows is the control: it must verify intact.

use std::ops::RangeInclusive;

use mmonboard_eventlog::conformance::{append_ok, events, request, unique_stream};
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_eventlog::{
    CheckpointKey, EventLog, EventStore, ExpectedVersion, RecordOutcome, SignedCheckpoints,
    backend_tests, check_checkpoints,
};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use uuid::Uuid;

use crate::support::{execute_raw, fast_options, open_log, raw_connection};

backend_tests!(every_tampering_covered_by_a_checkpoint_is_detected);

#[derive(Debug, Clone, PartialEq)]
struct Event {
    position: i64,
    stream_id: String,
    stream_version: i64,
    event_id: String,
    event_type: String,
    schema_version: i64,
    payload: String,
    metadata: String,
    recorded_at: i64,
    hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
struct Command {
    command_id: String,
    stream_id: String,
    first_position: Option<i64>,
    event_count: i64,
    recorded_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct Checkpoint {
    position: i64,
    head_hash: Vec<u8>,
    recorded_at: i64,
    key_id: String,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
struct Tables {
    events: Vec<Event>,
    commands: Vec<Command>,
    checkpoints: Vec<Checkpoint>,
}

/// One case: its name, the tables after it, and where its break may be reported.
struct Case {
    name: String,
    tables: Tables,
    expected: RangeInclusive<u64>,
}

/// The chain hash from the stored text, as docs/audit.md spells it (an independent implementation).
fn chain_hash(previous: &[u8], event: &Event) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    let uuid = Uuid::parse_str(&event.event_id).expect("a UUID");
    for field in [
        &(event.position as u64).to_be_bytes()[..],
        event.stream_id.as_bytes(),
        &(event.stream_version as u64).to_be_bytes(),
        uuid.as_bytes(),
        event.event_type.as_bytes(),
        &(event.schema_version as u32).to_be_bytes(),
        &event.recorded_at.to_be_bytes(),
        event.metadata.as_bytes(),
        event.payload.as_bytes(),
    ] {
        hasher.update((field.len() as u32).to_be_bytes());
        hasher.update(field);
    }
    hasher.finalize().to_vec()
}

/// Recomputes every hash from index `from` on: what someone who edits the log and hides it does.
fn rechain(events: &mut [Event], from: usize) {
    for index in from..events.len() {
        let previous = if index == 0 {
            vec![0; 32]
        } else {
            events[index - 1].hash.clone()
        };
        events[index].hash = chain_hash(&previous, &events[index]);
    }
}

async fn read_tables(database: &TestDatabase) -> Tables {
    const EVENTS: &str = "SELECT global_position, stream_id, stream_version, CAST(event_id AS TEXT), \
        event_type, schema_version, payload, metadata, recorded_at, hash FROM events ORDER BY global_position";
    const COMMANDS: &str = "SELECT CAST(command_id AS TEXT), stream_id, first_position, event_count, \
        recorded_at FROM commands ORDER BY first_position";
    const CHECKPOINTS: &str = "SELECT position, head_hash, recorded_at, key_id, public_key, signature \
        FROM signed_checkpoints ORDER BY position";
    type EventRow = (
        i64,
        String,
        i64,
        String,
        String,
        i64,
        String,
        String,
        i64,
        Vec<u8>,
    );
    type CommandRow = (String, String, Option<i64>, i64, i64);
    type CheckpointRow = (i64, Vec<u8>, i64, String, Vec<u8>, Vec<u8>);
    let (events, commands, checkpoints): (Vec<EventRow>, Vec<CommandRow>, Vec<CheckpointRow>) =
        match database.backend() {
            TestBackend::Sqlite => {
                let mut connection = raw_connection(&database.sqlite_path().expect("a file")).await;
                (
                    sqlx::query_as(EVENTS)
                        .fetch_all(&mut connection)
                        .await
                        .expect("events"),
                    sqlx::query_as(COMMANDS)
                        .fetch_all(&mut connection)
                        .await
                        .expect("commands"),
                    sqlx::query_as(CHECKPOINTS)
                        .fetch_all(&mut connection)
                        .await
                        .expect("checkpoints"),
                )
            }
            TestBackend::Postgres => {
                let mut connection = database.postgres_connection().await.expect("a connection");
                (
                    sqlx::query_as(EVENTS)
                        .fetch_all(&mut connection)
                        .await
                        .expect("events"),
                    sqlx::query_as(COMMANDS)
                        .fetch_all(&mut connection)
                        .await
                        .expect("commands"),
                    sqlx::query_as(CHECKPOINTS)
                        .fetch_all(&mut connection)
                        .await
                        .expect("checkpoints"),
                )
            }
        };
    Tables {
        events: events
            .into_iter()
            .map(|row| Event {
                position: row.0,
                stream_id: row.1,
                stream_version: row.2,
                event_id: row.3,
                event_type: row.4,
                schema_version: row.5,
                payload: row.6,
                metadata: row.7,
                recorded_at: row.8,
                hash: row.9,
            })
            .collect(),
        commands: commands
            .into_iter()
            .map(|row| Command {
                command_id: row.0,
                stream_id: row.1,
                first_position: row.2,
                event_count: row.3,
                recorded_at: row.4,
            })
            .collect(),
        checkpoints: checkpoints
            .into_iter()
            .map(|row| Checkpoint {
                position: row.0,
                head_hash: row.1,
                recorded_at: row.2,
                key_id: row.3,
                public_key: row.4,
                signature: row.5,
            })
            .collect(),
    }
}

/// Replaces the three tables' rows with `tables`, in one transaction (the triggers are out of the way).
/// `false` when the database's own constraints refuse the rows.
async fn write_tables(database: &TestDatabase, tables: &Tables) -> bool {
    macro_rules! write_on {
        ($connection:expr, $uuid:literal, [$($p:literal),*]) => {{
            let mut transaction = $connection.begin().await.expect("a transaction");
            for table in ["events", "commands", "signed_checkpoints"] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                    .execute(&mut *transaction)
                    .await
                    .expect("emptied");
            }
            let params: [&str; 10] = [$($p),*];
            let event_sql = format!(
                "INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, \
                 schema_version, payload, metadata, recorded_at, hash) VALUES ({}, {}, {}, {}{}, {}, {}, {}, \
                 {}, {}, {})",
                params[0], params[1], params[2], params[3], $uuid, params[4], params[5], params[6],
                params[7], params[8], params[9]
            );
            let command_sql = format!(
                "INSERT INTO commands (command_id, stream_id, first_position, event_count, recorded_at) \
                 VALUES ({}{}, {}, {}, {}, {})",
                params[0], $uuid, params[1], params[2], params[3], params[4]
            );
            let checkpoint_sql = format!(
                "INSERT INTO signed_checkpoints (position, head_hash, recorded_at, key_id, public_key, \
                 signature) VALUES ({}, {}, {}, {}, {}, {})",
                params[0], params[1], params[2], params[3], params[4], params[5]
            );
            let mut stored = true;
            for event in &tables.events {
                stored &= sqlx::query(sqlx::AssertSqlSafe(event_sql.clone()))
                    .bind(event.position)
                    .bind(&event.stream_id)
                    .bind(event.stream_version)
                    .bind(&event.event_id)
                    .bind(&event.event_type)
                    .bind(event.schema_version)
                    .bind(&event.payload)
                    .bind(&event.metadata)
                    .bind(event.recorded_at)
                    .bind(event.hash.as_slice())
                    .execute(&mut *transaction)
                    .await
                    .is_ok();
                if !stored { break; }
            }
            for command in &tables.commands {
                if !stored { break; }
                stored &= sqlx::query(sqlx::AssertSqlSafe(command_sql.clone()))
                    .bind(&command.command_id)
                    .bind(&command.stream_id)
                    .bind(command.first_position)
                    .bind(command.event_count)
                    .bind(command.recorded_at)
                    .execute(&mut *transaction)
                    .await
                    .is_ok();
            }
            for checkpoint in &tables.checkpoints {
                if !stored { break; }
                stored &= sqlx::query(sqlx::AssertSqlSafe(checkpoint_sql.clone()))
                    .bind(checkpoint.position)
                    .bind(checkpoint.head_hash.as_slice())
                    .bind(checkpoint.recorded_at)
                    .bind(&checkpoint.key_id)
                    .bind(checkpoint.public_key.as_slice())
                    .bind(checkpoint.signature.as_slice())
                    .execute(&mut *transaction)
                    .await
                    .is_ok();
            }
            if stored {
                transaction.commit().await.expect("committed");
            } else {
                transaction.rollback().await.expect("rolled back");
            }
            stored
        }};
    }
    match database.backend() {
        TestBackend::Sqlite => {
            let mut connection = raw_connection(&database.sqlite_path().expect("a file")).await;
            let stored = write_on!(
                connection,
                "",
                ["?1", "?2", "?3", "?4", "?5", "?6", "?7", "?8", "?9", "?10"]
            );
            let _ = connection.close().await;
            stored
        }
        TestBackend::Postgres => {
            let mut connection = database.postgres_connection().await.expect("a connection");
            let stored = write_on!(
                connection,
                "::uuid",
                ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10"]
            );
            let _ = connection.close().await;
            stored
        }
    }
}

/// What `mmonboard verify --trusted-key` finds: the first break's position and reason, `None` if intact.
async fn verify(database: &TestDatabase, key: &CheckpointKey) -> Option<(u64, String)> {
    let log = EventLog::open_read_only(database.url(), &fast_options())
        .await
        .expect("the log opens");
    let report = log.verify().await.expect("verify");
    let found = match report.first_break {
        Some(found) => Some(found),
        None => {
            let stored = log.signed_checkpoints().await.expect("the checkpoints");
            check_checkpoints(&log, &stored, &[key.trusted()], report.head)
                .await
                .expect("checked")
                .first_break
        }
    };
    log.close().await;
    found.map(|found| (found.global_position, found.reason))
}

/// Four commands on two streams, a checkpoint after each: positions 1..=3 (a), 4..=5 (b), 6..=9 (a), 10 (b);
/// checkpoints at 3, 5, 9 and 10.
async fn checkpointed_log(database: &TestDatabase, key: &CheckpointKey) {
    let log = open_log(database).await;
    let checkpoints = SignedCheckpoints::open(database.url())
        .await
        .expect("opened");
    let first = unique_stream("matrix-a");
    let second = unique_stream("matrix-b");
    let plan = [
        (&first, ExpectedVersion::NoStream, 3),
        (&second, ExpectedVersion::NoStream, 2),
        (&first, ExpectedVersion::Exact(3), 4),
        (&second, ExpectedVersion::Exact(2), 1),
    ];
    for (stream, expected, count) in plan {
        append_ok(&log, request(stream, expected, events(count))).await;
        let outcome = checkpoints
            .record(&log, key, chrono::Utc::now())
            .await
            .expect("signed");
        assert!(matches!(outcome, RecordOutcome::Recorded(_)), "{outcome:?}");
    }
    checkpoints.close().await;
    log.close().await;
}

/// The first position of the command the event at `position` belongs to.
fn command_start(tables: &Tables, position: i64) -> u64 {
    tables
        .commands
        .iter()
        .filter_map(|command| command.first_position)
        .filter(|first| *first <= position)
        .max()
        .unwrap_or(1) as u64
}

/// The first checkpoint at or after `position`.
fn covering(tables: &Tables, position: i64) -> u64 {
    tables
        .checkpoints
        .iter()
        .map(|checkpoint| checkpoint.position)
        .filter(|at| *at >= position)
        .min()
        .expect("every position is checkpointed") as u64
}

fn flip(bytes: &mut [u8]) {
    bytes[0] ^= 0x01;
}

/// Every case of the matrix for `backend`.
fn cases(pristine: &Tables, backend: TestBackend) -> Vec<Case> {
    let mut cases = Vec::new();
    let count = pristine.events.len();
    type Edit = fn(&mut Event);
    let columns: [(&str, Edit); 10] = [
        ("global_position", |event| event.position += 100),
        ("stream_id", |event| event.stream_id.push('x')),
        ("stream_version", |event| event.stream_version += 100),
        ("event_id", |event| {
            event.event_id = Uuid::now_v7().to_string()
        }),
        ("event_type", |event| event.event_type.push('x')),
        ("schema_version", |event| event.schema_version += 1),
        ("payload", |event| event.payload.push(' ')),
        ("metadata", |event| {
            event.metadata = event.metadata.replace("\"actor\":\"", "\"actor\":\"x")
        }),
        ("recorded_at", |event| event.recorded_at += 1),
        ("hash", |event| flip(&mut event.hash)),
    ];
    let case_changes: [(&str, Edit); 4] = [
        ("event_id upper-cased", |event| {
            event.event_id = event.event_id.to_uppercase()
        }),
        ("stream_id upper-cased", |event| {
            event.stream_id = event.stream_id.to_uppercase()
        }),
        ("event_type upper-cased", |event| {
            event.event_type = event.event_type.to_uppercase()
        }),
        ("command id in the metadata upper-cased", |event| {
            let id: serde_json::Value = serde_json::from_str::<serde_json::Value>(&event.metadata)
                .expect("JSON")["command_id"]
                .clone();
            let id = id.as_str().expect("an id").to_owned();
            event.metadata = event.metadata.replace(&id, &id.to_uppercase());
        }),
    ];
    for index in 0..count {
        let position = pristine.events[index].position;
        let start = command_start(pristine, position);
        for (column, edit) in columns.iter().chain(case_changes.iter()) {
            // PostgreSQL stores a `uuid`, which has one spelling: an upper-cased event id is the same value.
            if *column == "event_id upper-cased" && backend == TestBackend::Postgres {
                continue;
            }
            for rechained in [false, true] {
                // Re-chaining after a changed hash computes the original hash again: no case.
                if rechained && *column == "hash" {
                    continue;
                }
                let mut tables = pristine.clone();
                edit(&mut tables.events[index]);
                if rechained {
                    rechain(&mut tables.events, index);
                }
                let expected = if *column == "global_position" {
                    position as u64..=position as u64
                } else if rechained {
                    start..=covering(pristine, position)
                } else {
                    start..=position as u64
                };
                cases.push(Case {
                    name: format!(
                        "{column} of event {position}{}",
                        if rechained { ", re-chained" } else { "" }
                    ),
                    tables,
                    expected,
                });
            }
        }
        // Swaps with the next event (positions kept, contents exchanged).
        if index + 1 < count {
            for rechained in [false, true] {
                let mut tables = pristine.clone();
                let (a, b) = (
                    tables.events[index].clone(),
                    tables.events[index + 1].clone(),
                );
                tables.events[index] = Event {
                    position: a.position,
                    ..b.clone()
                };
                tables.events[index + 1] = Event {
                    position: b.position,
                    ..a
                };
                if rechained {
                    rechain(&mut tables.events, index);
                }
                cases.push(Case {
                    name: format!(
                        "events {position} and {} swapped{}",
                        position + 1,
                        if rechained { ", re-chained" } else { "" }
                    ),
                    expected: start..=covering(pristine, position + 1),
                    tables,
                });
            }
        }
        // Deleted: alone, with its command record's count fixed, and renumbered and re-chained too.
        for variant in [
            "alone",
            "with its command record fixed",
            "renumbered and re-chained",
        ] {
            let mut tables = pristine.clone();
            tables.events.remove(index);
            if variant != "alone" {
                fix_commands_after_removal(&mut tables, position);
            }
            if variant == "renumbered and re-chained" {
                for event in tables.events.iter_mut().skip(index) {
                    event.position -= 1;
                }
                for command in &mut tables.commands {
                    if let Some(first) = &mut command.first_position
                        && *first > position
                    {
                        *first -= 1;
                    }
                }
                // Later versions of its stream close up too.
                let stream = pristine.events[index].stream_id.clone();
                for event in tables.events.iter_mut().skip(index) {
                    if event.stream_id == stream {
                        event.stream_version -= 1;
                    }
                }
                rechain(&mut tables.events, index);
            }
            cases.push(Case {
                name: format!("event {position} deleted, {variant}"),
                expected: start..=covering(pristine, position),
                tables,
            });
        }
        // Truncated after this event's predecessor: the tail from `position` on is gone.
        for with_commands in [false, true] {
            let mut tables = pristine.clone();
            tables.events.truncate(index);
            if with_commands {
                tables
                    .commands
                    .retain(|command| command.first_position.is_some_and(|first| first < position));
                if let Some(last) = tables.commands.last_mut()
                    && let Some(first) = last.first_position
                {
                    last.event_count = last.event_count.min(position - first);
                }
            }
            cases.push(Case {
                name: format!(
                    "the tail from event {position} cut off{}",
                    if with_commands {
                        " with its command records"
                    } else {
                        ""
                    }
                ),
                expected: position as u64..=position as u64,
                tables,
            });
        }
    }
    // Every column of every command record, and each one deleted.
    type CommandEdit = fn(&mut Command);
    let command_columns: [(&str, CommandEdit); 5] = [
        ("command_id", |command| {
            command.command_id = Uuid::now_v7().to_string()
        }),
        ("stream_id", |command| command.stream_id.push('x')),
        ("first_position", |command| {
            command.first_position = command.first_position.map(|first| first + 1)
        }),
        ("event_count", |command| command.event_count += 1),
        ("recorded_at", |command| command.recorded_at += 1),
    ];
    for index in 0..pristine.commands.len() {
        let command = &pristine.commands[index];
        let first = command.first_position.expect("a command with events") as u64;
        let last = first + command.event_count as u64;
        for (column, edit) in command_columns {
            let mut tables = pristine.clone();
            edit(&mut tables.commands[index]);
            cases.push(Case {
                name: format!("{column} of the command record at {first}"),
                tables,
                expected: first..=last,
            });
        }
        let mut tables = pristine.clone();
        tables.commands.remove(index);
        cases.push(Case {
            name: format!("the command record at {first} deleted"),
            tables,
            expected: first..=first,
        });
    }
    // Every column of every checkpoint.
    type CheckpointEdit = fn(&mut Checkpoint);
    let checkpoint_columns: [(&str, CheckpointEdit); 6] = [
        ("position", |checkpoint| checkpoint.position += 100),
        ("head_hash", |checkpoint| flip(&mut checkpoint.head_hash)),
        ("recorded_at", |checkpoint| checkpoint.recorded_at += 1),
        ("key_id", |checkpoint| {
            checkpoint.key_id = "0000000000000000".to_owned()
        }),
        ("public_key", |checkpoint| {
            checkpoint.public_key = CheckpointKey::from_seed(&[42; 32])
                .trusted()
                .public_key()
                .to_vec()
        }),
        ("signature", |checkpoint| flip(&mut checkpoint.signature)),
    ];
    for index in 0..pristine.checkpoints.len() {
        let position = pristine.checkpoints[index].position as u64;
        for (column, edit) in checkpoint_columns {
            let mut tables = pristine.clone();
            edit(&mut tables.checkpoints[index]);
            cases.push(Case {
                name: format!("{column} of the checkpoint at {position}"),
                tables,
                expected: position..=position + 100,
            });
        }
    }
    cases
}

/// After the event at `position` is removed: its command record counts one event less (or goes when it had
/// only that one), so the command records agree with the events left.
fn fix_commands_after_removal(tables: &mut Tables, position: i64) {
    let Some(index) = tables.commands.iter().position(|command| {
        command
            .first_position
            .is_some_and(|first| first <= position && position < first + command.event_count)
    }) else {
        return;
    };
    let command = &mut tables.commands[index];
    command.event_count -= 1;
    if command.event_count == 0 {
        tables.commands.remove(index);
    } else if command.first_position == Some(position) {
        command.first_position = Some(position + 1);
    }
}

async fn every_tampering_covered_by_a_checkpoint_is_detected(database: &TestDatabase) {
    let key = CheckpointKey::from_seed(&[5; 32]);
    checkpointed_log(database, &key).await;
    // The triggers out of the way for good: this database is the attacker's now.
    let sql = match database.backend() {
        TestBackend::Sqlite => {
            "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; DROP TRIGGER commands_no_update; \
             DROP TRIGGER commands_no_delete; DROP TRIGGER signed_checkpoints_no_update; \
             DROP TRIGGER signed_checkpoints_no_delete"
        }
        TestBackend::Postgres => {
            "ALTER TABLE events DISABLE TRIGGER USER; ALTER TABLE commands DISABLE TRIGGER USER; \
             ALTER TABLE signed_checkpoints DISABLE TRIGGER USER"
        }
    };
    execute_raw(database, sql)
        .await
        .expect("the triggers dropped");
    let pristine = read_tables(database).await;
    assert_eq!(
        (
            pristine.events.len(),
            pristine.commands.len(),
            pristine.checkpoints.len()
        ),
        (10, 4, 4)
    );
    // The control: rewriting the same rows changes nothing.
    assert!(write_tables(database, &pristine).await);
    assert_eq!(
        verify(database, &key).await,
        None,
        "the control must verify"
    );

    let cases = cases(&pristine, database.backend());
    let (mut detected, mut refused, mut missed) = (0, 0, Vec::new());
    for case in &cases {
        assert!(
            case.tables != pristine,
            "{}: the case changes nothing",
            case.name
        );
        if !write_tables(database, &case.tables).await {
            // The database's own constraints refuse the rows: they cannot be stored at all.
            refused += 1;
            continue;
        }
        match verify(database, &key).await {
            Some((position, reason)) if case.expected.contains(&position) => {
                detected += 1;
                let _ = reason;
            }
            Some((position, reason)) => missed.push(format!(
                "{}: reported at {position}, expected {:?}: {reason}",
                case.name, case.expected
            )),
            None => missed.push(format!("{}: verify says intact", case.name)),
        }
    }
    assert!(write_tables(database, &pristine).await);
    assert_eq!(verify(database, &key).await, None);
    println!(
        "tamper matrix on {:?}: {} cases, {detected} detected at the expected position, {refused} refused \
         by the database's constraints, {} missed",
        database.backend(),
        cases.len(),
        missed.len()
    );
    assert!(
        missed.is_empty(),
        "undetected or misplaced:\n{}",
        missed.join("\n")
    );
    assert_eq!(detected + refused, cases.len());
}
