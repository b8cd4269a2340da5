-- A file's row coming or going changes the pages of the conversations that link it: one
-- UPDATE by key per conversation, never `WHERE id IN (SELECT …)` — a session caches that
-- plan while the tables are small (a scan of every conversation) and keeps it as they grow
-- (see 2026-12-12-000200).
CREATE OR REPLACE FUNCTION file_metadata_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    file uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
    conversation uuid;
BEGIN
    FOR conversation IN SELECT DISTINCT m.conversation_id FROM message_files AS mf
                        JOIN messages AS m ON m.id = mf.message_id WHERE mf.file_id = file LOOP
        UPDATE conversations SET revision = revision + 1 WHERE id = conversation;
    END LOOP;
    RETURN NULL;
END $$;
