-- Vote and unvote entries named the voter's person id. Presence frames
-- list people by the same id with their names, so anyone joining a
-- workshop room (report authors, organizers) could tell who supported
-- which finding, past the anonymous actor label every entry has. The
-- entries now carry the finding and its count only; the votes table
-- still says who voted, for the server.
UPDATE log_entries SET payload = payload - 'person_id' WHERE kind IN ('vote', 'unvote') AND payload ? 'person_id';
