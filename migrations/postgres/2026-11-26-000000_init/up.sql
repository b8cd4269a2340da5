-- Confab's schema on PostgreSQL. Ids are UUID v7 (time-ordered); timestamps are UTC with
-- microsecond precision. Every list query of the API has an index that returns its rows in
-- order, so a page costs a short index range scan however deep it is.

CREATE TABLE projects (
    id          uuid        PRIMARY KEY,
    owner_id    text        NOT NULL,
    name        text        NOT NULL,
    description text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- An owner's projects, newest first: WHERE owner_id = $1 AND id < $2 ORDER BY id DESC.
CREATE INDEX projects_owner_id_idx ON projects (owner_id, id);

CREATE TABLE prompts (
    id         uuid        PRIMARY KEY,
    project_id uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version    integer     NOT NULL CHECK (version > 0),
    content    text        NOT NULL,
    is_active  boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    -- Also serves a project's prompts by version, and the cascade from projects.
    CONSTRAINT prompts_project_version_key UNIQUE (project_id, version)
);
-- At most one active prompt per project.
CREATE UNIQUE INDEX prompts_one_active_per_project ON prompts (project_id) WHERE is_active;

CREATE TABLE conversations (
    id         uuid        PRIMARY KEY,
    project_id uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id   text        NOT NULL,
    title      text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- A project's conversations by recency: ORDER BY updated_at DESC, id DESC.
CREATE INDEX conversations_project_recency_idx ON conversations (project_id, updated_at, id);
-- get_conversation and friends filter by owner too; the primary key finds the row.

CREATE TABLE messages (
    id                uuid        PRIMARY KEY,
    conversation_id   uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role              text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content           text        NOT NULL,
    status            text        NOT NULL
                      CHECK (status IN ('complete', 'streaming', 'failed', 'cancelled')),
    model             text,
    input_tokens      bigint      CHECK (input_tokens >= 0),
    output_tokens     bigint      CHECK (output_tokens >= 0),
    error             text,
    client_message_id uuid,
    created_at        timestamptz NOT NULL,
    -- The lease of a streaming reply: when its writer last renewed it.
    touched_at        timestamptz NOT NULL,
    CONSTRAINT messages_usage_complete CHECK ((input_tokens IS NULL) = (output_tokens IS NULL)),
    CONSTRAINT messages_client_message_key UNIQUE (conversation_id, client_message_id)
);
-- A conversation's messages in order: WHERE conversation_id = $1 AND id > $2 ORDER BY id.
CREATE INDEX messages_conversation_id_idx ON messages (conversation_id, id);
-- At most one reply is generated per conversation at a time, across processes.
CREATE UNIQUE INDEX messages_one_streaming_reply ON messages (conversation_id)
    WHERE status = 'streaming';
-- fail_stale_replies: the streaming replies whose lease ran out.
CREATE INDEX messages_streaming_touched_idx ON messages (touched_at)
    WHERE status = 'streaming';

CREATE TABLE file_metadata (
    id           uuid        PRIMARY KEY,
    project_id   uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    owner_id     text        NOT NULL,
    filename     text        NOT NULL,
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes >= 0),
    sha256       text        NOT NULL,
    storage_key  text        NOT NULL,
    created_at   timestamptz NOT NULL
);
-- A project's files, newest first: WHERE project_id = $1 AND id < $2 ORDER BY id DESC.
CREATE INDEX file_metadata_project_id_idx ON file_metadata (project_id, id);
