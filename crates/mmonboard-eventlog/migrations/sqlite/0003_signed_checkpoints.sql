-- Signed checkpoints of the chain head: a position, the hash the log holds there, when it was signed and by
-- which Ed25519 key, and the signature over exactly those (docs/audit.md, "The bytes that are signed").
-- Persisted names: NEVER rename the table or a column. Append-only, like the events.
CREATE TABLE signed_checkpoints (
    -- The global position whose hash is signed (>= 1: an empty log has nothing to sign).
    position     INTEGER NOT NULL CHECK (position >= 1),
    -- The event's chain hash at that position.
    head_hash    BLOB    NOT NULL CHECK (length(head_hash) = 32),
    -- When it was signed, in unix microseconds (UTC).
    recorded_at  INTEGER NOT NULL,
    -- The signing key's id: the first 16 hex digits of SHA-256 of its public key.
    key_id       TEXT    NOT NULL,
    -- The signing key's Ed25519 public key.
    public_key   BLOB    NOT NULL CHECK (length(public_key) = 32),
    -- The Ed25519 signature of the signed bytes.
    signature    BLOB    NOT NULL CHECK (length(signature) = 64),
    PRIMARY KEY (position, key_id)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER signed_checkpoints_no_update BEFORE UPDATE ON signed_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'signed checkpoints are append-only');
END;

CREATE TRIGGER signed_checkpoints_no_delete BEFORE DELETE ON signed_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'signed checkpoints are append-only');
END;
