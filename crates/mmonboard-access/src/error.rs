//! The errors of access control: bad input (a name, a role, a lifetime) named precisely, and the token
//! store's failures without a driver type in sight.

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("unknown role {0:?}: the roles are operator, recorder, auditor, subscriber and admin")]
    UnknownRole(String),
    #[error(
        "invalid token name {name:?}: {reason} (1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit)"
    )]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid lifetime {text:?}: {reason} (for example 90d, 12h or 30m)")]
    InvalidLifetime { text: String, reason: String },
    #[error("a token named {0:?} exists already (names are never reused, even once revoked)")]
    NameTaken(String),
    #[error("no token named {0:?}")]
    UnknownToken(String),
    #[error("the token {0:?} is revoked already")]
    AlreadyRevoked(String),
    #[error("the token store failed: {0}")]
    Store(String),
}

impl From<mmonboard_eventlog::StoreError> for AccessError {
    fn from(error: mmonboard_eventlog::StoreError) -> Self {
        AccessError::Store(error.to_string())
    }
}
