-- A project's knowledge language (issue 16). Kept only: SQLite's FTS5 `unicode61`
-- tokenizer is language-neutral (no stemming), so the index does not change with it.
ALTER TABLE projects ADD COLUMN language TEXT NOT NULL DEFAULT 'english';
