-- Built-in accounts' security history (ASVS 2.2.3, 2.5.5): password changes and resets,
-- sign-ins and "sign out everywhere", shown to the account's owner in the app. Never a
-- token or secret: what happened, when, and the client it came from. Kept short by the
-- store (the newest 50 per account, none older than 90 days) and deleted with the account.
CREATE TABLE security_events (
    id         TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL
        CHECK (kind IN ('password_changed', 'password_reset', 'signed_in', 'signed_out_everywhere')),
    at         TEXT NOT NULL CHECK (length(at) = 27),
    session_id TEXT CHECK (session_id IS NULL OR length(session_id) = 36),
    user_agent TEXT,
    address    TEXT,
    read_at    TEXT CHECK (read_at IS NULL OR length(read_at) = 27)
) STRICT;
-- The account's history newest first (the list, and the trim after each insert).
CREATE INDEX security_events_account_at_idx ON security_events (account_id, at DESC, id DESC);
