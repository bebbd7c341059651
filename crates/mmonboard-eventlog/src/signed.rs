//! Signed checkpoints of the chain head (table `signed_checkpoints`, created by the log's own migrations on
//! either backend): a position, the hash the log holds there, a time, and an Ed25519 signature over exactly
//! those by a key whose public half an auditor holds. The chain alone cannot see a log that was edited and
//! re-chained, or cut back together with its command records: a checkpoint signed earlier can, for every
//! position it covers. The signed bytes are an audit contract, fixed forever (docs/audit.md):
//!
//! `signed_bytes = field("mmonboard-checkpoint/1") || field(position, u64 BE) || field(head hash, 32 bytes)
//! || field(recorded_at, unix µs, i64 BE) || field(key id, UTF-8)`, each field written as its length in bytes
//! (u32 BE) followed by the bytes, as in the chain hash.
//!
//! Key files are one line of text each (`ed25519-private:<64 hex digits>` for the 32-byte seed, mode 0600;
//! `ed25519:<64 hex digits>` for the public key), so that an auditor can read them with any Ed25519 library.
//! The key id is the first 16 hex digits of SHA-256 of the 32 public key bytes.

use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::backend::Backend;
use crate::companion::CompanionPool;
use crate::error::StoreError;
use crate::log::EventLog;
use crate::model::ChainBreak;
use crate::store::{ChainVerifier, EventStore};

/// The domain-separation tag that opens the signed bytes.
pub const CHECKPOINT_FORMAT: &str = "mmonboard-checkpoint/1";

const PRIVATE_PREFIX: &str = "ed25519-private:";
const PUBLIC_PREFIX: &str = "ed25519:";

/// Events read per page when the signer checks the chain before signing.
const CHECK_PAGE: usize = 2048;

/// A key's id: the first 16 hex digits of SHA-256 of its 32 public key bytes.
pub fn key_id_of(public_key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

/// A bad key file or key text, or a key that does not verify.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// The key `serve --signing-key` and `mmonboard checkpoint` sign with.
#[derive(Clone)]
pub struct CheckpointKey {
    signing: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CheckpointKey {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| {
            KeyError::Invalid(format!("the system's random source failed: {error}"))
        })?;
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let key_id = key_id_of(&signing.verifying_key().to_bytes());
        Self { signing, key_id }
    }

    /// Reads a private key text (`ed25519-private:<64 hex digits>`).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let hex_text = text.trim().strip_prefix(PRIVATE_PREFIX).ok_or_else(|| {
            KeyError::Invalid(format!(
                "not an mmonboard signing key: it must be one line {PRIVATE_PREFIX}<64 hex digits> \
                 (as `mmonboard keys generate` writes it)"
            ))
        })?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut seed).map_err(|_| {
            KeyError::Invalid("the signing key is not 64 hex digits after its prefix".to_owned())
        })?;
        Ok(Self::from_seed(&seed))
    }

    /// Reads a private key file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            what: format!("cannot read the signing key {}", path.display()),
            source,
        })?;
        Self::parse(&text).map_err(|error| match error {
            KeyError::Invalid(message) => {
                KeyError::Invalid(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// The private key file's text.
    pub fn private_text(&self) -> String {
        format!("{PRIVATE_PREFIX}{}\n", hex::encode(self.signing.to_bytes()))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn trusted(&self) -> TrustedKey {
        TrustedKey::from_verifying(self.signing.verifying_key())
    }

    /// Signs `position` with `head_hash` at `now` (kept to the microsecond).
    pub fn sign(&self, position: u64, head_hash: [u8; 32], now: DateTime<Utc>) -> SignedCheckpoint {
        let recorded_at_micros = now.timestamp_micros();
        let bytes = signed_bytes(position, &head_hash, recorded_at_micros, &self.key_id);
        SignedCheckpoint {
            position,
            head_hash,
            recorded_at_micros,
            key_id: self.key_id.clone(),
            public_key: self.signing.verifying_key().to_bytes(),
            signature: self.signing.sign(&bytes).to_bytes(),
        }
    }
}

/// A public key an auditor trusts checkpoints from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    public_key: [u8; 32],
    key_id: String,
}

impl TrustedKey {
    fn from_verifying(key: VerifyingKey) -> Self {
        let public_key = key.to_bytes();
        Self {
            key_id: key_id_of(&public_key),
            public_key,
        }
    }

    /// Reads a public key text (`ed25519:<64 hex digits>`, as `keys generate` prints it).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let hex_text = text.strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            KeyError::Invalid(format!(
                "{text:?} is not a public key: expected {PUBLIC_PREFIX}<64 hex digits> as `mmonboard \
                 keys generate` prints it, or the file it wrote beside the private key"
            ))
        })?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| {
            KeyError::Invalid(format!(
                "the public key {text:?} is not 64 hex digits after {PUBLIC_PREFIX}"
            ))
        })?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            KeyError::Invalid(format!("{text:?} is not a valid Ed25519 public key"))
        })?;
        Ok(Self::from_verifying(key))
    }

    /// The printed text itself, or a file holding it.
    pub fn from_argument(argument: &str) -> Result<Self, KeyError> {
        if argument.trim().starts_with(PUBLIC_PREFIX) {
            return Self::parse(argument);
        }
        let path = Path::new(argument);
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            what: format!(
                "{argument:?} is neither a public key ({PUBLIC_PREFIX}<64 hex digits>) nor a readable file"
            ),
            source,
        })?;
        Self::parse(&text).map_err(|error| match error {
            KeyError::Invalid(message) => {
                KeyError::Invalid(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// The text `keys generate` prints and writes to the public key file (without a newline).
    pub fn text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", hex::encode(self.public_key))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }
}

/// One signed checkpoint as stored (and exported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub position: u64,
    pub head_hash: [u8; 32],
    pub recorded_at_micros: i64,
    pub key_id: String,
    pub public_key: [u8; 32],
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    pub fn recorded_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.recorded_at_micros)
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(
            self.position,
            &self.head_hash,
            self.recorded_at_micros,
            &self.key_id,
        )
    }

    /// Whether the checkpoint is what its key signed: the key id is its public key's, the signature
    /// verifies (strictly), and, when `trusted` is not empty, the key is one of them. The reason when not.
    pub fn check(&self, trusted: &[TrustedKey]) -> Result<(), String> {
        let position = self.position;
        let actual_id = key_id_of(&self.public_key);
        if actual_id != self.key_id {
            return Err(format!(
                "the checkpoint at position {position} names key {} but carries the public key of key \
                 {actual_id}",
                self.key_id
            ));
        }
        let verified = VerifyingKey::from_bytes(&self.public_key).is_ok_and(|key| {
            key.verify_strict(
                &self.signed_bytes(),
                &Signature::from_bytes(&self.signature),
            )
            .is_ok()
        });
        if !verified {
            return Err(format!(
                "the signature of the checkpoint at position {position} by key {} does not verify: the \
                 checkpoint was altered",
                self.key_id
            ));
        }
        if !trusted.is_empty() && !trusted.iter().any(|key| key.public_key == self.public_key) {
            let names: Vec<&str> = trusted.iter().map(TrustedKey::key_id).collect();
            return Err(format!(
                "the checkpoint at position {position} is signed by key {}, which is not a trusted key \
                 (trusted: {})",
                self.key_id,
                names.join(", ")
            ));
        }
        Ok(())
    }

    /// The checkpoint as JSON (the HTTP API's and `verify --json`'s shape).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "position": self.position,
            "hash": hex::encode(self.head_hash),
            "recorded_at": self.recorded_at(),
            "recorded_at_micros": self.recorded_at_micros,
            "key_id": self.key_id,
            "public_key": format!("{PUBLIC_PREFIX}{}", hex::encode(self.public_key)),
            "signature": hex::encode(self.signature),
        })
    }
}

/// The signed bytes (see the module's documentation).
pub fn signed_bytes(
    position: u64,
    head_hash: &[u8; 32],
    recorded_at_micros: i64,
    key_id: &str,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 * 5 + CHECKPOINT_FORMAT.len() + 8 + 32 + 8 + key_id.len());
    for field in [
        CHECKPOINT_FORMAT.as_bytes(),
        &position.to_be_bytes(),
        head_hash,
        &recorded_at_micros.to_be_bytes(),
        key_id.as_bytes(),
    ] {
        // Fields are at most a few dozen bytes.
        let length = u32::try_from(field.len()).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(field);
    }
    bytes
}

/// What checking the stored checkpoints against the log found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointReport {
    /// Checkpoints examined (up to and including the first bad one).
    pub checked: u64,
    /// The newest (highest position) sound checkpoint.
    pub newest: Option<SignedCheckpoint>,
    pub first_break: Option<ChainBreak>,
}

/// Checks every checkpoint (sorted by position) against the log whose verified head is `head`: each is
/// signed as it says (by a trusted key when `trusted` is not empty), and the log still holds its position
/// with exactly its hash. With trusted keys, at least one checkpoint must exist.
pub async fn check_checkpoints(
    log: &EventLog,
    checkpoints: &[SignedCheckpoint],
    trusted: &[TrustedKey],
    head: Option<(u64, [u8; 32])>,
) -> Result<CheckpointReport, StoreError> {
    let mut report = CheckpointReport::default();
    let last = head.map_or(0, |(position, _)| position);
    // The newest checkpoint found to match, to say between which positions a rewrite happened.
    let mut matched_before = 0;
    for checkpoint in checkpoints {
        report.checked += 1;
        let position = checkpoint.position;
        let broken = |reason: String| ChainBreak {
            global_position: position,
            reason,
        };
        if let Err(reason) = checkpoint.check(trusted) {
            report.first_break = Some(broken(reason));
            return Ok(report);
        }
        if position > last {
            report.first_break = Some(ChainBreak {
                global_position: last + 1,
                reason: format!(
                    "events missing at the end of the log: key {} signed position {position}, the log ends \
                     at {last}",
                    checkpoint.key_id
                ),
            });
            return Ok(report);
        }
        let stored = log.read_all(position - 1, 1).await?;
        match stored.first() {
            Some(event) if event.global_position == position => {
                if event.hash != checkpoint.head_hash {
                    report.first_break =
                        Some(broken(rewritten(checkpoint, &event.hash, matched_before)));
                    return Ok(report);
                }
            }
            _ => {
                report.first_break = Some(broken(format!(
                    "the log has no event at position {position}, which key {} signed",
                    checkpoint.key_id
                )));
                return Ok(report);
            }
        }
        matched_before = position;
        report.newest = Some(checkpoint.clone());
    }
    if !trusted.is_empty() && report.newest.is_none() {
        report.first_break = Some(ChainBreak {
            global_position: 1,
            reason:
                "no checkpoint signed by a trusted key: nothing proves the log was not rewritten"
                    .to_owned(),
        });
    }
    Ok(report)
}

/// The reason for a checkpoint whose position now holds another hash.
pub(crate) fn rewritten(
    checkpoint: &SignedCheckpoint,
    found: &[u8; 32],
    matched_before: u64,
) -> String {
    format!(
        "position {} has hash {}, not the {} key {} signed at {}: the log was rewritten at a position \
         from {} to {}",
        checkpoint.position,
        hex::encode(found),
        hex::encode(checkpoint.head_hash),
        checkpoint.key_id,
        checkpoint.recorded_at().map_or_else(
            || checkpoint.recorded_at_micros.to_string(),
            |at| at.to_rfc3339()
        ),
        matched_before + 1,
        checkpoint.position
    )
}

/// What [`SignedCheckpoints::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A new checkpoint of the head.
    Recorded(SignedCheckpoint),
    /// The key had signed the head already: nothing was written.
    AlreadySigned(SignedCheckpoint),
    /// The log has no event: nothing to sign.
    EmptyLog,
}

/// Why a checkpoint was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log does not verify from the key's previous checkpoint on: signing would vouch for tampering.
    #[error("refusing to sign: the log is broken at global position {}: {}", .0.global_position, .0.reason)]
    Broken(ChainBreak),
}

/// The signed checkpoints in the log's database, on either backend.
#[derive(Clone, Debug)]
pub struct SignedCheckpoints {
    pool: CompanionPool,
}

impl SignedCheckpoints {
    /// Opens the checkpoints of the log at `url` for recording. The log must have been opened for writing once
    /// (its migrations create the table).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, false).await
    }

    /// Opens them for reading only (an auditor's read-only copy works).
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, true).await
    }

    async fn connect(url: &str, read_only: bool) -> Result<Self, StoreError> {
        let pool = match Backend::of_url(url)? {
            Backend::Sqlite => CompanionPool::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(crate::companion::sqlite_options(url, true)?.read_only(read_only))
                    .await?,
            ),
            Backend::Postgres => CompanionPool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(crate::companion::postgres_options(url)?)
                    .await?,
            ),
        };
        Ok(Self { pool })
    }

    /// Every checkpoint, by position then key id; none on a log whose schema predates them.
    pub async fn list(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        self.list_from(0).await
    }

    /// The checkpoints of position `from` or later, by position then key id (what a follower such as the
    /// relay asks for each time it looks for new ones, instead of reading them all again).
    pub async fn list_from(&self, from: u64) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let from = to_i64(from)?;
        match &self.pool {
            CompanionPool::Sqlite(pool) => list_on_sqlite(&mut *pool.acquire().await?, from).await,
            CompanionPool::Postgres(pool) => {
                list_on_postgres(&mut *pool.acquire().await?, from).await
            }
        }
    }

    /// Stores `checkpoint`; whether it was new (the same key signing the same position again is kept once).
    pub async fn insert(&self, checkpoint: &SignedCheckpoint) -> Result<bool, StoreError> {
        match &self.pool {
            CompanionPool::Sqlite(pool) => {
                // The write lock first, so a concurrent writer makes this wait rather than fail.
                let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
                let inserted = insert_on_sqlite(&mut transaction, checkpoint).await?;
                transaction.commit().await?;
                Ok(inserted)
            }
            CompanionPool::Postgres(pool) => {
                insert_on_postgres(&mut *pool.acquire().await?, checkpoint).await
            }
        }
    }

    /// Signs the head of `log` with `key` at `now`, after checking the chain from the newest checkpoint this
    /// key signed (or from the start) up to the head: a key never vouches for a log it did not check.
    pub async fn record(
        &self,
        log: &EventLog,
        key: &CheckpointKey,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome, CheckpointError> {
        let own: Option<SignedCheckpoint> = self
            .list()
            .await?
            .into_iter()
            .filter(|checkpoint| checkpoint.key_id == key.key_id())
            .max_by_key(|checkpoint| checkpoint.position);
        let (after, previous_hash) = match &own {
            None => (0, crate::hash::GENESIS_HASH),
            Some(checkpoint) => {
                let stored = log.read_all(checkpoint.position - 1, 1).await?;
                match stored.first() {
                    Some(event)
                        if event.global_position == checkpoint.position
                            && event.hash == checkpoint.head_hash => {}
                    Some(event) if event.global_position == checkpoint.position => {
                        return Err(CheckpointError::Broken(ChainBreak {
                            global_position: checkpoint.position,
                            reason: rewritten(checkpoint, &event.hash, 0),
                        }));
                    }
                    _ => {
                        return Err(CheckpointError::Broken(ChainBreak {
                            global_position: checkpoint.position,
                            reason: format!(
                                "the log has no event at position {}, which this key signed",
                                checkpoint.position
                            ),
                        }));
                    }
                }
                (checkpoint.position, checkpoint.head_hash)
            }
        };
        let mut verifier = if after == 0 {
            ChainVerifier::new()
        } else {
            ChainVerifier::starting_after(after, previous_hash)
        };
        let mut head = own
            .as_ref()
            .map(|checkpoint| (checkpoint.position, checkpoint.head_hash));
        let mut next = after;
        loop {
            let page = crate::export::read_as_stored(log, next, CHECK_PAGE).await?;
            for (event, metadata) in &page {
                verifier.check(event, metadata);
                if let Some(found) = verifier.first_break() {
                    return Err(CheckpointError::Broken(found.clone()));
                }
                head = Some((event.global_position, event.hash));
                next = event.global_position;
            }
            if page.len() < CHECK_PAGE {
                break;
            }
        }
        let Some((position, hash)) = head else {
            return Ok(RecordOutcome::EmptyLog);
        };
        if let Some(checkpoint) = own
            && checkpoint.position == position
        {
            return Ok(RecordOutcome::AlreadySigned(checkpoint));
        }
        let checkpoint = key.sign(position, hash, now);
        if self.insert(&checkpoint).await? {
            Ok(RecordOutcome::Recorded(checkpoint))
        } else {
            Ok(RecordOutcome::AlreadySigned(checkpoint))
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

type CheckpointRow = (i64, Vec<u8>, i64, String, Vec<u8>, Vec<u8>);

fn decode(row: CheckpointRow) -> Result<SignedCheckpoint, StoreError> {
    let (position, head_hash, recorded_at_micros, key_id, public_key, signature) = row;
    let corrupt = |reason: String| StoreError::Corrupt {
        global_position: u64::try_from(position).unwrap_or(0),
        reason,
    };
    Ok(SignedCheckpoint {
        position: u64::try_from(position)
            .map_err(|_| corrupt(format!("a checkpoint holds position {position}")))?,
        head_hash: head_hash
            .try_into()
            .map_err(|_| corrupt("a checkpoint's hash is not 32 bytes".to_owned()))?,
        recorded_at_micros,
        key_id,
        public_key: public_key
            .try_into()
            .map_err(|_| corrupt("a checkpoint's public key is not 32 bytes".to_owned()))?,
        signature: signature
            .try_into()
            .map_err(|_| corrupt("a checkpoint's signature is not 64 bytes".to_owned()))?,
    })
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Invalid(format!("{value} exceeds the largest storable position")))
}

pub(crate) async fn list_on_sqlite(
    connection: &mut sqlx::SqliteConnection,
    from: i64,
) -> Result<Vec<SignedCheckpoint>, StoreError> {
    let exists: i64 = sqlx::query_scalar(sql::sqlite::EXISTS)
        .fetch_one(&mut *connection)
        .await?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<CheckpointRow> = sqlx::query_as(sql::sqlite::LIST_FROM)
        .bind(from)
        .fetch_all(&mut *connection)
        .await?;
    rows.into_iter().map(decode).collect()
}

pub(crate) async fn list_on_postgres(
    connection: &mut sqlx::PgConnection,
    from: i64,
) -> Result<Vec<SignedCheckpoint>, StoreError> {
    let exists: bool = sqlx::query_scalar(sql::postgres::EXISTS)
        .fetch_one(&mut *connection)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows: Vec<CheckpointRow> = sqlx::query_as(sql::postgres::LIST_FROM)
        .bind(from)
        .fetch_all(&mut *connection)
        .await?;
    rows.into_iter().map(decode).collect()
}

pub(crate) async fn insert_on_sqlite(
    connection: &mut sqlx::SqliteConnection,
    checkpoint: &SignedCheckpoint,
) -> Result<bool, StoreError> {
    let done = sqlx::query(sql::sqlite::INSERT)
        .bind(to_i64(checkpoint.position)?)
        .bind(&checkpoint.head_hash[..])
        .bind(checkpoint.recorded_at_micros)
        .bind(checkpoint.key_id.as_str())
        .bind(&checkpoint.public_key[..])
        .bind(&checkpoint.signature[..])
        .execute(&mut *connection)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn insert_on_postgres(
    connection: &mut sqlx::PgConnection,
    checkpoint: &SignedCheckpoint,
) -> Result<bool, StoreError> {
    let done = sqlx::query(sql::postgres::INSERT)
        .bind(to_i64(checkpoint.position)?)
        .bind(&checkpoint.head_hash[..])
        .bind(checkpoint.recorded_at_micros)
        .bind(checkpoint.key_id.as_str())
        .bind(&checkpoint.public_key[..])
        .bind(&checkpoint.signature[..])
        .execute(&mut *connection)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The statements, per backend (table and columns are persisted: never rename).
mod sql {
    pub(super) mod sqlite {
        pub const EXISTS: &str = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = \
             'signed_checkpoints'";
        pub const LIST_FROM: &str = "SELECT position, head_hash, recorded_at, key_id, public_key, \
             signature FROM signed_checkpoints WHERE position >= ?1 ORDER BY position, key_id";
        pub const INSERT: &str = "INSERT INTO signed_checkpoints (position, head_hash, recorded_at, \
             key_id, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING";
    }

    pub(super) mod postgres {
        pub const EXISTS: &str = "SELECT to_regclass('signed_checkpoints') IS NOT NULL";
        pub const LIST_FROM: &str = "SELECT position, head_hash, recorded_at, key_id, public_key, \
             signature FROM signed_checkpoints WHERE position >= $1 ORDER BY position, key_id";
        pub const INSERT: &str = "INSERT INTO signed_checkpoints (position, head_hash, recorded_at, \
             key_id, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
    }
}
