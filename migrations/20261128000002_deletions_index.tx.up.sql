-- A join from before a finding's deletion is answered with a snapshot, so
-- that the deleted finding's text is not sent again from the log: each
-- join asks for the room's newest deletion, which this index finds at
-- once.
CREATE INDEX log_entries_deletions_idx ON log_entries (room, seq) WHERE kind = 'finding.delete';
