-- An update's entry carried the whole finding to every member of the
-- room: a one-word edit of a finding with long texts sent each some
-- 240 KB. Entries now carry what changed ("changes", with the finding's
-- id, version and updated_at); this rewrites those already logged the
-- same way. The index the conflict check reads by finds the finding's id
-- in either shape: a process of the older version still logs the whole
-- finding until it is upgraded too. The older index stays for such a
-- process's own check (a later migration may drop it).
CREATE INDEX log_entries_finding_update2_idx ON log_entries
    (room, ((coalesce(payload->>'id', payload->'finding'->>'id'))::bigint))
    WHERE kind = 'finding.update';

UPDATE log_entries e SET payload = jsonb_build_object(
        'id', e.payload->'finding'->'id',
        'version', e.payload->'finding'->'version',
        'updated_at', e.payload->'finding'->'updated_at',
        'changes', (SELECT coalesce(jsonb_object_agg(k, e.payload->'finding'->k), '{}'::jsonb)
                    FROM jsonb_array_elements_text(CASE jsonb_typeof(e.payload->'fields') WHEN 'array' THEN e.payload->'fields' ELSE '[]'::jsonb END) AS k
                    WHERE e.payload->'finding' ? k),
        'fields', CASE jsonb_typeof(e.payload->'fields') WHEN 'array' THEN e.payload->'fields' ELSE '[]'::jsonb END)
WHERE e.kind = 'finding.update' AND jsonb_typeof(e.payload->'finding') = 'object';

