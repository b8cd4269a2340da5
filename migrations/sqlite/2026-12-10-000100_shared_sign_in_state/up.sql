-- Sign-in state shared by every replica on one database (issue 21): the built-in accounts'
-- guessing throttle, and the browser (OIDC) sessions that were signed out.
CREATE TABLE sign_in_failures (
    key           TEXT NOT NULL PRIMARY KEY,
    count         INTEGER NOT NULL CHECK (count >= 0),
    last_at       TEXT NOT NULL CHECK (length(last_at) = 27),
    blocked_until TEXT CHECK (blocked_until IS NULL OR length(blocked_until) = 27)
) STRICT;
-- Keys untouched for an hour are forgotten.
CREATE INDEX sign_in_failures_last_idx ON sign_in_failures (last_at);

CREATE TABLE browser_session_revocations (
    session_id TEXT NOT NULL PRIMARY KEY CHECK (length(session_id) = 36),
    expires_at TEXT NOT NULL CHECK (length(expires_at) = 27)
) STRICT;
CREATE INDEX browser_session_revocations_expiry_idx ON browser_session_revocations (expires_at);
