DROP TRIGGER projects_language_au ON projects;
DROP FUNCTION projects_language_reindex();
DROP TRIGGER file_chunks_language_bi ON file_chunks;
DROP FUNCTION file_chunks_language();
DROP INDEX file_chunks_search_idx;
ALTER TABLE file_chunks DROP COLUMN search;
ALTER TABLE file_chunks DROP COLUMN language;
ALTER TABLE file_chunks ADD COLUMN search tsvector GENERATED ALWAYS AS
    (to_tsvector('simple', text) || to_tsvector('english', text)) STORED;
CREATE INDEX file_chunks_search_idx ON file_chunks USING GIN (search);
ALTER TABLE projects DROP COLUMN language;
