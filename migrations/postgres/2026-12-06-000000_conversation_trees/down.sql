DROP INDEX messages_parent_id_idx;
ALTER TABLE conversations DROP COLUMN model;
ALTER TABLE conversations DROP COLUMN leaf_id;
ALTER TABLE messages DROP COLUMN parent_id;
