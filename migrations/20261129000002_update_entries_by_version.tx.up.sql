-- The conflict check of an update reads the finding's update entries
-- since the version the update was based on. Indexed by the finding alone,
-- it read every update the finding ever had: a finding edited 20,000
-- times made each update of it from an early base read 20,000 entries per
-- field, inside the room's transaction (review: another member's acks
-- took 1.7 s). This index has the version too, so the check reads only
-- the entries after the base, and at most a few dozen of them (see
-- store.maxChangesRead). It replaces log_entries_finding_update2_idx,
-- whose queries it serves as well (its leading columns are the same).
CREATE INDEX log_entries_finding_update3_idx ON log_entries
    (room, ((coalesce(payload->>'id', payload->'finding'->>'id'))::bigint),
     ((coalesce(payload->>'version', payload->'finding'->>'version'))::int))
    WHERE kind = 'finding.update';
DROP INDEX log_entries_finding_update2_idx;
