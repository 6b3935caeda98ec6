-- The merged store (lintas.consumers.sinks, lintas.consumers.store): the raw table of every
-- canonical event, the sink's Kafka offsets, and the analyst roles. The typed tables (one
-- per event type, derived from its Avro schema) and the analytics views are created by the
-- sink when it starts, because they follow the schemas in the registry.

CREATE SCHEMA IF NOT EXISTS store;
COMMENT ON SCHEMA store IS 'Merged store: raw_events and one typed table per event type. Written by the store sink only; analysts read the analytics schema.';

CREATE TABLE store.raw_events (
    event_id text PRIMARY KEY,
    event_type text NOT NULL,
    opd text NOT NULL,
    application text,
    subject text,
    event_time timestamptz,
    ingest_time timestamptz,
    kode_wilayah text,
    kode_provinsi text,
    nama_provinsi text,
    kode_kabupaten_kota text,
    nama_kabupaten_kota text,
    kode_kecamatan text,
    nama_kecamatan text,
    kode_desa_kelurahan text,
    nama_desa_kelurahan text,
    -- Every NIK the event names (fields tagged "pii": "nik"): the citizen timeline's key.
    niks text[] NOT NULL DEFAULT '{}',
    payload jsonb NOT NULL,
    schema_id integer,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX raw_events_type_time_idx ON store.raw_events (event_type, event_time);
CREATE INDEX raw_events_niks_idx ON store.raw_events USING gin (niks);
COMMENT ON TABLE store.raw_events IS 'Every canonical event once (event_id), with its envelope, region, payload as JSONB and where it was read in Kafka.';

-- What the analytics views need to know of each event type: its typed table and which
-- payload keys hold personal data (masked for lintas_analyst). Maintained by the sink
-- before it writes the type's first row; a type missing here shows no payload when masked.
CREATE TABLE store.event_types (
    event_type text PRIMARY KEY,
    table_name text NOT NULL UNIQUE,
    subject_pii text,
    pii_columns jsonb NOT NULL DEFAULT '{}',
    pii_keys text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The sink's position per topic partition, written in the same transaction as the rows it
-- covers (the Kafka Connect exactly-once sink pattern): the next offset to read.
CREATE TABLE lintas.sink_offsets (
    sink text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL CHECK (partition >= 0),
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sink, topic, partition)
);

-- Event types a sink stopped because the store cannot follow their schema, and why.
CREATE TABLE lintas.sink_stopped (
    sink text NOT NULL,
    event_type text NOT NULL,
    topic text NOT NULL,
    reason text NOT NULL,
    stopped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sink, event_type)
);

-- Key of the pseudonymous citizen_key in the analytics views: without it, a hash of a NIK
-- could be reversed by hashing every plausible NIK. gen_random_uuid draws from the
-- operating system's strong random source.
CREATE TABLE lintas.store_secret (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    salt text NOT NULL
);
INSERT INTO lintas.store_secret (salt) VALUES (gen_random_uuid()::text || gen_random_uuid()::text);

-- Analyst roles are cluster-wide; several databases (and concurrent migrations) may create
-- them, so an existing role is fine.
DO $$
BEGIN
    CREATE ROLE lintas_analyst NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE lintas_analyst_pii NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
COMMENT ON ROLE lintas_analyst IS 'Reads the analytics views of the Lintas store, personal data masked. Grant it to analysts'' logins.';
COMMENT ON ROLE lintas_analyst_pii IS 'Reads the analytics views of the Lintas store unmasked (UU 27/2022 PDP: only those entitled).';

CREATE SCHEMA IF NOT EXISTS analytics;
COMMENT ON SCHEMA analytics IS 'Views over the Lintas store for analysts; personal data masked unless the reader has lintas_analyst_pii.';
REVOKE ALL ON SCHEMA analytics FROM PUBLIC;
REVOKE ALL ON SCHEMA store FROM PUBLIC;
GRANT USAGE ON SCHEMA analytics TO lintas_analyst, lintas_analyst_pii;
