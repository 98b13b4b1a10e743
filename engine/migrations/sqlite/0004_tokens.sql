-- API tokens and console users. A token is stored only as the SHA-256 (hex) of its text;
-- offices are a JSON array of office codes (used by the `operator` role).
CREATE TABLE api_tokens (
    name       TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    offices    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Console users: argon2id password hashes (PHC strings).
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    offices       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);
