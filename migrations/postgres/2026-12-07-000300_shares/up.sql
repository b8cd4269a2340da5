-- Read-only share links (issue 18). Only the SHA-256 of a link's token is stored (hex),
-- never the token. A share keeps a copy of what it shows (`snapshot`, JSON: the title and
-- the shown branch's messages — role, content, model, created_at — at creation), so
-- later messages are not added; `leaf_id` is the leaf of that branch.
CREATE TABLE shares (
    id              uuid        NOT NULL PRIMARY KEY,
    token_hash      text        NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    owner_id        text        NOT NULL,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    leaf_id         uuid,
    snapshot        text        NOT NULL,
    created_at      timestamptz NOT NULL,
    revoked_at      timestamptz
);
-- A conversation's shares, for its owner.
CREATE INDEX shares_conversation_idx ON shares (conversation_id, created_at);
