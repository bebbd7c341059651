-- The read models on PostgreSQL: the same tables and columns as on SQLite (times in unix microseconds), so
-- tools read both alike. They are derived data: `mmonboard projections rebuild` recreates every row from the
-- log. Table and column names are still part of what other tools read: rename only with a migration and a note.

-- One row per portfolio: where its onboarding stands.
CREATE TABLE read_onboarding_status (
    portfolio_id   TEXT    PRIMARY KEY NOT NULL,
    phase          TEXT    NOT NULL,
    stage          TEXT    NOT NULL,
    next_action    TEXT    NOT NULL,
    -- JSON array of {"code", "message"}: what stands in the way now.
    blocked_by     TEXT    NOT NULL,
    version        BIGINT  NOT NULL,
    started_at     BIGINT,
    updated_at     BIGINT,
    last_position  BIGINT  NOT NULL
);

-- One row per WABA with a mirrored read-only ad account.
CREATE TABLE read_ad_accounts (
    portfolio_id   TEXT    NOT NULL,
    waba_id        TEXT    NOT NULL,
    ad_account_id  TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    -- The WABA's MM routing: onboarded, suspended, offboarded.
    status         TEXT    NOT NULL,
    PRIMARY KEY (portfolio_id, waba_id)
);

-- One row per template seen after enablement; its sync status is computed at the moment of the question.
CREATE TABLE read_templates (
    portfolio_id         TEXT    NOT NULL,
    template_id          TEXT    NOT NULL,
    waba_id              TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    language             TEXT    NOT NULL,
    category             TEXT    NOT NULL,
    changed_at           BIGINT  NOT NULL,
    sync_window_ends_at  BIGINT  NOT NULL,
    mirror_synced_at     BIGINT,
    last_activity_at     BIGINT  NOT NULL,
    PRIMARY KEY (portfolio_id, template_id)
);

-- Where each projection got to, written in the same transaction as its rows.
CREATE TABLE read_model_checkpoints (
    name        TEXT    PRIMARY KEY NOT NULL,
    position    BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
