-- A page of messages is cached by the server (issue 20), validated by the conversation's
-- `revision`: a counter that changes in the same transaction as every write that can change
-- any page of the conversation (its messages, their attached files, a file deleted since —
-- shown as `deleted` — and the leaf it shows). Triggers, so that no code path can forget it.
-- Several replicas share the database; each validates its cached page against this column.
ALTER TABLE conversations ADD COLUMN revision bigint NOT NULL DEFAULT 0;

CREATE FUNCTION messages_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE conversations SET revision = revision + 1 WHERE id = OLD.conversation_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.conversation_id <> OLD.conversation_id) THEN
        UPDATE conversations SET revision = revision + 1 WHERE id = NEW.conversation_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_revision_aiud AFTER INSERT OR UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_revision();

CREATE FUNCTION message_files_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE conversations SET revision = revision + 1
            WHERE id = (SELECT conversation_id FROM messages WHERE id = OLD.message_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.message_id <> OLD.message_id) THEN
        UPDATE conversations SET revision = revision + 1
            WHERE id = (SELECT conversation_id FROM messages WHERE id = NEW.message_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER message_files_revision_aiud AFTER INSERT OR UPDATE OR DELETE ON message_files
    FOR EACH ROW EXECUTE FUNCTION message_files_revision();

-- A link names a file by id without a foreign key: the file's row going (or coming) changes
-- whether the message shows it as `deleted`.
CREATE FUNCTION file_metadata_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    file uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    UPDATE conversations SET revision = revision + 1
        WHERE id IN (SELECT m.conversation_id FROM message_files AS mf
                     JOIN messages AS m ON m.id = mf.message_id WHERE mf.file_id = file);
    RETURN NULL;
END $$;
CREATE TRIGGER file_metadata_revision_aid AFTER INSERT OR DELETE ON file_metadata
    FOR EACH ROW EXECUTE FUNCTION file_metadata_revision();

-- The leaf decides which branch the page without `?leaf=` shows: counted in the same row
-- version (a BEFORE trigger), not by a second update of it.
CREATE FUNCTION conversations_revision_leaf() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := NEW.revision + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER conversations_revision_leaf_bu BEFORE UPDATE OF leaf_id ON conversations
    FOR EACH ROW WHEN (NEW.leaf_id IS DISTINCT FROM OLD.leaf_id)
    EXECUTE FUNCTION conversations_revision_leaf();
