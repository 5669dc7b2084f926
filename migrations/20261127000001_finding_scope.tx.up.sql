-- A finding belongs to exactly one workshop or side event, and its event is
-- that one's event. The composite keys say both at once, so the finding's
-- own key to events goes: every finding written in any room of an event
-- used to lock that event's one row (FOR KEY SHARE, which many concurrent
-- room transactions turn into multixacts), the costliest of its checks.
ALTER TABLE workshops ADD CONSTRAINT workshops_id_event_key UNIQUE (id, event_id);
ALTER TABLE side_events ADD CONSTRAINT side_events_id_event_key UNIQUE (id, event_id);
ALTER TABLE findings
    ADD CONSTRAINT findings_scope_check CHECK (num_nonnulls(workshop_id, side_event_id) = 1),
    ADD CONSTRAINT findings_workshop_event_fkey FOREIGN KEY (workshop_id, event_id)
        REFERENCES workshops (id, event_id) ON DELETE CASCADE,
    ADD CONSTRAINT findings_side_event_event_fkey FOREIGN KEY (side_event_id, event_id)
        REFERENCES side_events (id, event_id) ON DELETE CASCADE,
    DROP CONSTRAINT findings_event_id_fkey,
    DROP CONSTRAINT findings_workshop_id_fkey,
    DROP CONSTRAINT findings_side_event_id_fkey;
