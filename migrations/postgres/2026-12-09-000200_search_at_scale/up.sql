-- Search and knowledge at scale (issues 16, 18): this version rebuilds SQLite's FTS5 tables
-- (prefix indexes for `messages_fts`, a one-token project column for `file_chunks_fts`).
-- PostgreSQL's GIN indexes need no change: its queries changed, not its schema. Kept so that
-- both dialects list the same versions.
SELECT 1;
