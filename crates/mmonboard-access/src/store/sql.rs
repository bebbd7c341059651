//! Every statement of the token store (`access_tokens`), one module per backend with the same names. Table
//! and column names are persisted: never rename one.

pub(super) mod sqlite {
    pub const INSERT_TOKEN: &str = "INSERT INTO access_tokens \
         (name, role, token_hash, created_at_us, expires_at_us) VALUES (?1, ?2, ?3, ?4, ?5)";
    pub const ALL_TOKENS: &str = "SELECT name, role, token_hash, created_at_us, expires_at_us, \
         revoked_at_us, last_used_at_us FROM access_tokens ORDER BY created_at_us, name";
    /// Only a token not revoked yet: the rows changed say whether it was.
    pub const REVOKE_TOKEN: &str =
        "UPDATE access_tokens SET revoked_at_us = ?1 WHERE name = ?2 AND revoked_at_us IS NULL";
    pub const TOKEN_EXISTS: &str = "SELECT 1 FROM access_tokens WHERE name = ?1";
    /// A later time than the stored one wins.
    pub const RECORD_USE: &str = "UPDATE access_tokens \
         SET last_used_at_us = MAX(COALESCE(last_used_at_us, ?2), ?2) WHERE name = ?1";
}

pub(super) mod postgres {
    pub const INSERT_TOKEN: &str = "INSERT INTO access_tokens \
         (name, role, token_hash, created_at_us, expires_at_us) VALUES ($1, $2, $3, $4, $5)";
    pub const ALL_TOKENS: &str = "SELECT name, role, token_hash, created_at_us, expires_at_us, \
         revoked_at_us, last_used_at_us FROM access_tokens ORDER BY created_at_us, name";
    /// Only a token not revoked yet: the rows changed say whether it was.
    pub const REVOKE_TOKEN: &str =
        "UPDATE access_tokens SET revoked_at_us = $1 WHERE name = $2 AND revoked_at_us IS NULL";
    pub const TOKEN_EXISTS: &str = "SELECT 1::BIGINT FROM access_tokens WHERE name = $1";
    /// A later time than the stored one wins.
    pub const RECORD_USE: &str = "UPDATE access_tokens \
         SET last_used_at_us = GREATEST(COALESCE(last_used_at_us, $2), $2) WHERE name = $1";
}
