-- Imported conversations (issue 18): the key of each (`chatgpt:<id>`, `confab:<id>`), unique
-- per project (and so per owner), so that importing the same export twice adds nothing the
-- second time. Deleting the conversation (or its project) frees the key.
CREATE TABLE conversation_imports (
    project_id      TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    import_key      TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, import_key)
) STRICT;
CREATE INDEX conversation_imports_conversation_idx ON conversation_imports (conversation_id);
