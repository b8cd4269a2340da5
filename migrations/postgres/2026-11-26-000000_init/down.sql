DROP TABLE file_metadata;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE prompts;
DROP TABLE projects;
