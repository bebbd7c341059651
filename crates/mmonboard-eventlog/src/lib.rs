//! The append-only, hash-chained, tamper-evident event log of mmonboard. It stores opaque JSON
//! payloads with a type name and schema version and knows nothing of the domain; the
//! [`EventStore`] trait hides the backend so the embedded SQLite log ([`SqliteEventStore`], the
//! default) and the PostgreSQL log ([`PgEventStore`], for several instances on one store) are interchangeable and pass one conformance suite.

mod backend;
mod checkpoints;
mod companion;
#[cfg(feature = "conformance")]
pub mod conformance;
mod crosscheck;
mod error;
mod export;
mod halves;
mod hash;
mod hooks;
mod log;
mod model;
mod postgres;
mod signed;
mod snapshots;
mod sqlite;
mod store;
pub mod stored;
pub mod subscription;
#[cfg(feature = "testing")]
pub mod testing;

pub use backend::{Backend, SUPPORTED_URLS, redact as redact_database_url};
pub use checkpoints::Checkpoints;
pub use companion::{CompanionOptions, CompanionPool, CompanionTables, open_companion_tables};
pub use error::{AppendError, DatabaseError, StoreError};
pub use export::{
    EXPORT_FORMAT, ExportError, ExportLine, ExportRange, ExportSummary, FileBreak, FileReport,
    ImportSummary, expected_head_break, export, import, verify_export, verify_export_expecting,
    verify_export_trusting,
};
pub use hash::{GENESIS_HASH, chain_hash};
#[doc(hidden)]
pub use hooks::{AppendObserver, CommitHold, CommittedBatch};
pub use log::{EventLog, LogOptions};
pub use model::{
    AppendOutcome, AppendRequest, ChainBreak, EventMetadata, EventView, ExpectedVersion,
    InvalidStreamId, MAX_STREAM_ID_CHARS, NewEvent, RecordedEvent, StreamId, VerifyReport,
};
pub use postgres::{PgEventStore, PgOptions};
pub use signed::{
    CHECKPOINT_FORMAT, CheckpointError, CheckpointKey, CheckpointReport, KeyError, RecordOutcome,
    SignedCheckpoint, SignedCheckpoints, TrustedKey, check_checkpoints, key_id_of, signed_bytes,
};
pub use snapshots::{SNAPSHOT_MIGRATIONS_TABLE, SnapshotStore, StoredSnapshot};
pub use sqlite::{Durability, SqliteEventStore, SqliteOptions};
pub use store::EventStore;
pub use subscription::{DurableSubscription, HeadWatch, Subscription, SubscriptionOptions};
