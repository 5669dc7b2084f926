-- Nothing to undo: NFC is the same text to the eye, and what came before
-- it cannot be told apart from it.
SELECT 1;
