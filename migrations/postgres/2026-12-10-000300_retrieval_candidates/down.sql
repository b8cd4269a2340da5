CREATE INDEX file_chunks_project_id_idx ON file_chunks (project_id);
DROP INDEX file_chunks_project_newest_idx;
