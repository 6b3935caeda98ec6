-- The analytics schema's functions: who may see personal data, and how it is masked.
-- Applied by lintas.consumers.store.prepare_store whenever the sink starts (idempotent),
-- before the views that call them.
--
-- Views run with their owner's rights on the store's tables, so the analyst roles need
-- nothing but SELECT on the views; functions run as the reader, so pii_allowed() is the
-- reader's own right.

CREATE OR REPLACE FUNCTION analytics.pii_allowed() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT pg_has_role('lintas_analyst_pii', 'USAGE') $$;
COMMENT ON FUNCTION analytics.pii_allowed() IS 'True when the reader may see personal data unmasked (a member of lintas_analyst_pii).';

-- Partial masks in the platform's style (lokal-id's partial_mask): enough to recognise a
-- value one already knows, not enough to learn it. Kinds without a useful partial form
-- (addresses, health, free text, ...) are hidden completely.
CREATE OR REPLACE FUNCTION analytics.mask(value text, kind text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN value IS NULL THEN NULL
        WHEN kind IN ('nik', 'nomor_kk') THEN
            left(value, 4) || repeat('*', greatest(length(value) - 8, 0)) || right(value, 4)
        WHEN kind = 'nama' THEN regexp_replace(value, '(\w)\w*', '\1***', 'g')
        WHEN kind = 'telepon' THEN
            left(regexp_replace(value, '^\+?62', '0'), 4) || '****' || right(value, 4)
        WHEN kind = 'email' THEN regexp_replace(value, '^(.)[^@]*@', '\1***@')
        WHEN kind IN ('npwp', 'bpjs', 'nisn') THEN
            repeat('*', greatest(length(value) - 4, 0)) || right(value, 4)
        ELSE NULL
    END
    $$;
COMMENT ON FUNCTION analytics.mask(text, text) IS 'The masked form of a personal-data value of the given kind ("pii" tag of the contract).';

CREATE OR REPLACE FUNCTION analytics.pii_text(value text, kind text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN analytics.pii_allowed() THEN value ELSE analytics.mask(value, kind) END $$;
COMMENT ON FUNCTION analytics.pii_text(text, text) IS 'The value for lintas_analyst_pii, its mask for everyone else.';

-- Business names as the two systems write them differ in case, spacing, punctuation and
-- legal form ("PT. Maju Jaya" / "Maju Jaya, PT"); compare them without those.
CREATE OR REPLACE FUNCTION analytics.business_key(name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT btrim(regexp_replace(
        regexp_replace(regexp_replace(lower(name), '[^[:alnum:]]+', ' ', 'g'),
                       '\m(pt|cv|ud|tbk|persero|koperasi)\M', ' ', 'g'),
        '\s+', ' ', 'g'))
    $$;
COMMENT ON FUNCTION analytics.business_key(text) IS 'A business name without case, punctuation and legal form, for matching across OPDs.';
