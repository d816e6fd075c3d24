-- Access control (docs/60_ACCESS.md): API keys stored hashed, and revoked JWT ids. New tables only: applying this
-- takes no lock on `events`, so it is safe on a live journal.

CREATE TABLE access_keys (
    id           text PRIMARY KEY CONSTRAINT access_keys_id_format CHECK (id ~ '^[0-9a-f]{8}$'),
    name         text NOT NULL CONSTRAINT access_keys_name_format CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
    secret_hash  bytea NOT NULL CONSTRAINT access_keys_hash_length CHECK (octet_length(secret_hash) = 32),
    grant_json   jsonb NOT NULL CONSTRAINT access_keys_grant_object CHECK (jsonb_typeof(grant_json) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- A name names one usable key; a revoked key keeps its row (and its name may be used again).
CREATE UNIQUE INDEX access_keys_live_name_idx ON access_keys (name) WHERE revoked_at IS NULL;

CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY CONSTRAINT revoked_tokens_jti_length CHECK (length(jti) BETWEEN 1 AND 256),
    revoked_at timestamptz NOT NULL DEFAULT now()
);
