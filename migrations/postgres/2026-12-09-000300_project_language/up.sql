-- A project's knowledge language (issue 16): the text search configuration its files'
-- chunks are stemmed in, besides `simple` (words as written). The application accepts only
-- PostgreSQL's built-in configurations (`confab_core::values::SEARCH_LANGUAGES`).
ALTER TABLE projects ADD COLUMN language text NOT NULL DEFAULT 'english';

-- Each chunk carries its project's language, so that the generated vector (an expression of
-- the row only) can use it. `to_tsvector(regconfig, text)` is immutable; the cast from
-- text is not, so the column is a `regconfig`, set by the triggers below.
ALTER TABLE file_chunks ADD COLUMN language regconfig NOT NULL DEFAULT 'english';
DROP INDEX file_chunks_search_idx;
ALTER TABLE file_chunks DROP COLUMN search;
ALTER TABLE file_chunks ADD COLUMN search tsvector GENERATED ALWAYS AS
    (to_tsvector('simple', text) || to_tsvector(language, text)) STORED;
CREATE INDEX file_chunks_search_idx ON file_chunks USING GIN (search);

-- A new chunk takes its project's language (read FOR SHARE: a concurrent change of the
-- language waits for this transaction, or this insert for that change, so no chunk keeps
-- the old one). Generated columns are computed after BEFORE triggers.
CREATE FUNCTION file_chunks_language() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.language := coalesce(
        (SELECT CAST(p.language AS regconfig) FROM projects p WHERE p.id = NEW.project_id FOR SHARE),
        'english');
    RETURN NEW;
END $$;
CREATE TRIGGER file_chunks_language_bi BEFORE INSERT ON file_chunks
    FOR EACH ROW EXECUTE FUNCTION file_chunks_language();

-- A changed language re-indexes the project's chunks in the same transaction (the update
-- of `language` regenerates `search`): the PATCH answers once they are searchable in it.
CREATE FUNCTION projects_language_reindex() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE file_chunks SET language = CAST(NEW.language AS regconfig) WHERE project_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER projects_language_au AFTER UPDATE OF language ON projects
    FOR EACH ROW WHEN (OLD.language IS DISTINCT FROM NEW.language)
    EXECUTE FUNCTION projects_language_reindex();
