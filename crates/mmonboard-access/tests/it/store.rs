//! The token store's conformance suite, run on a fresh SQLite file and a fresh PostgreSQL database.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mmonboard_access::{AccessError, Role, TokenHash, TokenName, TokenStore};
use mmonboard_eventlog::backend_tests;
use mmonboard_eventlog::testing::{TestBackend, TestDatabase};
use mmonboard_eventlog::{EventLog, LogOptions};

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, minute, 0)
        .single()
        .expect("a time")
}

fn name(text: &str) -> TokenName {
    TokenName::parse(text).expect("a valid name")
}

/// The store, in a database whose log exists: the log creates the database, its companions join it.
async fn open(database: &TestDatabase) -> TokenStore {
    if database.backend() == TestBackend::Sqlite {
        EventLog::open(database.url(), &LogOptions::default())
            .await
            .expect("the log opens")
            .close()
            .await;
    }
    TokenStore::open(database.url())
        .await
        .expect("the store opens")
}

async fn creates_and_lists_without_secrets(database: &TestDatabase) {
    let store = open(database).await;
    assert!(store.list().await.expect("list").is_empty());
    assert!(!store.has_usable_token(at(0)).await.expect("usable"));
    let alice = store
        .create(
            &name("alice"),
            Role::Operator,
            at(1),
            Some(at(1) + TimeDelta::days(90)),
        )
        .await
        .expect("created");
    let bob = store
        .create(&name("bob"), Role::Auditor, at(2), None)
        .await
        .expect("created");
    assert!(alice.secret.expose().starts_with("mmo_"));
    assert_ne!(alice.secret, bob.secret);
    let listed = store.list().await.expect("list");
    assert_eq!(listed, vec![alice.record.clone(), bob.record.clone()]);
    assert_eq!(listed[0].expires_at, Some(at(1) + TimeDelta::days(90)));
    let credentials = store.credentials().await.expect("credentials");
    assert!(
        credentials[0]
            .hash
            .matches(&TokenHash::of(alice.secret.expose()))
    );
    assert!(
        !credentials[0]
            .hash
            .matches(&TokenHash::of(bob.secret.expose()))
    );
    assert!(store.has_usable_token(at(3)).await.expect("usable"));
    store.close().await;

    // What was stored is there after reopening.
    let reopened = open(database).await;
    assert_eq!(reopened.list().await.expect("list").len(), 2);
    reopened.close().await;
}

async fn refuses_a_name_twice_even_revoked(database: &TestDatabase) {
    let store = open(database).await;
    store
        .create(&name("ci"), Role::Subscriber, at(1), None)
        .await
        .expect("created");
    store.revoke(&name("ci"), at(2)).await.expect("revoked");
    let again = store.create(&name("ci"), Role::Admin, at(3), None).await;
    assert!(
        matches!(again, Err(AccessError::NameTaken(ref taken)) if taken == "ci"),
        "{again:?}"
    );
    assert_eq!(store.list().await.expect("list").len(), 1);
    store.close().await;
}

async fn revokes_once_and_names_unknown_tokens(database: &TestDatabase) {
    let store = open(database).await;
    store
        .create(&name("ops"), Role::Operator, at(1), None)
        .await
        .expect("created");
    store.revoke(&name("ops"), at(5)).await.expect("revoked");
    let record = &store.list().await.expect("list")[0];
    assert_eq!(record.revoked_at, Some(at(5)));
    assert!(!record.is_usable_at(at(6)));
    assert!(!store.has_usable_token(at(6)).await.expect("usable"));
    assert!(matches!(
        store.revoke(&name("ops"), at(7)).await,
        Err(AccessError::AlreadyRevoked(_))
    ));
    assert_eq!(store.list().await.expect("list")[0].revoked_at, Some(at(5)));
    assert!(matches!(
        store.revoke(&name("nobody"), at(7)).await,
        Err(AccessError::UnknownToken(ref unknown)) if unknown == "nobody"
    ));
    store.close().await;
}

async fn expiry_and_last_use(database: &TestDatabase) {
    let store = open(database).await;
    store
        .create(&name("short"), Role::Operator, at(0), Some(at(10)))
        .await
        .expect("created");
    assert!(store.has_usable_token(at(9)).await.expect("usable"));
    assert!(!store.has_usable_token(at(10)).await.expect("usable"));
    store
        .record_uses(&[(name("short"), at(4))])
        .await
        .expect("recorded");
    // An earlier use flushed later (another server, a delayed flush) does not move it back.
    store
        .record_uses(&[(name("short"), at(2)), (name("unknown"), at(3))])
        .await
        .expect("recorded");
    assert_eq!(
        store.list().await.expect("list")[0].last_used_at,
        Some(at(4))
    );
    store
        .record_uses(&[(name("short"), at(8))])
        .await
        .expect("recorded");
    assert_eq!(
        store.list().await.expect("list")[0].last_used_at,
        Some(at(8))
    );
    store.close().await;
}

backend_tests!(
    creates_and_lists_without_secrets,
    refuses_a_name_twice_even_revoked,
    revokes_once_and_names_unknown_tokens,
    expiry_and_last_use,
);
