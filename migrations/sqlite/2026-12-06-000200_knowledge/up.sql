-- Project knowledge (issue 16): the chunks of each ready file, indexed for full-text search
-- (FTS5 external content, kept in step by triggers; bm25 ranks). Chunks go with their file.
CREATE TABLE file_chunks (
    id         INTEGER PRIMARY KEY,
    file_id    TEXT    NOT NULL REFERENCES file_metadata (id) ON DELETE CASCADE,
    project_id TEXT    NOT NULL,
    ordinal    INTEGER NOT NULL CHECK (ordinal >= 0),
    text       TEXT    NOT NULL
) STRICT;
CREATE INDEX file_chunks_file_id_idx ON file_chunks (file_id);

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
