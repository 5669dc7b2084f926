-- Nothing to undo: the voters stay in the votes table, and the entries
-- need not name them.
SELECT 1;
