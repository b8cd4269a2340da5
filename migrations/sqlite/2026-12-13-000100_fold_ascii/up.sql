-- PostgreSQL's `confab_fold` became a PL/pgSQL function with an ASCII fast path; SQLite's
-- search folds in FTS5's tokenizer and needs no change. Kept so that both dialects list the
-- same versions.
SELECT 1;
