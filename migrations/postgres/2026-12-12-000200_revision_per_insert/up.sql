-- The page revision (2026-12-11-000100) counted once per statement that inserts messages,
-- not once per row: a send inserts its user message and its reply in one statement, and each
-- row's trigger was one more UPDATE of the conversation's row inside the send's transaction
-- (issue 20: the send's work on PostgreSQL). Updates and deletes keep their row triggers (a
-- statement trigger would also run for the sweeps that change no row).
DROP TRIGGER messages_revision_aiud ON messages;
CREATE TRIGGER messages_revision_aud AFTER UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_revision();

-- One UPDATE by key per conversation, never `WHERE id IN (SELECT … FROM inserted)`: a
-- session caches that statement's plan while the table is small (a scan of every row) and
-- keeps it as the table grows — each send then read every conversation (measured: the time
-- per insert grew linearly with the table; 1,000 streams' first deltas waited 0.5–2 s).
CREATE FUNCTION messages_revision_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    conversation uuid;
BEGIN
    FOR conversation IN SELECT DISTINCT conversation_id FROM inserted LOOP
        UPDATE conversations SET revision = revision + 1 WHERE id = conversation;
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_revision_ai AFTER INSERT ON messages
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION messages_revision_inserted();
