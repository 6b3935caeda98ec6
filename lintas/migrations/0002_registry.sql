-- The schema registry (lintas.schemas.registry): Confluent-compatible ids, subjects, versions.

-- One row per distinct schema. Ids are global, never reused: the sequence only moves
-- forward, also past ids restored by an import (IMPORT mode sets it explicitly).
CREATE SEQUENCE lintas.registry_schema_id_seq AS integer MINVALUE 1;

CREATE TABLE lintas.registry_schemas (
    id integer PRIMARY KEY CHECK (id > 0),
    schema_type text NOT NULL DEFAULT 'AVRO',
    -- The text exactly as first registered; clients get it back byte for byte.
    schema_text text NOT NULL,
    -- sha256 of the canonical form (sorted keys, no whitespace): the same schema written
    -- differently gets the same id. Not unique: an import may bring the same schema under
    -- two ids, as a Confluent registry can hold it; registration reuses the lowest.
    fingerprint text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_schemas_fingerprint_idx ON lintas.registry_schemas (fingerprint, id);

CREATE TABLE lintas.registry_versions (
    subject text NOT NULL CHECK (subject <> ''),
    version integer NOT NULL CHECK (version > 0),
    schema_id integer NOT NULL REFERENCES lintas.registry_schemas (id),
    -- Soft delete hides a version unless ?deleted=true; permanent delete removes the row.
    deleted boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, version)
);
CREATE INDEX registry_versions_schema_idx ON lintas.registry_versions (schema_id);

-- Compatibility level and mode, globally (subject = '') or per subject.
CREATE TABLE lintas.registry_config (
    subject text PRIMARY KEY,
    compatibility text CHECK (compatibility IN ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE',
        'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE')),
    mode text CHECK (mode IN ('READWRITE', 'READONLY', 'IMPORT'))
);

COMMENT ON TABLE lintas.registry_schemas IS 'Schema registry: schemas by global id.';
COMMENT ON TABLE lintas.registry_versions IS 'Schema registry: subject versions.';
COMMENT ON TABLE lintas.registry_config IS 'Schema registry: compatibility and mode ('''' = global).';
