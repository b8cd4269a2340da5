-- The ledger's sums (issue 19) per user, model and project and UTC day, kept by triggers in
-- the same transaction as each ledger row, so that nothing on a hot path sums the ledger:
-- the quota check on every send reads at most 31 rows of `usage_user_days` (not every call
-- of the month), and the administrators' reports by user, model, day or project read
-- `days × users` (or models, projects) rows, not one per call — over 1,000,000 calls the
-- difference between ~90,000 (or ~1,800) rows and all of them. `project_key` is the
-- project's id as text, '' for calls without a project (the report's key).

CREATE TABLE usage_user_days (
    user_id             TEXT    NOT NULL,
    day                 TEXT    NOT NULL CHECK (length(day) = 10),
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    reasoning_tokens    INTEGER NOT NULL,
    cost_micros         INTEGER NOT NULL,
    calls               INTEGER NOT NULL,
    PRIMARY KEY (user_id, day)
) STRICT, WITHOUT ROWID;
CREATE TABLE usage_model_days (
    model               TEXT    NOT NULL,
    day                 TEXT    NOT NULL CHECK (length(day) = 10),
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    reasoning_tokens    INTEGER NOT NULL,
    cost_micros         INTEGER NOT NULL,
    calls               INTEGER NOT NULL,
    PRIMARY KEY (model, day)
) STRICT, WITHOUT ROWID;
CREATE TABLE usage_project_days (
    project_key         TEXT    NOT NULL,
    day                 TEXT    NOT NULL CHECK (length(day) = 10),
    input_tokens        INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    reasoning_tokens    INTEGER NOT NULL,
    cost_micros         INTEGER NOT NULL,
    calls               INTEGER NOT NULL,
    PRIMARY KEY (project_key, day)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER usage_sums_ai AFTER INSERT ON usage_entries BEGIN
    INSERT INTO usage_user_days (user_id, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
        VALUES (new.user_id, new.day, new.input_tokens, new.cached_input_tokens, new.output_tokens,
                new.reasoning_tokens, coalesce(new.cost_micros, 0), 1)
        ON CONFLICT (user_id, day) DO UPDATE SET
            input_tokens = input_tokens + excluded.input_tokens,
            cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            cost_micros = cost_micros + excluded.cost_micros,
            calls = calls + 1;
    INSERT INTO usage_model_days (model, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
        VALUES (new.model, new.day, new.input_tokens, new.cached_input_tokens, new.output_tokens,
                new.reasoning_tokens, coalesce(new.cost_micros, 0), 1)
        ON CONFLICT (model, day) DO UPDATE SET
            input_tokens = input_tokens + excluded.input_tokens,
            cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            cost_micros = cost_micros + excluded.cost_micros,
            calls = calls + 1;
    INSERT INTO usage_project_days (project_key, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
        VALUES (coalesce(new.project_id, ''), new.day, new.input_tokens, new.cached_input_tokens, new.output_tokens,
                new.reasoning_tokens, coalesce(new.cost_micros, 0), 1)
        ON CONFLICT (project_key, day) DO UPDATE SET
            input_tokens = input_tokens + excluded.input_tokens,
            cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            cost_micros = cost_micros + excluded.cost_micros,
            calls = calls + 1;
END;
-- Ledger rows are not deleted by the application; if an operator does, the sums follow.
CREATE TRIGGER usage_sums_ad AFTER DELETE ON usage_entries BEGIN
    UPDATE usage_user_days SET
            input_tokens = input_tokens - old.input_tokens,
            cached_input_tokens = cached_input_tokens - old.cached_input_tokens,
            output_tokens = output_tokens - old.output_tokens,
            reasoning_tokens = reasoning_tokens - old.reasoning_tokens,
            cost_micros = cost_micros - coalesce(old.cost_micros, 0),
            calls = calls - 1
        WHERE user_id = old.user_id AND day = old.day;
    UPDATE usage_model_days SET
            input_tokens = input_tokens - old.input_tokens,
            cached_input_tokens = cached_input_tokens - old.cached_input_tokens,
            output_tokens = output_tokens - old.output_tokens,
            reasoning_tokens = reasoning_tokens - old.reasoning_tokens,
            cost_micros = cost_micros - coalesce(old.cost_micros, 0),
            calls = calls - 1
        WHERE model = old.model AND day = old.day;
    UPDATE usage_project_days SET
            input_tokens = input_tokens - old.input_tokens,
            cached_input_tokens = cached_input_tokens - old.cached_input_tokens,
            output_tokens = output_tokens - old.output_tokens,
            reasoning_tokens = reasoning_tokens - old.reasoning_tokens,
            cost_micros = cost_micros - coalesce(old.cost_micros, 0),
            calls = calls - 1
        WHERE project_key = coalesce(old.project_id, '') AND day = old.day;
END;

INSERT INTO usage_user_days (user_id, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
    SELECT user_id, day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
    FROM usage_entries GROUP BY user_id, day;
INSERT INTO usage_model_days (model, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
    SELECT model, day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
    FROM usage_entries GROUP BY model, day;
INSERT INTO usage_project_days (project_key, day, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_micros, calls)
    SELECT coalesce(project_id, ''), day, SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
           SUM(reasoning_tokens), SUM(coalesce(cost_micros, 0)), COUNT(*)
    FROM usage_entries GROUP BY coalesce(project_id, ''), day;

-- Search (issue 18): the messages' index gets the owner. Before, a search matched the words
-- in every user's messages and then kept the searcher's (a common word: most of a million
-- rows read to keep a few thousand). Now each indexed message carries its owner as one token
-- (`owner`: the hex of the owner id, a single word of letters and digits) and a search
-- matches `owner : "<hex>" AND content : (…)`, which FTS5 answers by stepping through the
-- owner's entries only. The table is contentless with `contentless_delete` (SQLite 3.43),
-- so an entry is removed by its rowid alone and the owner never has to be looked up again
-- on a delete (a conversation's cascade deletes its messages after it is gone). The text is
-- read from `messages`, as before. After a `VACUUM` (which may renumber the rowids) fill it
-- again: `DELETE FROM messages_fts;` then the `INSERT … SELECT` at the end of this file.
DROP TRIGGER messages_fts_au;
DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_ai;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    owner,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages WHEN new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, content, owner)
        SELECT new.rowid, new.content, hex(c.owner_id) FROM conversations c
        WHERE c.id = new.conversation_id;
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages WHEN old.status <> 'streaming' BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid;
END;
-- One trigger for both halves, so the old entry always goes before the new one is added; a
-- reply being generated (streaming to streaming: its text renewed as it grows) fires none.
CREATE TRIGGER messages_fts_au AFTER UPDATE OF content, status ON messages
    WHEN old.status <> 'streaming' OR new.status <> 'streaming' BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid AND old.status <> 'streaming';
    INSERT INTO messages_fts (rowid, content, owner)
        SELECT new.rowid, new.content, hex(c.owner_id) FROM conversations c
        WHERE c.id = new.conversation_id AND new.status <> 'streaming';
END;
INSERT INTO messages_fts (rowid, content, owner)
    SELECT m.rowid, m.content, hex(c.owner_id)
    FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE m.status <> 'streaming';

-- Knowledge (issue 16): the chunks' index gets the project (`project_id`, a column of the
-- content table), so that retrieval in one project matches that project's chunks only —
-- `project_id : "<id>" AND text : (…)` — and ranks them in the index (bm25 of `text`
-- alone) before any chunk is read; before, a common word matched every project's chunks,
-- each read to be dropped for another project.
DROP TRIGGER file_chunks_ad;
DROP TRIGGER file_chunks_ai;
DROP TABLE file_chunks_fts;
CREATE VIRTUAL TABLE file_chunks_fts USING fts5(
    text,
    project_id,
    content = 'file_chunks',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER file_chunks_ai AFTER INSERT ON file_chunks BEGIN
    INSERT INTO file_chunks_fts (rowid, text, project_id)
        VALUES (new.id, new.text, new.project_id);
END;
CREATE TRIGGER file_chunks_ad AFTER DELETE ON file_chunks BEGIN
    INSERT INTO file_chunks_fts (file_chunks_fts, rowid, text, project_id)
        VALUES ('delete', old.id, old.text, old.project_id);
END;
INSERT INTO file_chunks_fts (file_chunks_fts) VALUES ('rebuild');
