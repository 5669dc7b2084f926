-- The client (one browser of a device, say) that sent a finding update,
-- mark or unmark, when the op named one. A field (or the key state)
-- changed since an op's base by the same person from another client is a
-- conflict, as anyone else's change is: a person's stale tablet must not
-- save over what they wrote since on their laptop. Never sent to anyone. A table of its own, not a column of
-- log_entries: a process of the older version reads entries with
-- "SELECT *", which an unknown column would break during an upgrade.
CREATE TABLE log_clients (
    room   text   NOT NULL,
    seq    bigint NOT NULL,
    client text   NOT NULL CHECK (length(client) BETWEEN 1 AND 64),
    PRIMARY KEY (room, seq),
    FOREIGN KEY (room, seq) REFERENCES log_entries (room, seq) ON DELETE CASCADE
);
