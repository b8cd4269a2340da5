-- Imported conversations (issue 18): the key of each (`chatgpt:<id>`, `confab:<id>`), unique
-- per project (and so per owner), so that importing the same export twice adds nothing the
-- second time. Deleting the conversation (or its project) frees the key.
CREATE TABLE conversation_imports (
    project_id      uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    import_key      text NOT NULL,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, import_key)
);
CREATE INDEX conversation_imports_conversation_idx ON conversation_imports (conversation_id);
