//! The server's copy of the token store, so that a request costs no database round trip once its token is
//! known. The copy is reloaded by the first request that finds it older than the refresh interval (measured
//! on the server's clock, which tests control), and by a request whose token it does not know, at most once
//! per [`MISS_RELOAD_AFTER`]: a revocation takes effect within one refresh interval, a new token at its first
//! use. Expiry is checked against the clock at every request. Last-use times are gathered in memory and
//! written back at each reload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use mmonboard_access::{AccessError, Credential, Role, TokenHash, TokenName, TokenStore};
use mmonboard_app::Clock;

/// How soon after a reload a token the copy does not know reloads it again: bounds what a flood of bad
/// tokens costs the database.
pub(crate) const MISS_RELOAD_AFTER: TimeDelta = TimeDelta::seconds(1);

/// Who made a request: a token's name and role, or nobody under `--insecure-no-auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The caller when the server runs with `--insecure-no-auth`: anyone, with every right.
    pub(crate) fn unauthenticated() -> Self {
        Self {
            name: "unauthenticated".to_owned(),
            role: Role::Admin,
        }
    }

    /// What every event this caller causes records as its actor: `alice (operator)`.
    pub fn actor(&self) -> String {
        format!("{} ({})", self.name, self.role)
    }
}

/// What the copy says of a presented token.
#[derive(Debug)]
pub(crate) enum Verdict {
    Valid(Principal),
    Unknown,
    Revoked(String),
    Expired(String),
}

struct Snapshot {
    loaded_at: DateTime<Utc>,
    credentials: Vec<Credential>,
}

pub(crate) struct TokenCache<C> {
    store: TokenStore,
    clock: C,
    refresh_every: TimeDelta,
    snapshot: RwLock<Arc<Snapshot>>,
    /// One reload at a time; the others wait for it and then use what it loaded.
    reload: tokio::sync::Mutex<()>,
    uses: Mutex<HashMap<TokenName, DateTime<Utc>>>,
}

impl<C: Clock> TokenCache<C> {
    pub async fn load(
        store: TokenStore,
        clock: C,
        refresh_every: TimeDelta,
    ) -> Result<Self, AccessError> {
        let credentials = store.credentials().await?;
        let loaded_at = clock.now();
        Ok(Self {
            store,
            clock,
            refresh_every,
            snapshot: RwLock::new(Arc::new(Snapshot {
                loaded_at,
                credentials,
            })),
            reload: tokio::sync::Mutex::new(()),
            uses: Mutex::new(HashMap::new()),
        })
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// Whether any token would be let in now.
    pub fn has_usable_token(&self) -> bool {
        let now = self.clock.now();
        self.current()
            .credentials
            .iter()
            .any(|credential| credential.record.is_usable_at(now))
    }

    /// Makes the next request reload (after this server created or revoked a token).
    pub fn invalidate(&self) {
        let current = self.current();
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Snapshot {
            loaded_at: DateTime::<Utc>::MIN_UTC,
            credentials: current.credentials.clone(),
        });
    }

    pub async fn authenticate(&self, presented: &str) -> Result<Verdict, AccessError> {
        let hash = TokenHash::of(presented);
        let now = self.clock.now();
        let mut snapshot = self.current();
        if now - snapshot.loaded_at >= self.refresh_every {
            snapshot = self.reload_older_than(self.refresh_every).await?;
        }
        let mut found = find(&snapshot, &hash);
        if found.is_none() && now - snapshot.loaded_at >= MISS_RELOAD_AFTER {
            snapshot = self.reload_older_than(MISS_RELOAD_AFTER).await?;
            found = find(&snapshot, &hash);
        }
        let Some(credential) = found else {
            return Ok(Verdict::Unknown);
        };
        let record = &credential.record;
        if record.revoked_at.is_some() {
            return Ok(Verdict::Revoked(record.name.to_string()));
        }
        if !record.is_usable_at(now) {
            return Ok(Verdict::Expired(record.name.to_string()));
        }
        self.uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.name.clone(), now);
        Ok(Verdict::Valid(Principal {
            name: record.name.to_string(),
            role: record.role,
        }))
    }

    /// Writes the gathered last-use times back (at shutdown; reloads do it too).
    pub async fn flush_uses(&self) -> Result<(), AccessError> {
        let uses: Vec<(TokenName, DateTime<Utc>)> =
            std::mem::take(&mut *self.uses.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .collect();
        self.store.record_uses(&uses).await
    }

    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    async fn reload_older_than(&self, age: TimeDelta) -> Result<Arc<Snapshot>, AccessError> {
        let _reloading = self.reload.lock().await;
        let current = self.current();
        let now = self.clock.now();
        if now - current.loaded_at < age {
            return Ok(current);
        }
        if let Err(error) = self.flush_uses().await {
            tracing::warn!(%error, "the tokens' last-use times were not written");
        }
        let credentials = self.store.credentials().await?;
        let fresh = Arc::new(Snapshot {
            loaded_at: now,
            credentials,
        });
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }
}

/// The credential whose hash matches: every hash is compared, each in constant time, so how long it takes
/// says nothing about which token, or how much of one, matched.
fn find<'a>(snapshot: &'a Snapshot, hash: &TokenHash) -> Option<&'a Credential> {
    let mut found = None;
    for credential in &snapshot.credentials {
        if credential.hash.matches(hash) {
            found = Some(credential);
        }
    }
    found
}
