-- One active process manager per database: the instance whose lease has not expired is the only one that calls
-- Meta; the others stand by and take over once it lapses (or is released at shutdown).
CREATE TABLE process_lease (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL, -- microseconds since the epoch (the lease clock: real time)
    acquired_at INTEGER NOT NULL  -- when this holder first took it
);
