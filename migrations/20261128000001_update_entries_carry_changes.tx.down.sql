-- Back to entries that carry the whole finding, for the older version's
-- conflict check and pages: the finding is rebuilt from its row as it is
-- now (without its contact, which entries never carry), with the entry's
-- changes, id, version and updated_at laid over it. Its other fields are
-- today's, not those of the entry's time; an entry of a finding no longer
-- stored keeps what changed.
UPDATE log_entries e SET payload = jsonb_build_object(
        'finding', (to_jsonb(f) - 'contact_name' - 'contact_email' - 'field_versions' - 'deleted_at')
                   || coalesce(e.payload->'changes', '{}'::jsonb)
                   || jsonb_build_object('id', e.payload->'id', 'version', e.payload->'version', 'updated_at', e.payload->'updated_at'),
        'fields', e.payload->'fields')
FROM findings f
WHERE e.kind = 'finding.update' AND e.payload ? 'changes' AND f.id = (e.payload->>'id')::bigint;

DROP INDEX log_entries_finding_update2_idx;
