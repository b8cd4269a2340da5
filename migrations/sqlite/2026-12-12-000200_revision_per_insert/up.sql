-- PostgreSQL's page revision is now counted once per statement that inserts messages
-- (the same version, migrations/postgres). SQLite has row triggers only, and its turn holds
-- the database's write lock anyway: nothing changes here.
SELECT 1;
