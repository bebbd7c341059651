//! A folded aggregate as bytes, so that a long stream need not be folded from its first event every time:
//! the storage layer keeps these beside the log as a cache, and loading one and folding the events after it
//! gives exactly the state a full replay gives.
//!
//! A snapshot is only ever read by the build that wrote it: each carries the [`fingerprint`] of the code that
//! folded it, a hash over this crate's version, [`SNAPSHOT_SCHEMA`] and the source text of every module whose
//! types make up the folded state or its serde shape. Any change to the fold, to a type in the state or to how
//! it is serialised changes the fingerprint, and snapshots written before are simply not found (the state is
//! folded from the log as if they did not exist). Nothing here is persisted forever: snapshots are a cache.
//!
//! The machine is restored with statig's own serde support: the shared storage and the leaf state are
//! deserialised into an uninitialised machine and `init` re-enters that state. Entry and exit actions are not
//! used by this machine, so re-entering touches nothing; the counters of unexplained events are not part of
//! the snapshot (a snapshot is only taken of a fold that explained every event, so they are zero).

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use statig::blocking::UninitializedStateMachine;

use crate::aggregate::Aggregate;
use crate::ids::PortfolioId;
use crate::machine::{Onboarding, StallRecord};

/// Bumped by hand when the meaning of a snapshot changes without any of the hashed sources changing.
pub const SNAPSHOT_SCHEMA: u32 = 1;

/// The sources whose text decides what a snapshot holds and how it is spelled. The fold is `machine.rs` and
/// `aggregate.rs`; the events it folds are `event.rs` and `command.rs`; the state's field types come from the
/// rest. A new module with a type in the state belongs here.
const HASHED_SOURCES: [(&str, &str); 10] = [
    ("aggregate.rs", include_str!("aggregate.rs")),
    ("command.rs", include_str!("command.rs")),
    ("country.rs", include_str!("country.rs")),
    ("eligibility.rs", include_str!("eligibility.rs")),
    ("event.rs", include_str!("event.rs")),
    ("facts.rs", include_str!("facts.rs")),
    ("ids.rs", include_str!("ids.rs")),
    ("machine.rs", include_str!("machine.rs")),
    ("snapshot.rs", include_str!("snapshot.rs")),
    ("config.rs", include_str!("config.rs")),
];

/// The fingerprint of the code that folds and serialises aggregates in this build (64 hex digits).
pub fn fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let mut digest = Sha256::new_with_prefix(b"mmonboard aggregate snapshot\0");
        digest.update(env!("CARGO_PKG_VERSION").as_bytes());
        digest.update(b"\0");
        digest.update(SNAPSHOT_SCHEMA.to_be_bytes());
        for (name, source) in HASHED_SOURCES {
            digest.update(name.as_bytes());
            digest.update(b"\0");
            digest.update((source.len() as u64).to_be_bytes());
            digest.update(source.as_bytes());
        }
        hex::encode(digest.finalize())
    })
}

/// Why stored snapshot bytes could not be restored (they are then ignored and the stream is folded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is not valid: {0}")]
    Malformed(String),
    #[error("snapshot is of portfolio {found}, not {expected}")]
    WrongPortfolio {
        expected: PortfolioId,
        found: PortfolioId,
    },
    #[error("snapshot is at stream version {found}, its key says {expected}")]
    WrongVersion { expected: u64, found: u64 },
}

/// The stored form: the whole aggregate but its portfolio id, which is checked against the key.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    portfolio_id: &'a PortfolioId,
    version: u64,
    last_event_at: Option<DateTime<Utc>>,
    stall: Option<&'a StallRecord>,
    machine: &'a statig::blocking::InitializedStateMachine<Onboarding>,
}

#[derive(Deserialize)]
struct SnapshotOwned {
    portfolio_id: PortfolioId,
    version: u64,
    last_event_at: Option<DateTime<Utc>>,
    stall: Option<StallRecord>,
    machine: UninitializedStateMachine<Onboarding>,
}

impl Aggregate {
    /// This aggregate as snapshot bytes (JSON), to be stored under [`fingerprint`] and [`Aggregate::version`].
    pub fn to_snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let (machine, last_event_at, stall) = self.parts();
        let stored = SnapshotRef {
            portfolio_id: self.portfolio_id(),
            version: self.version(),
            last_event_at,
            stall,
            machine,
        };
        serde_json::to_vec(&stored).map_err(|error| SnapshotError::Malformed(error.to_string()))
    }

    /// The aggregate `bytes` hold, checked against the portfolio and version they were stored under. Only
    /// bytes written by [`Aggregate::to_snapshot`] of a build with the same [`fingerprint`] may be given.
    pub fn from_snapshot(
        portfolio_id: &PortfolioId,
        version: u64,
        bytes: &[u8],
    ) -> Result<Self, SnapshotError> {
        let stored: SnapshotOwned = serde_json::from_slice(bytes)
            .map_err(|error| SnapshotError::Malformed(error.to_string()))?;
        if stored.portfolio_id != *portfolio_id {
            return Err(SnapshotError::WrongPortfolio {
                expected: portfolio_id.clone(),
                found: stored.portfolio_id,
            });
        }
        if stored.version != version {
            return Err(SnapshotError::WrongVersion {
                expected: version,
                found: stored.version,
            });
        }
        Ok(Self::restore(
            stored.portfolio_id,
            stored.machine.init(),
            stored.version,
            stored.last_event_at,
            stored.stall,
        ))
    }
}
