-- The webhook deliverer (lintas.consumers.webhooks): its delivery queue, where it stands in
-- each delivery topic, every attempt it made, and each subscriber's circuit breaker. Only the
-- deliverer writes these; the portal reads them through
-- lintas.consumers.webhooks.subscriber_health.

-- The next offset to copy per delivery topic partition. Written in the same transaction as
-- the queued events, so a restarted deliverer seeks here and copies nothing twice.
CREATE TABLE lintas.webhook_offsets (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL CHECK (partition >= 0),
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- One row per (subscriber, event): the queue while pending, the log once delivered or dead.
CREATE TABLE lintas.webhook_deliveries (
    id bigserial PRIMARY KEY,
    subscriber text NOT NULL,
    -- The CloudEvents id: the webhook-id header, the receiver's dedup key.
    event_id text NOT NULL,
    event_type text,
    -- Events with the same key (the Kafka key: a NIK) go one at a time, in id order.
    ordering_key text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    -- The record as read, so a dead letter carries it unchanged.
    record_key bytea,
    record_value bytea,
    header_names text[] NOT NULL DEFAULT '{}',
    header_values bytea[] NOT NULL DEFAULT '{}',
    -- The JSON body POSTed; NULL when the record could not be decoded (then state = dead).
    body bytea,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Not delivered by then: given up and dead-lettered (LINTAS_DELIVER__RETRY_HORIZON_S).
    deadline timestamptz NOT NULL,
    last_attempt_at timestamptz,
    delivered_at timestamptz,
    last_status integer,
    last_latency_ms real,
    last_error text,
    dead_reason text,
    dead_lettered_at timestamptz,
    UNIQUE (subscriber, event_id)
);
-- The dispatcher's question: the oldest pending event of each key of a subscriber.
CREATE INDEX webhook_deliveries_pending_idx
    ON lintas.webhook_deliveries (subscriber, ordering_key, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_deadline_idx
    ON lintas.webhook_deliveries (deadline) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_dead_idx
    ON lintas.webhook_deliveries (id) WHERE state = 'dead' AND dead_lettered_at IS NULL;
-- Health: counts per subscriber and state (dead ones in particular) without a full scan.
CREATE INDEX webhook_deliveries_state_idx ON lintas.webhook_deliveries (subscriber, state);

-- Every POST made: status code (NULL when none came back), latency, error.
CREATE TABLE lintas.webhook_attempts (
    id bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES lintas.webhook_deliveries (id) ON DELETE CASCADE,
    subscriber text NOT NULL,
    event_id text NOT NULL,
    attempt integer NOT NULL CHECK (attempt > 0),
    attempted_at timestamptz NOT NULL,
    status_code integer,
    latency_ms real NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'rejected', 'gave_up')),
    error text
);
CREATE INDEX webhook_attempts_subscriber_idx ON lintas.webhook_attempts (subscriber, attempted_at);
CREATE INDEX webhook_attempts_delivery_idx ON lintas.webhook_attempts (delivery_id);

-- Each subscriber's circuit as its dispatcher last saw it (for the dashboard).
CREATE TABLE lintas.webhook_circuits (
    subscriber text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures integer NOT NULL DEFAULT 0,
    opened_at timestamptz,
    retry_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE lintas.webhook_deliveries IS 'Webhook deliverer: queue and per-event delivery log.';
COMMENT ON TABLE lintas.webhook_attempts IS 'Webhook deliverer: every HTTP attempt.';
COMMENT ON TABLE lintas.webhook_offsets IS 'Webhook deliverer: copied position per delivery topic partition.';
COMMENT ON TABLE lintas.webhook_circuits IS 'Webhook deliverer: circuit breaker per subscriber.';
