DROP TRIGGER file_chunks_ad;
DROP TRIGGER file_chunks_ai;
DROP TABLE file_chunks_fts;
CREATE VIRTUAL TABLE file_chunks_fts USING fts5(
    text,
    project_id,
    content = 'file_chunks',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER file_chunks_ai AFTER INSERT ON file_chunks BEGIN
    INSERT INTO file_chunks_fts (rowid, text, project_id)
        VALUES (new.id, new.text, new.project_id);
END;
CREATE TRIGGER file_chunks_ad AFTER DELETE ON file_chunks BEGIN
    INSERT INTO file_chunks_fts (file_chunks_fts, rowid, text, project_id)
        VALUES ('delete', old.id, old.text, old.project_id);
END;
INSERT INTO file_chunks_fts (file_chunks_fts) VALUES ('rebuild');

DROP TRIGGER messages_fts_au;
DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_ai;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    owner,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages WHEN new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, content, owner)
        SELECT new.rowid, new.content, hex(c.owner_id) FROM conversations c
        WHERE c.id = new.conversation_id;
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages WHEN old.status <> 'streaming' BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid;
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, status ON messages
    WHEN old.status <> 'streaming' OR new.status <> 'streaming' BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid AND old.status <> 'streaming';
    INSERT INTO messages_fts (rowid, content, owner)
        SELECT new.rowid, new.content, hex(c.owner_id) FROM conversations c
        WHERE c.id = new.conversation_id AND new.status <> 'streaming';
END;
INSERT INTO messages_fts (rowid, content, owner)
    SELECT m.rowid, m.content, hex(c.owner_id)
    FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE m.status <> 'streaming';
