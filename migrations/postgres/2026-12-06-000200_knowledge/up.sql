-- Project knowledge (issue 16): the chunks of each ready file, indexed for full-text search
-- (a generated tsvector of the `simple` and `english` configurations, a GIN index,
-- ts_rank_cd ranks). Chunks go with their file.
CREATE TABLE file_chunks (
    id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_id    uuid    NOT NULL REFERENCES file_metadata (id) ON DELETE CASCADE,
    project_id uuid    NOT NULL,
    ordinal    integer NOT NULL CHECK (ordinal >= 0),
    text       text    NOT NULL,
    search     tsvector GENERATED ALWAYS AS
        (to_tsvector('simple', text) || to_tsvector('english', text)) STORED
);
CREATE INDEX file_chunks_file_id_idx ON file_chunks (file_id);
CREATE INDEX file_chunks_search_idx ON file_chunks USING GIN (search);
