ALTER TABLE auth_sessions
    DROP COLUMN last_used_at,
    DROP COLUMN refresh_hash,
    DROP COLUMN previous_refresh_hash,
    DROP COLUMN rotated_at,
    DROP COLUMN sealed,
    DROP COLUMN user_agent,
    DROP COLUMN address;
