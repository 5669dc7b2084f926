-- The entries keep what changed (the whole finding is not known of an
-- older version); only the index goes back to where the id was.
DROP INDEX log_entries_finding_update_idx;
CREATE INDEX log_entries_finding_update_idx ON log_entries (room, ((payload->'finding'->>'id')::bigint))
    WHERE kind = 'finding.update';
