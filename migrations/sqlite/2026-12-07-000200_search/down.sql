DROP TRIGGER conversations_fts_au;
DROP TRIGGER conversations_fts_ad;
DROP TRIGGER conversations_fts_ai;
DROP TABLE conversations_fts;
DROP TRIGGER messages_fts_au;
DROP TRIGGER messages_fts_ad;
DROP TRIGGER messages_fts_ai;
DROP TABLE messages_fts;
