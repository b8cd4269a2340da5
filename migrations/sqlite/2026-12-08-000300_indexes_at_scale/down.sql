DROP TRIGGER file_chunks_ad;
DROP TRIGGER file_chunks_ai;
DROP TABLE file_chunks_fts;
CREATE VIRTUAL TABLE file_chunks_fts USING fts5(
    text,
    content = 'file_chunks',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER file_chunks_ai AFTER INSERT ON file_chunks BEGIN
    INSERT INTO file_chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER file_chunks_ad AFTER DELETE ON file_chunks BEGIN
    INSERT INTO file_chunks_fts (file_chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
INSERT INTO file_chunks_fts (file_chunks_fts) VALUES ('rebuild');

DROP TRIGGER messages_fts_au;
DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_ai;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    content = 'messages',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages WHEN new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages WHEN old.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.rowid, old.content);
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, status ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        SELECT 'delete', old.rowid, old.content WHERE old.status <> 'streaming';
    INSERT INTO messages_fts (rowid, content)
        SELECT new.rowid, new.content WHERE new.status <> 'streaming';
END;
INSERT INTO messages_fts (rowid, content)
    SELECT rowid, content FROM messages WHERE status <> 'streaming';

DROP TRIGGER usage_sums_ad;
DROP TRIGGER usage_sums_ai;
DROP TABLE usage_project_days;
DROP TABLE usage_model_days;
DROP TABLE usage_user_days;
