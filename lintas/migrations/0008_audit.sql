-- The audit log (lintas.audit): who did what on the platform. Keys issued, rotated and
-- revoked, Kafka credentials and ACLs, dead-letter replays, schema registrations, analysts'
-- queries, portal sign-ins, retention runs; and the SQL analysts ran themselves (psql,
-- DBeaver, Metabase) as pgaudit logged it, imported from the server's jsonlog.

CREATE TABLE lintas.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    -- os:<login> (CLI), portal:<user>, registry:<client>, pg:<database login> (pgaudit).
    actor text NOT NULL CHECK (actor <> ''),
    action text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    -- What was acted on: app:siak, User:app-siak, subject:<name>, lintas.dlq, ...
    target text NOT NULL DEFAULT '',
    -- Never a secret: key ids, not keys; principals, not passwords.
    details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    source text NOT NULL DEFAULT 'platform' CHECK (source IN ('platform', 'pgaudit')),
    -- Imported entries only: where they came from (the pgaudit record's session and
    -- statement), so an import that runs twice adds nothing.
    origin text UNIQUE
);
CREATE INDEX audit_log_action_idx ON lintas.audit_log (action, id);
CREATE INDEX audit_log_actor_idx ON lintas.audit_log (actor, id);
CREATE INDEX audit_log_at_idx ON lintas.audit_log (at);
COMMENT ON TABLE lintas.audit_log IS 'Audit log: who did what, when. Append-only: UPDATE, TRUNCATE and DELETE of entries younger than 365 days are refused.';

-- Append-only for every role of the platform. REVOKE alone would not hold: the owner can
-- grant itself the right again, and the local platform role is a superuser. The trigger
-- refuses changes for everyone, and ENABLE ALWAYS keeps it firing under
-- session_replication_role = replica (which silences ordinary triggers). Only entries
-- past the shortest retention the platform allows (365 days) may be deleted, by the
-- retention job (LINTAS_AUDIT__RETENTION_DAYS).
CREATE FUNCTION lintas.audit_log_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.at < now() - interval '365 days' THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'lintas.audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit entries cannot be changed; entries older than 365 days may be deleted by the retention job.';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON lintas.audit_log
    FOR EACH ROW EXECUTE FUNCTION lintas.audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON lintas.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION lintas.audit_log_guard();
ALTER TABLE lintas.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE lintas.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
REVOKE ALL ON lintas.audit_log FROM PUBLIC;
-- The owner keeps INSERT, SELECT and DELETE (retention); a non-superuser owner has to
-- grant itself UPDATE first, and the trigger still refuses it.
REVOKE UPDATE, TRUNCATE ON lintas.audit_log FROM CURRENT_USER;

-- How far the import has read each jsonlog file of the server (lintas.audit.pgaudit).
-- Written in the same transaction as the entries read, so nothing is imported twice or
-- skipped when an import is interrupted.
CREATE TABLE lintas.audit_pgaudit_files (
    path text PRIMARY KEY,
    -- device:inode when last read: a file replaced under the same name starts again at 0.
    file_id text NOT NULL,
    position bigint NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- pgaudit's object audit role (pgaudit.role = 'lintas_auditor', set by the local runner):
-- every read of a relation it may SELECT is logged, whoever reads it. It may read the
-- analytics views, so every analyst's query of them is logged even before the analyst's
-- own login got its role-level settings (below). Never grant this role to anyone.
DO $$
BEGIN
    CREATE ROLE lintas_auditor NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
COMMENT ON ROLE lintas_auditor IS 'pgaudit object audit role (pgaudit.role): reads of what it may SELECT are logged. Grant it to nobody.';
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO lintas_auditor;
-- Views the platform creates later (the sink re-creates them at every start) too.
ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO lintas_auditor;

-- Session audit for analysts: pgaudit.log is a role-level setting, and role-level settings
-- apply to the login a session starts with, never to the roles it is a member of. So it
-- is set on every login that is a member of an analyst role, not on the NOLOGIN roles
-- lintas_analyst and lintas_analyst_pii themselves. The audit import calls this at every
-- run, so a login a DBA grants an analyst role to is covered from its next session on.
-- Only a superuser may set pgaudit.* (PGC_SUSET): without that right nothing is changed
-- and the DBA sets them by hand (docs/security.md).
CREATE FUNCTION lintas.audit_analyst_logins() RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    wanted constant text := 'read, write, function, role, ddl, misc';
    login record;
    changed integer := 0;
BEGIN
    IF NOT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) THEN
        RETURN 0;
    END IF;
    FOR login IN
        SELECT r.oid, r.rolname
          FROM pg_roles r
         WHERE r.rolcanlogin AND NOT r.rolsuper
           AND (pg_has_role(r.oid, 'lintas_analyst', 'MEMBER')
                OR pg_has_role(r.oid, 'lintas_analyst_pii', 'MEMBER'))
           AND NOT EXISTS (
               SELECT 1 FROM pg_db_role_setting s
                WHERE s.setrole = r.oid AND s.setdatabase = 0
                  AND 'pgaudit.log=' || wanted = ANY (s.setconfig))
    LOOP
        BEGIN
            EXECUTE format('ALTER ROLE %I SET pgaudit.log = %L', login.rolname, wanted);
            EXECUTE format('ALTER ROLE %I SET pgaudit.log_parameter = on', login.rolname);
            changed := changed + 1;
        EXCEPTION WHEN others THEN
            -- Roles are cluster-wide: another database's migration or import may set the
            -- same login at this moment ("tuple concurrently updated"), or a DBA drop it.
            -- The next run finds it as it is then.
            NULL;
        END;
    END LOOP;
    RETURN changed;
END
$$;
REVOKE ALL ON FUNCTION lintas.audit_analyst_logins() FROM PUBLIC;
COMMENT ON FUNCTION lintas.audit_analyst_logins() IS 'Sets pgaudit.log on every login that is a member of an analyst role; returns how many it changed.';
SELECT lintas.audit_analyst_logins();
