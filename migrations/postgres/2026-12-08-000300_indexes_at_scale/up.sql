-- The ledger's sums (issue 19) per user, model and project and UTC day, kept by statement triggers
-- (transition tables: one grouped upsert per statement, so bulk inserts stay fast) in the same
-- transaction as the ledger rows, so that nothing on a hot path sums the ledger:
-- the quota check on every send reads at most 31 rows of `usage_user_days` (not every call
-- of the month), and the administrators' reports by user, model, day or project read
-- `days × users` (or models, projects) rows, not one per call — over 1,000,000 calls the
-- difference between ~90,000 (or ~1,800) rows and all of them. `project_key` is the
-- project's id as text, '' for calls without a project (the report's key).

CREATE TABLE usage_user_days (
    user_id             text   NOT NULL,
    day                 text   NOT NULL CHECK (length(day) = 10),
    input_tokens        bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    reasoning_tokens    bigint NOT NULL,
    cost_micros         bigint NOT NULL,
    calls               bigint NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE TABLE usage_model_days (
    model               text   NOT NULL,
    day                 text   NOT NULL CHECK (length(day) = 10),
    input_tokens        bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    reasoning_tokens    bigint NOT NULL,
    cost_micros         bigint NOT NULL,
    calls               bigint NOT NULL,
    PRIMARY KEY (model, day)
);
CREATE TABLE usage_project_days (
    project_key         text   NOT NULL,
    day                 text   NOT NULL CHECK (length(day) = 10),
    input_tokens        bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    reasoning_tokens    bigint NOT NULL,
    cost_micros         bigint NOT NULL,
    calls               bigint NOT NULL,
    PRIMARY KEY (project_key, day)
);

CREATE FUNCTION usage_sums_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_user_days AS t (user_id, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
        SELECT user_id, day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
        FROM new_rows GROUP BY 1, day
        ON CONFLICT (user_id, day) DO UPDATE SET
            input_tokens = t.input_tokens + excluded.input_tokens,
            cached_input_tokens = t.cached_input_tokens + excluded.cached_input_tokens,
            output_tokens = t.output_tokens + excluded.output_tokens,
            reasoning_tokens = t.reasoning_tokens + excluded.reasoning_tokens,
            cost_micros = t.cost_micros + excluded.cost_micros,
            calls = t.calls + excluded.calls;
    INSERT INTO usage_model_days AS t (model, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
        SELECT model, day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
        FROM new_rows GROUP BY 1, day
        ON CONFLICT (model, day) DO UPDATE SET
            input_tokens = t.input_tokens + excluded.input_tokens,
            cached_input_tokens = t.cached_input_tokens + excluded.cached_input_tokens,
            output_tokens = t.output_tokens + excluded.output_tokens,
            reasoning_tokens = t.reasoning_tokens + excluded.reasoning_tokens,
            cost_micros = t.cost_micros + excluded.cost_micros,
            calls = t.calls + excluded.calls;
    INSERT INTO usage_project_days AS t (project_key, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
        SELECT coalesce(CAST(project_id AS text), ''), day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
        FROM new_rows GROUP BY 1, day
        ON CONFLICT (project_key, day) DO UPDATE SET
            input_tokens = t.input_tokens + excluded.input_tokens,
            cached_input_tokens = t.cached_input_tokens + excluded.cached_input_tokens,
            output_tokens = t.output_tokens + excluded.output_tokens,
            reasoning_tokens = t.reasoning_tokens + excluded.reasoning_tokens,
            cost_micros = t.cost_micros + excluded.cost_micros,
            calls = t.calls + excluded.calls;
    RETURN NULL;
END $$;
CREATE TRIGGER usage_sums_ai AFTER INSERT ON usage_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_sums_add();

-- Ledger rows are not deleted by the application; if an operator does, the sums follow.
CREATE FUNCTION usage_sums_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage_user_days AS t SET
            input_tokens = t.input_tokens - o.input_tokens,
            cached_input_tokens = t.cached_input_tokens - o.cached_input_tokens,
            output_tokens = t.output_tokens - o.output_tokens,
            reasoning_tokens = t.reasoning_tokens - o.reasoning_tokens,
            cost_micros = t.cost_micros - o.cost_micros,
            calls = t.calls - o.calls
        FROM (SELECT user_id AS k, day, SUM(input_tokens) AS input_tokens,
                     SUM(cached_input_tokens) AS cached_input_tokens,
                     SUM(output_tokens) AS output_tokens, SUM(reasoning_tokens) AS reasoning_tokens,
                     SUM(coalesce(cost_micros, 0)) AS cost_micros, COUNT(*) AS calls
              FROM old_rows GROUP BY 1, day) o
        WHERE t.user_id = o.k AND t.day = o.day;
    UPDATE usage_model_days AS t SET
            input_tokens = t.input_tokens - o.input_tokens,
            cached_input_tokens = t.cached_input_tokens - o.cached_input_tokens,
            output_tokens = t.output_tokens - o.output_tokens,
            reasoning_tokens = t.reasoning_tokens - o.reasoning_tokens,
            cost_micros = t.cost_micros - o.cost_micros,
            calls = t.calls - o.calls
        FROM (SELECT model AS k, day, SUM(input_tokens) AS input_tokens,
                     SUM(cached_input_tokens) AS cached_input_tokens,
                     SUM(output_tokens) AS output_tokens, SUM(reasoning_tokens) AS reasoning_tokens,
                     SUM(coalesce(cost_micros, 0)) AS cost_micros, COUNT(*) AS calls
              FROM old_rows GROUP BY 1, day) o
        WHERE t.model = o.k AND t.day = o.day;
    UPDATE usage_project_days AS t SET
            input_tokens = t.input_tokens - o.input_tokens,
            cached_input_tokens = t.cached_input_tokens - o.cached_input_tokens,
            output_tokens = t.output_tokens - o.output_tokens,
            reasoning_tokens = t.reasoning_tokens - o.reasoning_tokens,
            cost_micros = t.cost_micros - o.cost_micros,
            calls = t.calls - o.calls
        FROM (SELECT coalesce(CAST(project_id AS text), '') AS k, day, SUM(input_tokens) AS input_tokens,
                     SUM(cached_input_tokens) AS cached_input_tokens,
                     SUM(output_tokens) AS output_tokens, SUM(reasoning_tokens) AS reasoning_tokens,
                     SUM(coalesce(cost_micros, 0)) AS cost_micros, COUNT(*) AS calls
              FROM old_rows GROUP BY 1, day) o
        WHERE t.project_key = o.k AND t.day = o.day;
    RETURN NULL;
END $$;
CREATE TRIGGER usage_sums_ad AFTER DELETE ON usage_entries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_sums_remove();

INSERT INTO usage_user_days (user_id, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
    SELECT user_id, day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
    FROM usage_entries GROUP BY 1, day;
INSERT INTO usage_model_days (model, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
    SELECT model, day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
    FROM usage_entries GROUP BY 1, day;
INSERT INTO usage_project_days (project_key, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
    SELECT coalesce(CAST(project_id AS text), ''), day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
    FROM usage_entries GROUP BY 1, day;

-- Search (issue 18): an owner's conversations, so that a search for a common word can start
-- from the searcher's messages (their conversations, then `messages_conversation_id_idx`)
-- instead of every user's matches in the GIN index; the planner picks whichever is smaller.
CREATE INDEX conversations_owner_id_idx ON conversations (owner_id);

-- Knowledge (issue 16): a project's chunks, so that retrieval for common words can read the
-- project's chunks instead of every project's matches in the GIN index.
CREATE INDEX file_chunks_project_id_idx ON file_chunks (project_id);
