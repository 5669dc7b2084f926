CREATE INDEX log_entries_finding_update2_idx ON log_entries
    (room, ((coalesce(payload->>'id', payload->'finding'->>'id'))::bigint))
    WHERE kind = 'finding.update';
DROP INDEX log_entries_finding_update3_idx;
