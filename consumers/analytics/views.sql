-- The cross-OPD views analysts read. Applied by lintas.consumers.store.prepare_store
-- whenever the sink starts (idempotent), after the typed tables they read and the
-- functions (functions.sql). __TZ__ is the display time zone (LINTAS_TIMEZONE): days are
-- counted in it, not in UTC.

-- Supporting indexes for the joins below (typed tables are created before this script).
CREATE INDEX IF NOT EXISTS dinsos_bansos_disalurkan_v1_nik_idx
    ON store.dinsos_bansos_disalurkan_v1 (nik);
CREATE INDEX IF NOT EXISTS dukcapil_kematian_dicatat_v1_nik_idx
    ON store.dukcapil_kematian_dicatat_v1 (nik);
CREATE INDEX IF NOT EXISTS bapenda_pajak_dibayar_v1_wilayah_idx
    ON store.bapenda_pajak_dibayar_v1 (kode_wilayah);
CREATE INDEX IF NOT EXISTS dpmptsp_izin_dicabut_v1_nomor_idx
    ON store.dpmptsp_izin_dicabut_v1 (nomor_izin);

-- Views are dropped and created again so that a release may change their columns; the
-- whole script runs in one transaction, so readers never see them missing.
DROP VIEW IF EXISTS analytics.events, analytics.daily_counts, analytics.citizen_timeline,
    analytics.permits_with_tax, analytics.aid_recipients_deceased;

CREATE VIEW analytics.events AS
SELECT e.event_id,
       e.event_type,
       e.opd,
       e.application,
       CASE
           WHEN analytics.pii_allowed() OR (t.event_type IS NOT NULL AND t.subject_pii IS NULL)
               THEN e.subject
           ELSE analytics.mask(e.subject, coalesce(t.subject_pii, 'unknown'))
       END AS subject,
       e.event_time,
       e.ingest_time,
       e.kode_wilayah,
       e.kode_provinsi,
       e.nama_provinsi,
       e.kode_kabupaten_kota,
       e.nama_kabupaten_kota,
       e.kode_kecamatan,
       e.nama_kecamatan,
       e.kode_desa_kelurahan,
       e.nama_desa_kelurahan,
       -- Masked: the payload without its personal-data keys; an event type the store has
       -- no description of shows no payload at all rather than an unmasked one.
       CASE
           WHEN analytics.pii_allowed() THEN e.payload
           WHEN t.event_type IS NULL THEN NULL
           ELSE e.payload - t.pii_keys
       END AS payload,
       e.stored_at
FROM store.raw_events e
LEFT JOIN store.event_types t ON t.event_type = e.event_type;
COMMENT ON VIEW analytics.events IS 'Every stored event of every OPD, personal data masked unless the reader has lintas_analyst_pii.';

CREATE VIEW analytics.daily_counts AS
SELECT (e.event_time AT TIME ZONE __TZ__)::date AS day,
       e.opd,
       e.event_type,
       count(*) AS events
FROM store.raw_events e
GROUP BY 1, 2, 3;
COMMENT ON VIEW analytics.daily_counts IS 'Events per day (display time zone), OPD and event type.';

-- One row per (citizen, event) for every NIK an event names: as its subject, as the
-- reporter of a death, the parent of a newborn, the person responsible for a business...
-- citizen_key is a keyed hash of the NIK: readers without personal-data rights follow one
-- citizen's timeline by it without learning the NIK.
CREATE VIEW analytics.citizen_timeline AS
SELECT left(encode(sha256(convert_to(s.salt || n.nik, 'UTF8')), 'hex'), 24) AS citizen_key,
       analytics.pii_text(n.nik, 'nik') AS nik,
       e.event_time,
       e.opd,
       e.event_type,
       e.application,
       e.kode_wilayah,
       e.nama_kabupaten_kota,
       e.nama_kecamatan,
       e.nama_desa_kelurahan,
       CASE
           WHEN analytics.pii_allowed() THEN e.payload
           WHEN t.event_type IS NULL THEN NULL
           ELSE e.payload - t.pii_keys
       END AS payload,
       e.event_id
FROM store.raw_events e
CROSS JOIN LATERAL unnest(e.niks) AS n(nik)
CROSS JOIN lintas.store_secret s
LEFT JOIN store.event_types t ON t.event_type = e.event_type
ORDER BY n.nik, e.event_time, e.event_id;
COMMENT ON VIEW analytics.citizen_timeline IS 'All events naming one NIK, across OPDs, in time order; the NIK masked unless the reader has lintas_analyst_pii.';

-- DPMPTSP and Bapenda share no identifier: a payment carries Bapenda's own NPWPD, the
-- permit the OSS NIB and (optionally) an NPWP. A new business becomes a tax object in the
-- village it operates in, under the name it was licensed with, so payments are matched on
-- (village code, business name) and counted from the day the permit was issued.
CREATE VIEW analytics.permits_with_tax AS
SELECT i.event_id,
       i.nomor_izin,
       i.nib,
       i.jenis_izin,
       i.kbli,
       i.nama_usaha,
       analytics.pii_text(i.npwp, 'npwp') AS npwp,
       i.kode_wilayah,
       r.nama_kecamatan,
       r.nama_desa_kelurahan,
       i.tanggal_terbit,
       EXISTS (
           SELECT 1 FROM store.dpmptsp_izin_dicabut_v1 c WHERE c.nomor_izin = i.nomor_izin
       ) AS dicabut,
       p.payments,
       coalesce(p.total_paid, 0) AS total_paid,
       p.first_paid_at,
       p.last_paid_at,
       p.npwpd,
       p.jenis_pajak
FROM store.dpmptsp_izin_terbit_v1 i
LEFT JOIN store.raw_events r ON r.event_id = i.event_id
CROSS JOIN LATERAL (
    SELECT count(*) AS payments,
           sum(b.jumlah_dibayar) AS total_paid,
           min(b.dibayar_pada) AS first_paid_at,
           max(b.dibayar_pada) AS last_paid_at,
           array_agg(DISTINCT b.npwpd) FILTER (WHERE b.npwpd IS NOT NULL) AS npwpd,
           array_agg(DISTINCT b.jenis_pajak) FILTER (WHERE b.jenis_pajak IS NOT NULL) AS jenis_pajak
    FROM store.bapenda_pajak_dibayar_v1 b
    WHERE b.kode_wilayah = i.kode_wilayah
      AND analytics.business_key(b.nama_wajib_pajak) = analytics.business_key(i.nama_usaha)
      AND (b.dibayar_pada AT TIME ZONE __TZ__)::date >= i.tanggal_terbit
) p;
COMMENT ON VIEW analytics.permits_with_tax IS 'Permits issued by DPMPTSP with the regional tax Bapenda received from the business since (matched on village and business name).';

-- The case the integration exists for: social aid paid to someone whose death Dukcapil
-- registered. One row per disbursement to a deceased recipient (the latest death record).
CREATE VIEW analytics.aid_recipients_deceased AS
SELECT left(encode(sha256(convert_to(s.salt || b.nik, 'UTF8')), 'hex'), 24) AS citizen_key,
       analytics.pii_text(b.nik, 'nik') AS nik,
       analytics.pii_text(b.nama, 'nama') AS nama,
       k.tanggal_kematian,
       k.dicatat_pada AS kematian_dicatat_pada,
       k.nomor_akta_kematian,
       b.event_id,
       b.id_penyaluran,
       b.program,
       b.tahun_anggaran,
       b.tahap,
       b.bentuk_bantuan,
       b.nilai,
       b.saluran,
       b.disalurkan_pada,
       b.kode_wilayah,
       r.nama_kecamatan,
       r.nama_desa_kelurahan,
       (b.disalurkan_pada AT TIME ZONE __TZ__)::date > k.tanggal_kematian AS paid_after_death,
       (b.disalurkan_pada AT TIME ZONE __TZ__)::date - k.tanggal_kematian AS days_after_death
FROM store.dinsos_bansos_disalurkan_v1 b
CROSS JOIN LATERAL (
    SELECT d.tanggal_kematian, d.dicatat_pada, d.nomor_akta_kematian
    FROM store.dukcapil_kematian_dicatat_v1 d
    WHERE d.nik = b.nik
    ORDER BY d.dicatat_pada DESC
    LIMIT 1
) k
LEFT JOIN store.raw_events r ON r.event_id = b.event_id
CROSS JOIN lintas.store_secret s;
COMMENT ON VIEW analytics.aid_recipients_deceased IS 'Social aid disbursements (Dinsos) to recipients whose death Dukcapil registered, with whether the aid was paid after the death.';

GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO lintas_analyst, lintas_analyst_pii;
