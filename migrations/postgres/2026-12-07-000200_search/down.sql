DROP INDEX conversations_search_idx;
ALTER TABLE conversations DROP COLUMN search;
DROP INDEX messages_search_idx;
ALTER TABLE messages DROP COLUMN search;
DROP FUNCTION confab_fold(text);
