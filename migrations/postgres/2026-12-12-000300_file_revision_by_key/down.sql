CREATE OR REPLACE FUNCTION file_metadata_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    file uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    UPDATE conversations SET revision = revision + 1
        WHERE id IN (SELECT m.conversation_id FROM message_files AS mf
                     JOIN messages AS m ON m.id = mf.message_id WHERE mf.file_id = file);
    RETURN NULL;
END $$;
