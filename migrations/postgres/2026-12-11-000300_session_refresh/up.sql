-- Built-in accounts' sessions: a rotated refresh token (only its SHA-256 kept), the idle
-- timeout's clock, and what the sessions list shows. `previous_refresh_hash`, `rotated_at`
-- and `sealed` let the secret replaced by the last rotation be presented once more within a
-- short grace (two tabs refreshing at once), getting the same new secret back: `sealed` is
-- that secret XOR SHA-256 of the previous one, useless without the previous secret.
ALTER TABLE auth_sessions
    ADD COLUMN last_used_at          timestamptz,
    ADD COLUMN refresh_hash          text NOT NULL DEFAULT '',
    ADD COLUMN previous_refresh_hash text,
    ADD COLUMN rotated_at            timestamptz,
    ADD COLUMN sealed                text,
    ADD COLUMN user_agent            text,
    ADD COLUMN address               text;
UPDATE auth_sessions SET last_used_at = created_at;
ALTER TABLE auth_sessions ALTER COLUMN last_used_at SET NOT NULL;
