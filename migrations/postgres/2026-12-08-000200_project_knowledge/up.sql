-- Project knowledge (issue 16): a project's setting, and the sources a reply was given
-- (a JSON array of {n, file_id, filename, excerpt}; NULL when none).
ALTER TABLE projects ADD COLUMN knowledge BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE messages ADD COLUMN sources TEXT;
