DROP INDEX log_entries_deletions_idx;
