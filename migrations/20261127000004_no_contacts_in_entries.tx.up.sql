-- A finding's contact (given with consent, for organizers and report
-- authors) was in its create and update entries, so it reached every
-- tablet of the room and stayed in the log after consent was withdrawn.
-- Entries now leave it out; this takes it out of those already logged.
UPDATE log_entries SET payload = payload - 'contact_name' - 'contact_email'
WHERE payload ? 'contact_name' OR payload ? 'contact_email';
UPDATE log_entries SET payload = jsonb_set(payload, '{finding}', (payload->'finding') - 'contact_name' - 'contact_email')
WHERE jsonb_typeof(payload->'finding') = 'object'
  AND (payload->'finding' ? 'contact_name' OR payload->'finding' ? 'contact_email');
