-- An update's entry carried the whole finding to every member of the
-- room: a one-word edit of a finding with long texts sent each some
-- 240 KB. Entries now carry what changed ("changes", with the finding's
-- id, version and updated_at); this rewrites those already logged the
-- same way, and indexes the finding's id where it now is.
UPDATE log_entries e SET payload = jsonb_build_object(
        'id', e.payload->'finding'->'id',
        'version', e.payload->'finding'->'version',
        'updated_at', e.payload->'finding'->'updated_at',
        'changes', (SELECT coalesce(jsonb_object_agg(k, e.payload->'finding'->k), '{}'::jsonb)
                    FROM jsonb_array_elements_text(coalesce(e.payload->'fields', '[]'::jsonb)) AS k
                    WHERE e.payload->'finding' ? k),
        'fields', coalesce(e.payload->'fields', '[]'::jsonb))
WHERE e.kind = 'finding.update' AND jsonb_typeof(e.payload->'finding') = 'object';

DROP INDEX log_entries_finding_update_idx;
CREATE INDEX log_entries_finding_update_idx ON log_entries (room, ((payload->>'id')::bigint))
    WHERE kind = 'finding.update';
