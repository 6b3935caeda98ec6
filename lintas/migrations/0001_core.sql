-- The platform's own bookkeeping schema. Component tables come in later migrations.
CREATE SCHEMA IF NOT EXISTS lintas;

COMMENT ON SCHEMA lintas IS 'Lintas platform tables (directory, registry, sinks). Not for analysts.';
