-- Operator console sessions. Only the SHA-256 (hex) of the random session id is stored, so a
-- copy of the database cannot be used to log in. Expired rows are removed at each login.
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_user ON console_sessions (username);
