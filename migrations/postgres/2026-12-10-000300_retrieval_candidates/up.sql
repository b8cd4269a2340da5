-- Knowledge retrieval (issue 16) at scale: the project's chunks in id order, so that the
-- newest matches of a common word are found by walking the project's chunks newest first
-- (and stopping at `knowledge::RANKED_CHUNKS`, or at the page for a query of common words
-- only) instead of testing and ranking every chunk of the project. It replaces
-- `file_chunks_project_id_idx` (its prefix serves the same lookups by project).
CREATE INDEX file_chunks_project_newest_idx ON file_chunks (project_id, id);
DROP INDEX file_chunks_project_id_idx;
