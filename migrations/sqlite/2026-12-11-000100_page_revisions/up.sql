-- A page of messages is cached by the server (issue 20), validated by the conversation's
-- `revision`: a counter that changes in the same transaction as every write that can change
-- any page of the conversation (its messages, their attached files, a file deleted since —
-- shown as `deleted` — and the leaf it shows). Triggers, so that no code path can forget it.
-- Several replicas share the database; each validates its cached page against this column.
ALTER TABLE conversations ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER messages_revision_ai AFTER INSERT ON messages BEGIN
    UPDATE conversations SET revision = revision + 1 WHERE id = new.conversation_id;
END;
CREATE TRIGGER messages_revision_au AFTER UPDATE ON messages BEGIN
    UPDATE conversations SET revision = revision + 1
        WHERE id IN (new.conversation_id, old.conversation_id);
END;
CREATE TRIGGER messages_revision_ad AFTER DELETE ON messages BEGIN
    UPDATE conversations SET revision = revision + 1 WHERE id = old.conversation_id;
END;

CREATE TRIGGER message_files_revision_ai AFTER INSERT ON message_files BEGIN
    UPDATE conversations SET revision = revision + 1
        WHERE id = (SELECT conversation_id FROM messages WHERE id = new.message_id);
END;
CREATE TRIGGER message_files_revision_au AFTER UPDATE ON message_files BEGIN
    UPDATE conversations SET revision = revision + 1
        WHERE id IN (SELECT conversation_id FROM messages
                     WHERE id = new.message_id OR id = old.message_id);
END;
CREATE TRIGGER message_files_revision_ad AFTER DELETE ON message_files BEGIN
    UPDATE conversations SET revision = revision + 1
        WHERE id = (SELECT conversation_id FROM messages WHERE id = old.message_id);
END;

-- A link names a file by id without a foreign key: the file's row going (or coming) changes
-- whether the message shows it as `deleted`.
CREATE TRIGGER file_metadata_revision_ad AFTER DELETE ON file_metadata BEGIN
    UPDATE conversations SET revision = revision + 1
        WHERE id IN (SELECT m.conversation_id FROM message_files AS mf
                     JOIN messages AS m ON m.id = mf.message_id WHERE mf.file_id = old.id);
END;
CREATE TRIGGER file_metadata_revision_ai AFTER INSERT ON file_metadata BEGIN
    UPDATE conversations SET revision = revision + 1
        WHERE id IN (SELECT m.conversation_id FROM message_files AS mf
                     JOIN messages AS m ON m.id = mf.message_id WHERE mf.file_id = new.id);
END;

-- The leaf decides which branch the page without `?leaf=` shows.
CREATE TRIGGER conversations_revision_leaf_au AFTER UPDATE OF leaf_id ON conversations
    WHEN new.leaf_id IS NOT old.leaf_id BEGIN
    UPDATE conversations SET revision = revision + 1 WHERE id = new.id;
END;
