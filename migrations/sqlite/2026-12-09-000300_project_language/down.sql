ALTER TABLE projects DROP COLUMN language;
