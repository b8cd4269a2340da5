-- Text extraction (issue 16): where each file's extraction stands, and the text once read.
-- Files uploaded before this migration are `pending`: the start-up sweep reads them.
ALTER TABLE file_metadata
    ADD COLUMN text_status text NOT NULL DEFAULT 'pending'
        CHECK (text_status IN ('pending', 'ready', 'failed', 'none')),
    ADD COLUMN text_error text;
-- The sweep: WHERE text_status = 'pending' AND id > $1 ORDER BY id.
CREATE INDEX file_metadata_pending_idx ON file_metadata (id) WHERE text_status = 'pending';
-- Reuse of an extraction: WHERE project_id = $1 AND sha256 = $2.
CREATE INDEX file_metadata_sha256_idx ON file_metadata (project_id, sha256);

CREATE TABLE file_texts (
    file_id uuid PRIMARY KEY REFERENCES file_metadata (id) ON DELETE CASCADE,
    text    text NOT NULL
);
