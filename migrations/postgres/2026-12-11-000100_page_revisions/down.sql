DROP TRIGGER conversations_revision_leaf_bu ON conversations;
DROP FUNCTION conversations_revision_leaf();
DROP TRIGGER file_metadata_revision_aid ON file_metadata;
DROP FUNCTION file_metadata_revision();
DROP TRIGGER message_files_revision_aiud ON message_files;
DROP FUNCTION message_files_revision();
DROP TRIGGER messages_revision_aiud ON messages;
DROP FUNCTION messages_revision();
ALTER TABLE conversations DROP COLUMN revision;
