-- Attachments (issue 16): the files attached to a user message, in order. Each link keeps a
-- copy of the file's metadata and its id without a foreign key, so that a message still
-- names a file deleted since (it reads as deleted: no file_metadata row with that id).
CREATE TABLE message_files (
    message_id   uuid   NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position     integer NOT NULL CHECK (position >= 0),
    file_id      uuid   NOT NULL,
    filename     text   NOT NULL,
    content_type text   NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    PRIMARY KEY (message_id, position)
);
CREATE INDEX message_files_file_id_idx ON message_files (file_id);
