-- Built-in accounts' security history (ASVS 2.2.3, 2.5.5): password changes and resets,
-- sign-ins and "sign out everywhere", shown to the account's owner in the app. Never a
-- token or secret: what happened, when, and the client it came from. Kept short by the
-- store (the newest 50 per account, none older than 90 days) and deleted with the account.
CREATE TABLE security_events (
    id         uuid        NOT NULL PRIMARY KEY,
    account_id uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind       text        NOT NULL
        CHECK (kind IN ('password_changed', 'password_reset', 'signed_in', 'signed_out_everywhere')),
    at         timestamptz NOT NULL,
    session_id uuid,
    user_agent text,
    address    text,
    read_at    timestamptz
);
-- The account's history newest first (the list, and the trim after each insert).
CREATE INDEX security_events_account_at_idx ON security_events (account_id, at DESC, id DESC);
