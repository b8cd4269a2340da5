DROP TRIGGER messages_revision_ai ON messages;
DROP FUNCTION messages_revision_inserted();
DROP TRIGGER messages_revision_aud ON messages;
CREATE TRIGGER messages_revision_aiud AFTER INSERT OR UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_revision();
