-- Sign-in state shared by every replica on one database (issue 21): the built-in accounts'
-- guessing throttle, and the browser (OIDC) sessions that were signed out.
CREATE TABLE sign_in_failures (
    key           TEXT NOT NULL PRIMARY KEY,
    count         BIGINT NOT NULL CHECK (count >= 0),
    last_at       TIMESTAMPTZ NOT NULL,
    blocked_until TIMESTAMPTZ
);
-- Keys untouched for an hour are forgotten.
CREATE INDEX sign_in_failures_last_idx ON sign_in_failures (last_at);

CREATE TABLE browser_session_revocations (
    session_id UUID NOT NULL PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX browser_session_revocations_expiry_idx ON browser_session_revocations (expires_at);
