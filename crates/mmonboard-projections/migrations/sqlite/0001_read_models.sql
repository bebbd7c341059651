-- The read models. They are derived data: `mmonboard projections rebuild` recreates every row from the
-- log, so they may change shape in later migrations. Table and column names are still part of what other
-- tools read: rename only with a migration and a note.

-- One row per portfolio: where its onboarding stands.
CREATE TABLE read_onboarding_status (
    portfolio_id   TEXT    PRIMARY KEY NOT NULL,
    phase          TEXT    NOT NULL,
    stage          TEXT    NOT NULL,
    next_action    TEXT    NOT NULL,
    -- JSON array of {"code", "message"}: what stands in the way now.
    blocked_by     TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    started_at     INTEGER,
    updated_at     INTEGER,
    last_position  INTEGER NOT NULL
) STRICT;

-- One row per WABA with a mirrored read-only ad account.
CREATE TABLE read_ad_accounts (
    portfolio_id   TEXT    NOT NULL,
    waba_id        TEXT    NOT NULL,
    ad_account_id  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    -- The WABA's MM routing: onboarded, suspended, offboarded.
    status         TEXT    NOT NULL,
    PRIMARY KEY (portfolio_id, waba_id)
) STRICT;

-- One row per template seen after enablement; its sync status is computed at the moment of the question.
CREATE TABLE read_templates (
    portfolio_id         TEXT    NOT NULL,
    template_id          TEXT    NOT NULL,
    waba_id              TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    language             TEXT    NOT NULL,
    category             TEXT    NOT NULL,
    changed_at           INTEGER NOT NULL,
    sync_window_ends_at  INTEGER NOT NULL,
    mirror_synced_at     INTEGER,
    last_activity_at     INTEGER NOT NULL,
    PRIMARY KEY (portfolio_id, template_id)
) STRICT;

-- Where each projection got to, written in the same transaction as its rows.
CREATE TABLE read_model_checkpoints (
    name        TEXT    PRIMARY KEY NOT NULL,
    position    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
