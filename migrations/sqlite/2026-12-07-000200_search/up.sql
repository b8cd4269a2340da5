-- Full-text search (issue 18) over messages and conversation titles: FTS5 external-content
-- tables (the text stays in `messages` and `conversations`; the index holds only tokens),
-- `unicode61 remove_diacritics 2` ("Café" is found by "cafe"), ranked by bm25. Triggers keep
-- them in step in the same transaction as each write. A reply being generated (`streaming`)
-- is not indexed: its text is renewed as it grows; it is indexed when it completes (the
-- update that sets its final status). The rowid joining an index to its table is the
-- tables' implicit rowid: after a VACUUM (which may renumber it) run
-- `INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')` — and the same for
-- `conversations_fts` — then delete the streaming rows' entries (none are expected then).

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
-- One trigger for both halves, so the old entry always goes before the new one is added.
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, status ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        SELECT 'delete', old.rowid, old.content WHERE old.status <> 'streaming';
    INSERT INTO messages_fts (rowid, content)
        SELECT new.rowid, new.content WHERE new.status <> 'streaming';
END;
INSERT INTO messages_fts (rowid, content)
    SELECT rowid, content FROM messages WHERE status <> 'streaming';

CREATE VIRTUAL TABLE conversations_fts USING fts5(
    title,
    content = 'conversations',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER conversations_fts_ai AFTER INSERT ON conversations BEGIN
    INSERT INTO conversations_fts (rowid, title) VALUES (new.rowid, new.title);
END;
CREATE TRIGGER conversations_fts_ad AFTER DELETE ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title)
        VALUES ('delete', old.rowid, old.title);
END;
CREATE TRIGGER conversations_fts_au AFTER UPDATE OF title ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title)
        VALUES ('delete', old.rowid, old.title);
    INSERT INTO conversations_fts (rowid, title) VALUES (new.rowid, new.title);
END;
INSERT INTO conversations_fts (rowid, title) SELECT rowid, title FROM conversations;
