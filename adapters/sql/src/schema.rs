//! The tables, written by hand to match `migrations/postgres` and `migrations/sqlite`. One
//! schema serves both backends: the columns whose storage differs use the custom SQL types
//! [`Id`](crate::types::Id) and [`Instant`](crate::types::Instant).

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    projects (id) {
        id -> Id,
        owner_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        created_at -> Instant,
        updated_at -> Instant,
        /// Whether its files' texts are given to the model as sources.
        knowledge -> Bool,
        /// The language its knowledge is searched in (a PostgreSQL text search
        /// configuration; SQLite only keeps it).
        language -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    prompts (id) {
        id -> Id,
        project_id -> Id,
        version -> Integer,
        content -> Text,
        is_active -> Bool,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    conversations (id) {
        id -> Id,
        project_id -> Id,
        owner_id -> Text,
        title -> Nullable<Text>,
        created_at -> Instant,
        updated_at -> Instant,
        /// The last message of the branch being shown.
        leaf_id -> Nullable<Id>,
        /// The model its replies are asked of; NULL for the default.
        model -> Nullable<Text>,
        /// Changes with every write that can change a page of its messages (triggers).
        revision -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    messages (id) {
        id -> Id,
        conversation_id -> Id,
        role -> Text,
        content -> Text,
        status -> Text,
        model -> Nullable<Text>,
        input_tokens -> Nullable<BigInt>,
        output_tokens -> Nullable<BigInt>,
        error -> Nullable<Text>,
        client_message_id -> Nullable<Id>,
        created_at -> Instant,
        /// When the writer of a `streaming` reply last renewed its lease.
        touched_at -> Instant,
        /// The message this one follows in its branch.
        parent_id -> Nullable<Id>,
        /// The sources a reply was given: a JSON array, NULL when none.
        sources -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    file_metadata (id) {
        id -> Id,
        project_id -> Id,
        owner_id -> Text,
        filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        sha256 -> Text,
        storage_key -> Text,
        created_at -> Instant,
        text_status -> Text,
        text_error -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::Id;

    /// The extracted text of each `ready` file.
    file_texts (file_id) {
        file_id -> Id,
        text -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::Id;

    /// The knowledge chunks of each `ready` file (the full-text index is kept by the
    /// database: FTS5 triggers on SQLite, a generated `search` column on PostgreSQL).
    file_chunks (id) {
        id -> BigInt,
        file_id -> Id,
        project_id -> Id,
        ordinal -> Integer,
        text -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::Id;

    /// The files attached to a user message, in order, with a copy of each file's metadata
    /// (`file_id` has no foreign key: a deleted file stays named).
    message_files (message_id, position) {
        message_id -> Id,
        position -> Integer,
        file_id -> Id,
        filename -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
    }
}

diesel::joinable!(prompts -> projects (project_id));
diesel::joinable!(conversations -> projects (project_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(file_metadata -> projects (project_id));
diesel::joinable!(file_texts -> file_metadata (file_id));

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    /// Read-only share links (issue 18): the token's SHA-256, and a JSON copy of what it shows.
    shares (id) {
        id -> Id,
        token_hash -> Text,
        owner_id -> Text,
        conversation_id -> Id,
        leaf_id -> Nullable<Id>,
        snapshot -> Text,
        created_at -> Instant,
        revoked_at -> Nullable<Instant>,
    }
}

diesel::joinable!(shares -> conversations (conversation_id));

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::Id;

    /// The import key of each imported conversation (issue 18), unique per project.
    conversation_imports (project_id, import_key) {
        project_id -> Id,
        import_key -> Text,
        conversation_id -> Id,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    conversation_imports,
    shares,
    projects,
    prompts,
    conversations,
    messages,
    file_metadata,
    file_texts,
    file_chunks,
    message_files,
);

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    accounts (id) {
        id -> Id,
        username -> Text,
        email -> Nullable<Text>,
        password_hash -> Text,
        is_admin -> Bool,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    auth_sessions (id) {
        id -> Id,
        account_id -> Id,
        created_at -> Instant,
        expires_at -> Instant,
        revoked_at -> Nullable<Instant>,
        last_used_at -> Nullable<Instant>,
        refresh_hash -> Text,
        previous_refresh_hash -> Nullable<Text>,
        rotated_at -> Nullable<Instant>,
        sealed -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        address -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    auth_links (token_hash) {
        token_hash -> Text,
        kind -> Text,
        account_id -> Nullable<Id>,
        expires_at -> Instant,
        used_at -> Nullable<Instant>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    /// One row per model call (issue 19); no foreign keys, it outlives what it was for.
    usage_entries (id) {
        id -> Id,
        user_id -> Text,
        project_id -> Nullable<Id>,
        conversation_id -> Nullable<Id>,
        message_id -> Nullable<Id>,
        model -> Text,
        purpose -> Text,
        /// The UTC day, `YYYY-MM-DD`.
        day -> Text,
        input_tokens -> BigInt,
        cached_input_tokens -> BigInt,
        output_tokens -> BigInt,
        reasoning_tokens -> BigInt,
        estimated -> Bool,
        cost_micros -> Nullable<BigInt>,
        created_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::Instant;

    user_quotas (user_id) {
        user_id -> Text,
        tokens_per_day -> Nullable<BigInt>,
        tokens_per_month -> Nullable<BigInt>,
        updated_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    /// A user's sums per UTC day, kept by triggers on `usage_entries` (migration
    /// `2026-12-08-000300_indexes_at_scale`); read by the quota check of every turn.
    usage_user_days (user_id, day) {
        user_id -> Text,
        /// The UTC day, `YYYY-MM-DD`.
        day -> Text,
        input_tokens -> BigInt,
        cached_input_tokens -> BigInt,
        output_tokens -> BigInt,
        reasoning_tokens -> BigInt,
        cost_micros -> BigInt,
        calls -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::Instant;

    /// The built-in accounts' guessing throttle (migration
    /// `2026-12-10-000100_shared_sign_in_state`): failures per key, shared by every replica.
    sign_in_failures (key) {
        key -> Text,
        count -> BigInt,
        last_at -> Instant,
        blocked_until -> Nullable<Instant>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    /// Signed-out browser (OIDC) sessions, until they would have expired.
    browser_session_revocations (session_id) {
        session_id -> Id,
        expires_at -> Instant,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::types::{Id, Instant};

    /// Built-in accounts' security history (migration `2026-12-12-000100_security_events`).
    security_events (id) {
        id -> Id,
        account_id -> Id,
        kind -> Text,
        at -> Instant,
        session_id -> Nullable<Id>,
        user_agent -> Nullable<Text>,
        address -> Nullable<Text>,
        read_at -> Nullable<Instant>,
    }
}
