-- Usage and quotas (issue 19): one ledger row per model call, and the quotas an
-- administrator set for a user. Ledger rows have no foreign keys: they outlive the
-- conversations and projects they were for. `day` is the UTC day, `YYYY-MM-DD`.

CREATE TABLE usage_entries (
    id                  TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    user_id             TEXT    NOT NULL,
    project_id          TEXT    CHECK (project_id IS NULL OR length(project_id) = 36),
    conversation_id     TEXT    CHECK (conversation_id IS NULL OR length(conversation_id) = 36),
    message_id          TEXT    CHECK (message_id IS NULL OR length(message_id) = 36),
    model               TEXT    NOT NULL,
    purpose             TEXT    NOT NULL CHECK (purpose IN ('chat', 'title')),
    day                 TEXT    NOT NULL CHECK (length(day) = 10),
    input_tokens        INTEGER NOT NULL CHECK (input_tokens >= 0),
    cached_input_tokens INTEGER NOT NULL CHECK (cached_input_tokens >= 0),
    output_tokens       INTEGER NOT NULL CHECK (output_tokens >= 0),
    reasoning_tokens    INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
    estimated           INTEGER NOT NULL CHECK (estimated IN (0, 1)),
    cost_micros         INTEGER,
    created_at          TEXT    NOT NULL CHECK (length(created_at) = 27)
) STRICT;
-- The quota check (a user's month so far) and the user's own usage page.
CREATE INDEX usage_entries_user_day_idx ON usage_entries (user_id, day);
-- The administrators' usage over a range of days.
CREATE INDEX usage_entries_day_idx ON usage_entries (day);

CREATE TABLE user_quotas (
    user_id          TEXT    NOT NULL PRIMARY KEY,
    tokens_per_day   INTEGER CHECK (tokens_per_day IS NULL OR tokens_per_day >= 0),
    tokens_per_month INTEGER CHECK (tokens_per_month IS NULL OR tokens_per_month >= 0),
    updated_at       TEXT    NOT NULL CHECK (length(updated_at) = 27)
) STRICT;
