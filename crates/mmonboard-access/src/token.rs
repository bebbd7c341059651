//! API tokens: a name, a high-entropy secret shown once, and the SHA-256 of the secret, which is all that is
//! stored. Hashing without a salt or a slow KDF is enough here because the secret is 32 random bytes, not a
//! password: nothing can be guessed from its hash. Comparisons of hashes are constant-time.

use std::fmt;

use chrono::TimeDelta;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AccessError;

/// Every token starts with this, so a leaked one is recognisable (secret scanners, logs, a reviewer's eye).
pub const TOKEN_PREFIX: &str = "mmo_";

/// How many random bytes a token carries.
const TOKEN_BYTES: usize = 32;

/// Names the internal actors use: a token cannot take them, so no history line can be mistaken for them.
const RESERVED_NAMES: [&str; 3] = ["process-manager", "meta-webhook", "unauthenticated"];

/// A token's name: what the history records as the actor, with the role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(text: &str) -> Result<Self, AccessError> {
        let invalid = |reason| AccessError::InvalidName {
            name: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.len() > 64 {
            return Err(invalid("it is longer than 64 characters"));
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(
                "it has a character other than a-z, 0-9, '.', '_' and '-'",
            ));
        }
        if !text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(invalid("it does not start with a letter or digit"));
        }
        if RESERVED_NAMES.contains(&text) {
            return Err(invalid("it is the name of an internal actor"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The secret itself: shown once at creation, never stored, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Result<Self, AccessError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|error| AccessError::Store(format!("no random bytes for a token: {error}")))?;
        Ok(Self(format!("{TOKEN_PREFIX}{}", hex::encode(bytes))))
    }

    /// The text to hand to the caller, once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// The SHA-256 of a token: what the store keeps and what a presented token is looked up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of whatever a caller presented (well-formed or not).
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality: how long it takes says nothing about how many bytes matched.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// A token's lifetime as `--expires-in` takes it: `90d`, `12h`, `30m`, `2w`, or combinations (`1d 12h`).
pub fn parse_lifetime(text: &str) -> Result<TimeDelta, AccessError> {
    let invalid = |reason: String| AccessError::InvalidLifetime {
        text: text.to_owned(),
        reason,
    };
    let duration =
        humantime::parse_duration(text.trim()).map_err(|error| invalid(error.to_string()))?;
    if duration.is_zero() {
        return Err(invalid("it is zero".to_owned()));
    }
    TimeDelta::from_std(duration).map_err(|_| invalid("it is too long".to_owned()))
}
