-- The HTTP ingest gateway (lintas.producers.gateway): answers remembered per Idempotency-Key
-- (or CloudEvents id), so a client's retry within the TTL gets the first answer and
-- publishes nothing new. Keys are scoped per application: two apps may use the same key.

CREATE TABLE lintas.gateway_idempotency (
    app_id text NOT NULL,
    key text NOT NULL CHECK (key <> ''),
    -- sha256 of what the key stands for (method, path, partial flag, body): the same key
    -- with another request is refused rather than answered with an unrelated answer.
    fingerprint bytea NOT NULL,
    -- NULL while the first request is being handled (a concurrent retry gets 409); the
    -- status and the body of the 202 answer once it was given, byte for byte as sent.
    status_code integer,
    response bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, key)
);
-- The cleanup deletes by expiry.
CREATE INDEX gateway_idempotency_expires_idx ON lintas.gateway_idempotency (expires_at);

COMMENT ON TABLE lintas.gateway_idempotency IS
    'Gateway: first answers per application and Idempotency-Key, kept for 24 hours.';
