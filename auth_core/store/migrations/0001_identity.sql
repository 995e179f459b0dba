-- Users, sessions, refresh tokens, revocations, one-time tokens and the audit log.
-- {{serial}} is an auto-increment primary key in either dialect (see migrate.py).

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    password_hash TEXT,
    roles TEXT NOT NULL,
    tenant_id TEXT,
    external_id TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    refreshed_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION,
    revoked_reason TEXT,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- What every validator must refuse: a session, one access token (jti), or every token of a
-- user issued before `at`. Rows can go once `expires_at` passes: nothing they name is alive.
CREATE TABLE revocations (
    id {{serial}},
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION
);

CREATE TABLE audit_log (
    id {{serial}},
    at DOUBLE PRECISION NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    user_id TEXT,
    actor_id TEXT,
    request_id TEXT,
    ip TEXT,
    detail TEXT
);
CREATE INDEX audit_log_by_user ON audit_log (user_id);
