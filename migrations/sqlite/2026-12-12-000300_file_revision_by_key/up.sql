-- PostgreSQL's file trigger now updates conversations by key (the same version,
-- migrations/postgres); SQLite plans each trigger statement when it runs: nothing changes here.
SELECT 1;
