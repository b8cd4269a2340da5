-- Built-in accounts' sessions: a rotated refresh token (only its SHA-256 kept), the idle
-- timeout's clock, and what the sessions list shows. `previous_refresh_hash`, `rotated_at`
-- and `sealed` let the secret replaced by the last rotation be presented once more within a
-- short grace (two tabs refreshing at once), getting the same new secret back: `sealed` is
-- that secret XOR SHA-256 of the previous one, useless without the previous secret.
-- `last_used_at` is NULL only for rows older than this migration (read as `created_at`).
ALTER TABLE auth_sessions ADD COLUMN last_used_at TEXT
    CHECK (last_used_at IS NULL OR length(last_used_at) = 27);
ALTER TABLE auth_sessions ADD COLUMN refresh_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_sessions ADD COLUMN previous_refresh_hash TEXT;
ALTER TABLE auth_sessions ADD COLUMN rotated_at TEXT
    CHECK (rotated_at IS NULL OR length(rotated_at) = 27);
ALTER TABLE auth_sessions ADD COLUMN sealed TEXT;
ALTER TABLE auth_sessions ADD COLUMN user_agent TEXT;
ALTER TABLE auth_sessions ADD COLUMN address TEXT;
UPDATE auth_sessions SET last_used_at = created_at;
