DROP TABLE auth_links;
DROP TABLE auth_sessions;
DROP TABLE accounts;
