DROP TABLE browser_session_revocations;
DROP TABLE sign_in_failures;
