-- Confab's schema on SQLite (STRICT tables). Ids are UUID v7 as lowercase hyphenated TEXT
-- (36 characters: text order is uuid order); timestamps are UTC TEXT in the fixed-width form
-- YYYY-MM-DDTHH:MM:SS.ffffffZ (27 characters: text order is time order, microseconds exact).
-- Booleans are 0/1. The connection turns foreign keys on and uses WAL.

CREATE TABLE projects (
    id          TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    owner_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TEXT NOT NULL CHECK (length(created_at) = 27),
    updated_at  TEXT NOT NULL CHECK (length(updated_at) = 27)
) STRICT;
-- An owner's projects, newest first.
CREATE INDEX projects_owner_id_idx ON projects (owner_id, id);

CREATE TABLE prompts (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    project_id TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL CHECK (version > 0),
    content    TEXT    NOT NULL,
    is_active  INTEGER NOT NULL DEFAULT 0 CHECK (is_active IN (0, 1)),
    created_at TEXT    NOT NULL CHECK (length(created_at) = 27),
    CONSTRAINT prompts_project_version_key UNIQUE (project_id, version)
) STRICT;
-- At most one active prompt per project.
CREATE UNIQUE INDEX prompts_one_active_per_project ON prompts (project_id) WHERE is_active = 1;

CREATE TABLE conversations (
    id         TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id   TEXT NOT NULL,
    title      TEXT,
    created_at TEXT NOT NULL CHECK (length(created_at) = 27),
    updated_at TEXT NOT NULL CHECK (length(updated_at) = 27)
) STRICT;
-- A project's conversations by recency.
CREATE INDEX conversations_project_recency_idx ON conversations (project_id, updated_at, id);

CREATE TABLE messages (
    id                TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    conversation_id   TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content           TEXT    NOT NULL,
    status            TEXT    NOT NULL
                      CHECK (status IN ('complete', 'streaming', 'failed', 'cancelled')),
    model             TEXT,
    input_tokens      INTEGER CHECK (input_tokens >= 0),
    output_tokens     INTEGER CHECK (output_tokens >= 0),
    error             TEXT,
    client_message_id TEXT    CHECK (length(client_message_id) = 36),
    created_at        TEXT    NOT NULL CHECK (length(created_at) = 27),
    -- The lease of a streaming reply: when its writer last renewed it.
    touched_at        TEXT    NOT NULL CHECK (length(touched_at) = 27),
    CONSTRAINT messages_usage_complete CHECK ((input_tokens IS NULL) = (output_tokens IS NULL)),
    CONSTRAINT messages_client_message_key UNIQUE (conversation_id, client_message_id)
) STRICT;
-- A conversation's messages in order.
CREATE INDEX messages_conversation_id_idx ON messages (conversation_id, id);
-- At most one reply is generated per conversation at a time, across processes.
CREATE UNIQUE INDEX messages_one_streaming_reply ON messages (conversation_id)
    WHERE status = 'streaming';
-- fail_stale_replies: the streaming replies whose lease ran out.
CREATE INDEX messages_streaming_touched_idx ON messages (touched_at)
    WHERE status = 'streaming';

CREATE TABLE file_metadata (
    id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    project_id   TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id     TEXT    NOT NULL,
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size_bytes   INTEGER NOT NULL CHECK (size_bytes >= 0),
    sha256       TEXT    NOT NULL,
    storage_key  TEXT    NOT NULL,
    created_at   TEXT    NOT NULL CHECK (length(created_at) = 27)
) STRICT;
-- A project's files, newest first.
CREATE INDEX file_metadata_project_id_idx ON file_metadata (project_id, id);
