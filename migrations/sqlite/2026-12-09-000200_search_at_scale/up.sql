-- Search (issue 18) at scale: `messages_fts` gets prefix indexes of 2 and 3 characters
-- (`prefix = '2 3'`). Without them a short prefix (`th`, typed in the search box) is matched
-- by merging the entries of every indexed word that starts with it — most of the index, every
-- user's — before the owner's are kept; with them it is one entry list, stepped through
-- like a word. Longer prefixes expand to few words. The table is otherwise as in
-- `2026-12-08-000300_indexes_at_scale` (contentless, `contentless_delete`, the owner's hex as
-- one token in `owner`), and it is filled again from `messages` here. After a `VACUUM`
-- (which may renumber the rowids) fill it again: `DELETE FROM messages_fts;` then the
-- `INSERT … SELECT` below.
DROP TRIGGER messages_fts_au;
DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_ai;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    owner,
    content = '',
    contentless_delete = 1,
    prefix = '2 3',
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
-- One trigger for both halves, so the old entry always goes before the new one is added; a
-- reply being generated (streaming to streaming: its text renewed as it grows) fires none.
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

-- Knowledge (issue 16): `file_chunks_fts` becomes contentless (`contentless_delete`, as
-- `messages_fts`), its second column `project` one token: the project id without its
-- hyphens (32 hex digits). Before, the column held the id as written, which the tokenizer
-- splits at each hyphen into five words, three of them the same in every id
-- (`…-0000-7000-8000-…` of a UUIDv7 is common), so `project_id : "<id>"` was a phrase
-- whose words are in every chunk — and bm25, which counts each phrase's rows in the whole
-- table once per query, stepped through all of them for every retrieval. The text is read
-- from `file_chunks`, as before; the chunk's `id` (an INTEGER PRIMARY KEY, kept by `VACUUM`)
-- is the rowid.
DROP TRIGGER file_chunks_ad;
DROP TRIGGER file_chunks_ai;
DROP TABLE file_chunks_fts;
CREATE VIRTUAL TABLE file_chunks_fts USING fts5(
    text,
    project,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER file_chunks_ai AFTER INSERT ON file_chunks BEGIN
    INSERT INTO file_chunks_fts (rowid, text, project)
        VALUES (new.id, new.text, replace(new.project_id, '-', ''));
END;
CREATE TRIGGER file_chunks_ad AFTER DELETE ON file_chunks BEGIN
    DELETE FROM file_chunks_fts WHERE rowid = old.id;
END;
INSERT INTO file_chunks_fts (rowid, text, project)
    SELECT id, text, replace(project_id, '-', '') FROM file_chunks;
