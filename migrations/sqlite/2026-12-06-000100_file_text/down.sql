DROP TABLE file_texts;
DROP INDEX file_metadata_sha256_idx;
DROP INDEX file_metadata_pending_idx;
ALTER TABLE file_metadata DROP COLUMN text_error;
ALTER TABLE file_metadata DROP COLUMN text_status;
