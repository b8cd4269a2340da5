-- Built-in accounts (CONFAB_AUTH=local): accounts, their sessions, and single-use links
-- (invites and password resets), of which only the SHA-256 of the secret is kept.
-- Usernames and e-mails are stored lowercased, so UNIQUE is case-insensitive.

CREATE TABLE accounts (
    id            uuid        NOT NULL PRIMARY KEY,
    username      text        NOT NULL UNIQUE,
    email         text        UNIQUE,
    password_hash text        NOT NULL,
    is_admin      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL
);

CREATE TABLE auth_sessions (
    id         uuid        NOT NULL PRIMARY KEY,
    account_id uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
-- Sign-out everywhere and password changes revoke an account's sessions.
CREATE INDEX auth_sessions_account_idx ON auth_sessions (account_id);

CREATE TABLE auth_links (
    token_hash text        NOT NULL PRIMARY KEY CHECK (length(token_hash) = 64),
    kind       text        NOT NULL CHECK (kind IN ('invite', 'reset')),
    account_id uuid        REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX auth_links_account_idx ON auth_links (account_id);
