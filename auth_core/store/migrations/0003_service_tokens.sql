-- Service tokens (`gws_...`): the credentials of internal services, one a calling service.
-- Only the SHA-256 of a token is stored. A name is unique among live tokens, so a revoked
-- token's name can be given to its successor.

CREATE TABLE service_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_used_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX service_tokens_live_name ON service_tokens (name) WHERE revoked_at IS NULL;
