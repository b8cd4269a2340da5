DROP INDEX file_chunks_project_id_idx;
DROP INDEX conversations_owner_id_idx;
DROP TRIGGER usage_sums_ad ON usage_entries;
DROP TRIGGER usage_sums_ai ON usage_entries;
DROP FUNCTION usage_sums_remove();
DROP FUNCTION usage_sums_add();
DROP TABLE usage_project_days;
DROP TABLE usage_model_days;
DROP TABLE usage_user_days;
