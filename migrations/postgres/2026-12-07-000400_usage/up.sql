-- Usage and quotas (issue 19): one ledger row per model call, and the quotas an
-- administrator set for a user. Ledger rows have no foreign keys: they outlive the
-- conversations and projects they were for. `day` is the UTC day, `YYYY-MM-DD`.

CREATE TABLE usage_entries (
    id                  uuid        NOT NULL PRIMARY KEY,
    user_id             text        NOT NULL,
    project_id          uuid,
    conversation_id     uuid,
    message_id          uuid,
    model               text        NOT NULL,
    purpose             text        NOT NULL CHECK (purpose IN ('chat', 'title')),
    day                 text        NOT NULL CHECK (length(day) = 10),
    input_tokens        bigint      NOT NULL CHECK (input_tokens >= 0),
    cached_input_tokens bigint      NOT NULL CHECK (cached_input_tokens >= 0),
    output_tokens       bigint      NOT NULL CHECK (output_tokens >= 0),
    reasoning_tokens    bigint      NOT NULL CHECK (reasoning_tokens >= 0),
    estimated           boolean     NOT NULL,
    cost_micros         bigint,
    created_at          timestamptz NOT NULL
);
-- The quota check (a user's month so far) and the user's own usage page.
CREATE INDEX usage_entries_user_day_idx ON usage_entries (user_id, day);
-- The administrators' usage over a range of days.
CREATE INDEX usage_entries_day_idx ON usage_entries (day);

CREATE TABLE user_quotas (
    user_id          text        NOT NULL PRIMARY KEY,
    tokens_per_day   bigint      CHECK (tokens_per_day IS NULL OR tokens_per_day >= 0),
    tokens_per_month bigint      CHECK (tokens_per_month IS NULL OR tokens_per_month >= 0),
    updated_at       timestamptz NOT NULL
);
