ALTER TABLE findings
    DROP CONSTRAINT findings_scope_check,
    DROP CONSTRAINT findings_workshop_event_fkey,
    DROP CONSTRAINT findings_side_event_event_fkey,
    ADD CONSTRAINT findings_event_id_fkey FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE,
    ADD CONSTRAINT findings_workshop_id_fkey FOREIGN KEY (workshop_id) REFERENCES workshops (id) ON DELETE CASCADE,
    ADD CONSTRAINT findings_side_event_id_fkey FOREIGN KEY (side_event_id) REFERENCES side_events (id) ON DELETE CASCADE;
ALTER TABLE side_events DROP CONSTRAINT side_events_id_event_key;
ALTER TABLE workshops DROP CONSTRAINT workshops_id_event_key;
