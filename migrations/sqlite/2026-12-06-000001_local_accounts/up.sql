-- Built-in accounts (CONFAB_AUTH=local): accounts, their sessions, and single-use links
-- (invites and password resets), of which only the SHA-256 of the secret is kept.
-- Usernames and e-mails are stored lowercased, so UNIQUE is case-insensitive.

CREATE TABLE accounts (
    id            TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at    TEXT    NOT NULL CHECK (length(created_at) = 27)
) STRICT;

CREATE TABLE auth_sessions (
    id         TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL CHECK (length(created_at) = 27),
    expires_at TEXT NOT NULL CHECK (length(expires_at) = 27),
    revoked_at TEXT CHECK (revoked_at IS NULL OR length(revoked_at) = 27)
) STRICT;
-- Sign-out everywhere and password changes revoke an account's sessions.
CREATE INDEX auth_sessions_account_idx ON auth_sessions (account_id);

CREATE TABLE auth_links (
    token_hash TEXT NOT NULL PRIMARY KEY CHECK (length(token_hash) = 64),
    kind       TEXT NOT NULL CHECK (kind IN ('invite', 'reset')),
    account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL CHECK (length(expires_at) = 27),
    used_at    TEXT CHECK (used_at IS NULL OR length(used_at) = 27)
) STRICT;
CREATE INDEX auth_links_account_idx ON auth_links (account_id);
