-- Knowledge retrieval (issue 16) at scale: PostgreSQL gets an index of the project's chunks
-- in id order; SQLite's index already hands over a project's matches newest first
-- (`file_chunks_fts`). Kept so that both dialects list the same versions.
SELECT 1;
