ALTER TABLE auth_sessions DROP COLUMN address;
ALTER TABLE auth_sessions DROP COLUMN user_agent;
ALTER TABLE auth_sessions DROP COLUMN sealed;
ALTER TABLE auth_sessions DROP COLUMN rotated_at;
ALTER TABLE auth_sessions DROP COLUMN previous_refresh_hash;
ALTER TABLE auth_sessions DROP COLUMN refresh_hash;
ALTER TABLE auth_sessions DROP COLUMN last_used_at;
