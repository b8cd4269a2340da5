-- Read-only share links (issue 18). Only the SHA-256 of a link's token is stored (hex),
-- never the token. A share keeps a copy of what it shows (`snapshot`, JSON: the title and
-- the shown branch's messages — role, content, model, created_at — at creation), so
-- later messages are not added; `leaf_id` is the leaf of that branch.
CREATE TABLE shares (
    id              TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    token_hash      TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    owner_id        TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    leaf_id         TEXT CHECK (leaf_id IS NULL OR length(leaf_id) = 36),
    snapshot        TEXT NOT NULL,
    created_at      TEXT NOT NULL CHECK (length(created_at) = 27),
    revoked_at      TEXT CHECK (revoked_at IS NULL OR length(revoked_at) = 27)
) STRICT;
-- A conversation's shares, for its owner.
CREATE INDEX shares_conversation_idx ON shares (conversation_id, created_at);
