DROP TABLE user_quotas;
DROP TABLE usage_entries;
