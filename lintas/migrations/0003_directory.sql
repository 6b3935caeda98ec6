-- The directory (lintas.directory): OPDs, applications and their API keys, subscribers and
-- their webhook secrets, subscriptions, activity, and the outbox of changes that
-- lintas.directory (the compacted topic) is fed from. Only lintas.directory touches these.

CREATE TABLE lintas.dir_opds (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,30}$'),
    name text NOT NULL CHECK (name <> ''),
    pemda_name text NOT NULL CHECK (pemda_name <> ''),
    pemda_code text NOT NULL CHECK (pemda_code ~ '^[0-9]{2}(\.[0-9]{2})?$'),
    contact text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX dir_opds_name_idx ON lintas.dir_opds (lower(name));

CREATE TABLE lintas.dir_applications (
    id text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,62}$'),
    name text NOT NULL CHECK (name <> ''),
    opd text NOT NULL REFERENCES lintas.dir_opds (code),
    pse_number text,
    platform text,
    method text NOT NULL CHECK (method IN ('sdk', 'gateway', 'capture')),
    owner_contact text,
    -- The stage an operator sets; "integrated" is computed from activity, never stored.
    status text NOT NULL CHECK (status IN ('planned', 'testing', 'retired')),
    produces text[] NOT NULL DEFAULT '{}',
    kafka_principal text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX dir_applications_name_idx ON lintas.dir_applications (opd, lower(name));

CREATE TABLE lintas.dir_api_keys (
    -- The public part of the key (lk_<id>_<secret>), for lookup and for humans.
    id text PRIMARY KEY,
    app_id text NOT NULL REFERENCES lintas.dir_applications (id),
    -- sha256 of the secret part: keys are 256-bit random, so a slow hash adds nothing.
    secret_sha256 bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX dir_api_keys_app_idx ON lintas.dir_api_keys (app_id);

CREATE TABLE lintas.dir_subscribers (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{1,62}$'),
    opd text NOT NULL REFERENCES lintas.dir_opds (code),
    app_id text REFERENCES lintas.dir_applications (id),
    mode text NOT NULL CHECK (mode IN ('kafka', 'webhook')),
    webhook_url text,
    contact text,
    status text NOT NULL CHECK (status IN ('active', 'paused', 'disabled')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((mode = 'webhook') = (webhook_url IS NOT NULL))
);

CREATE TABLE lintas.dir_webhook_secrets (
    id text PRIMARY KEY,
    subscriber text NOT NULL REFERENCES lintas.dir_subscribers (name),
    -- Encrypted (Fernet): the deliverer must sign with the secret, so it cannot be hashed.
    secret_enc bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
CREATE INDEX dir_webhook_secrets_subscriber_idx ON lintas.dir_webhook_secrets (subscriber);

CREATE TABLE lintas.dir_subscriptions (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{1,62}$'),
    subscriber text NOT NULL REFERENCES lintas.dir_subscribers (name),
    event_types text[] NOT NULL CHECK (cardinality(event_types) > 0),
    filter jsonb NOT NULL DEFAULT '{}',
    fields text[] NOT NULL CHECK (cardinality(fields) > 0),
    purpose text NOT NULL CHECK (purpose <> ''),
    status text NOT NULL CHECK (status IN ('active', 'paused')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dir_subscriptions_subscriber_idx ON lintas.dir_subscriptions (subscriber);

-- Per application and day, written by the services that see events (gateway, stream
-- workers, deliverer); the integrated indicator is computed from it.
CREATE TABLE lintas.dir_activity (
    app_id text NOT NULL REFERENCES lintas.dir_applications (id),
    day date NOT NULL,
    produced bigint NOT NULL DEFAULT 0 CHECK (produced >= 0),
    received bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
    last_produced_at timestamptz,
    last_received_at timestamptz,
    PRIMARY KEY (app_id, day)
);

-- Transactional outbox: each change writes its entity snapshot here in the same
-- transaction, and a publisher copies rows to lintas.directory in seq order. A change is
-- therefore never published without being committed, nor committed without being published.
CREATE TABLE lintas.dir_changes (
    seq bigserial PRIMARY KEY,
    entity_key text NOT NULL,
    -- NULL is a tombstone: the entity was removed.
    snapshot jsonb,
    changed_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX dir_changes_unpublished_idx ON lintas.dir_changes (seq) WHERE published_at IS NULL;
