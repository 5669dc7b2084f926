DROP TABLE IF EXISTS settings, audit_log, invites, sessions, log_entries, rooms,
    conclusion_findings, conclusions, comments, votes, findings,
    taxonomy_terms, memberships, people, side_events, workshops, parts, events;
