-- PostgreSQL's `confab_fold` only; kept so that both dialects list the same versions.
SELECT 1;
