-- API tokens: only the SHA-256 of each secret is kept. Times are microseconds since the Unix epoch, UTC.
-- A revoked token keeps its row (its name stays in the history as an actor, so it is never reused).
CREATE TABLE access_tokens (
    name            TEXT    NOT NULL PRIMARY KEY,
    role            TEXT    NOT NULL,
    token_hash      BLOB    NOT NULL UNIQUE,
    created_at_us   INTEGER NOT NULL,
    expires_at_us   INTEGER,
    revoked_at_us   INTEGER,
    last_used_at_us INTEGER
);
