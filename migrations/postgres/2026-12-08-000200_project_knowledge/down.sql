ALTER TABLE messages DROP COLUMN sources;
ALTER TABLE projects DROP COLUMN knowledge;
