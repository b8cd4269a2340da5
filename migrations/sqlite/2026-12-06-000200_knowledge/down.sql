DROP TRIGGER file_chunks_ad;
DROP TRIGGER file_chunks_ai;
DROP TABLE file_chunks_fts;
DROP TABLE file_chunks;
