-- sequin_fdw 0.1.0 -> 0.2.0: turns an installed 0.1.0 into what a fresh
-- CREATE EXTENSION of 0.2.0 makes (tests/upgrade.py compares the two).
\echo Use "ALTER EXTENSION sequin_fdw UPDATE TO '0.2.0'" to load this file. \quit
--
-- Run by ALTER EXTENSION sequin_fdw UPDATE after the 0.2.0 library is in
-- place and the server restarted (the library is preloaded): 'MODULE_PATHNAME'
-- is the new library. The sync worker leaves the database alone until the
-- extension's version is the library's, so nothing syncs while this runs.
--
-- How to extend it (until 0.2.0 is released; after that this file is frozen,
-- see sql/released.sha256): every change to sql/catalog.sql, sql/objects.sql
-- or a #[pg_extern] goes into the section of its kind below, in an order
-- that works on a 0.1.0 database (drop what depends on an object before
-- changing it). Then `python3 tests/upgrade.py` tells whether an updated
-- database equals a fresh one, and prints what differs.
--   1. Catalog tables: new columns (in the same order as in catalog.sql, so
--      that column order matches a fresh install), new tables.
--   2. Objects that must be dropped first: views over changed functions or
--      columns, functions whose arguments or result type change.
--   3. Functions: created, replaced (CREATE OR REPLACE also sets SECURITY
--      DEFINER, SET search_path, volatility), dropped.
--   4. Views, with their comments and grants.
--   5. Grants and revokes on the extension's objects.
--   6. Existing synced tables (state made by 0.1.0's code: shadow tables).
--   7. Event triggers. (sequin_alter_foreign_tables ignores the DDL of the
--      extension's own scripts, so statements may follow it.)
-- GRANT and REVOKE in an extension script are recorded as the object's
-- initial privileges (pg_init_privs), as CREATE EXTENSION does; on objects
-- that are not the extension's (shadow tables) that record must be removed
-- again, as section 6 does.

------------------------------------------------------------------------------
-- 0. The extension's schema
------------------------------------------------------------------------------

-- From 0.2.0 on the schema sequin belongs to the extension, which is itself
-- recorded in pg_catalog (the control file's schema, as pg_cron does), so
-- that DROP EXTENSION drops the schema too. No statement moves a
-- non-relocatable extension, so its catalog row is changed here (this
-- update runs as a superuser): the extension stops depending on the schema,
-- and the schema becomes one of its members.
DELETE FROM pg_catalog.pg_depend d
 WHERE d.classid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.objid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'sequin_fdw')
   AND d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
   AND d.refobjid = 'sequin'::pg_catalog.regnamespace;
UPDATE pg_catalog.pg_extension SET extnamespace = 'pg_catalog'::pg_catalog.regnamespace WHERE extname = 'sequin_fdw';
ALTER EXTENSION sequin_fdw ADD SCHEMA sequin;
COMMENT ON SCHEMA sequin IS 'sequin_fdw: its functions, status views and sync catalog.';

------------------------------------------------------------------------------
-- 1. Catalog tables
------------------------------------------------------------------------------

-- Why the change feed is not used (refused by the API), and the state of
-- reconciliation sweeps (table option sweep_interval).
ALTER TABLE sequin.collections
    ADD COLUMN feed_refused         text,
    ADD COLUMN next_sweep_at        timestamptz,
    ADD COLUMN sweep_cursor         jsonb,
    ADD COLUMN sweep_from_idx       bigint,
    ADD COLUMN sweep_started_at     timestamptz,
    ADD COLUMN sweep_requests       bigint NOT NULL DEFAULT 0,
    ADD COLUMN sweep_drift          bigint NOT NULL DEFAULT 0,
    ADD COLUMN sweep_failures       integer NOT NULL DEFAULT 0,
    ADD COLUMN last_sweep_at        timestamptz,
    ADD COLUMN last_sweep_requests  bigint,
    ADD COLUMN last_sweep_drift     bigint,
    ADD COLUMN sweeps               bigint NOT NULL DEFAULT 0,
    -- While restoring from a dump: the phase the dump carried.
    ADD COLUMN restored_phase       text,
    -- The collection's schema as the API describes it (DESIGN §4a).
    ADD COLUMN schema               jsonb,
    ADD COLUMN schema_checked_at    timestamptz,
    ADD COLUMN schema_drift         text;
ALTER TABLE sequin.collections DROP CONSTRAINT collections_phase_check;
ALTER TABLE sequin.collections ADD CONSTRAINT collections_phase_check
    CHECK (phase IN ('backfill', 'incremental', 'restoring'));

-- What a restore finds a paused server by (server oids are not restored).
ALTER TABLE sequin.paused_servers ADD COLUMN server_name text;
UPDATE sequin.paused_servers p SET server_name = s.srvname
  FROM pg_catalog.pg_foreign_server s WHERE s.oid = p.server;

-- Records that could not be stored, kept aside with the reason.
CREATE TABLE sequin.quarantine (
    foreign_table  regclass NOT NULL,
    id_md5         text NOT NULL,
    id             text NOT NULL,
    reason         text NOT NULL,
    raw            text,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (foreign_table, id_md5)
);
COMMENT ON TABLE sequin.quarantine IS
  'Records of sequin_fdw collections that could not be stored. Read sequin.quarantined_records instead.';

-- pg_dump: the catalog and the change feed's position are extension
-- configuration, dumped and restored with the shadow tables.
SELECT pg_catalog.pg_extension_config_dump('sequin.collections', '');
SELECT pg_catalog.pg_extension_config_dump('sequin.paused_servers', '');
SELECT pg_catalog.pg_extension_config_dump('sequin.backfill_seen', '');
SELECT pg_catalog.pg_extension_config_dump('sequin.updated_idx_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sequin.quarantine', '');

------------------------------------------------------------------------------
-- 2. Dropped first
------------------------------------------------------------------------------

-- sync_status gains columns in the middle (CREATE OR REPLACE VIEW can only
-- add them at the end) and uses shadow_row_count(oid). A view of the
-- user's own over it makes this fail: drop it before the update, make it
-- again after.
DROP VIEW sequin.sync_status;
-- Takes the foreign table now, not the shadow table's name.
DROP FUNCTION sequin.shadow_row_count(text);

-- With the view that reads them gone: the catalog names foreign tables by
-- regclass, which pg_dump writes as the table's name and a restore reads
-- back as the restored table's oid.
ALTER TABLE sequin.collections ALTER COLUMN foreign_table TYPE regclass;
ALTER TABLE sequin.backfill_seen ALTER COLUMN foreign_table TYPE regclass;

------------------------------------------------------------------------------
-- 3. Functions
------------------------------------------------------------------------------

-- Row counts are status, not record data: every role may see them, so the
-- count runs with the extension's rights, for registered shadow tables only.
CREATE FUNCTION sequin.shadow_row_count(foreign_table oid) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    shadow text;
    n bigint;
BEGIN
    SELECT c.shadow_table INTO shadow FROM sequin.collections c WHERE c.foreign_table = $1;
    IF shadow IS NULL OR to_regclass(shadow) IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', shadow) INTO n;
    RETURN n;
END $$;

-- The DEFAULT IMPORT gives the columns the API fills.
-- In C and STABLE: the planner neither inlines it (a SQL function's body
-- is parsed anew for each defaulted column of every INSERT) nor runs it
-- (as it would an IMMUTABLE one); the executor calls it, which costs
-- nothing.
CREATE FUNCTION sequin.assigned_by_api() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'sequin_assigned_by_api';
COMMENT ON FUNCTION sequin.assigned_by_api() IS
  'The default of columns a sequin_fdw API assigns: NULL, not sent; the API''s value comes back with RETURNING.';

-- The DDL event triggers run with the extension owner's rights.
CREATE OR REPLACE FUNCTION sequin.on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ft oid;
BEGIN
    FOR ft IN
        SELECT f.ftrelid
          FROM pg_catalog.pg_foreign_table f
          JOIN pg_catalog.pg_foreign_server s ON s.oid = f.ftserver
          JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
         WHERE w.fdwname = 'sequin_fdw'
           AND NOT EXISTS (SELECT 1 FROM sequin.collections c WHERE c.foreign_table = f.ftrelid)
         ORDER BY f.ftrelid
    LOOP
        PERFORM sequin.register_foreign_table(ft);
    END LOOP;
END $$;

-- Dropping a foreign table also drops its quarantined records.
CREATE OR REPLACE FUNCTION sequin.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    gone record;
BEGIN
    FOR gone IN
        SELECT c.foreign_table, c.shadow_table
          FROM sequin.collections c
         WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = c.foreign_table)
    LOOP
        -- The shadow table first: the sync worker locks it before the
        -- catalog row, and so must we, or a busy sync deadlocks the DROP.
        -- (Dropping it fires this trigger again, for the tables left.)
        IF to_regclass(gone.shadow_table) IS NOT NULL THEN
            EXECUTE format('DROP TABLE %s', gone.shadow_table);
        END IF;
        DELETE FROM sequin.collections WHERE foreign_table = gone.foreign_table;
        DELETE FROM sequin.backfill_seen WHERE foreign_table = gone.foreign_table;
        DELETE FROM sequin.quarantine WHERE foreign_table = gone.foreign_table;
    END LOOP;
    DELETE FROM sequin.paused_servers p
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_server s WHERE s.oid = p.server);
END $$;

-- ALTER of a synced table keeps its shadow table in step or is refused
-- (src/fdw/ddl.rs); its event trigger is made in section 7.
CREATE FUNCTION sequin.on_alter_foreign_table() RETURNS event_trigger
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sequin_on_alter_foreign_table' LANGUAGE C;

-- This database's sync worker, for sync_status (one worker per database
-- from 0.2.0 on), and registration's mark on its own catalog rows.
CREATE FUNCTION sequin."sync_worker"() RETURNS TABLE (
	"state" TEXT,  /* String */
	"pid" INT,  /* Option < i32 > */
	"detail" TEXT  /* String */
)
STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'sync_worker_wrapper';
CREATE FUNCTION sequin."registering"() RETURNS bool /* bool */
STRICT
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'registering_wrapper';

-- Any request to a server's API, its reply's synced records applied
-- (src/request.rs).
CREATE FUNCTION sequin."request"(
	"server" TEXT, /* Option < & str > */
	"method" TEXT, /* Option < & str > */
	"path" TEXT, /* Option < & str > */
	"body" jsonb DEFAULT NULL, /* Option < pgrx :: JsonB > */
	"headers" jsonb DEFAULT NULL, /* Option < pgrx :: JsonB > */
	"raise_error" bool DEFAULT false /* Option < bool > */
) RETURNS TABLE (
	"status" INT,  /* i32 */
	"headers" jsonb,  /* pgrx :: JsonB */
	"body" jsonb  /* Option < pgrx :: JsonB > */
)
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'request_wrapper';

-- The HTTP proxy's call (src/proxy.rs): granted to no one by default, as it
-- acts as the role whose credential it is given.
CREATE FUNCTION sequin.proxy_request(server text, credential text, method text, path text,
                                     headers jsonb DEFAULT NULL, body bytea DEFAULT NULL)
    RETURNS TABLE (status int, headers jsonb, body bytea, database_behind text)
    LANGUAGE c AS 'MODULE_PATHNAME', 'proxy_request_wrapper';
REVOKE ALL ON FUNCTION sequin.proxy_request(text, text, text, text, jsonb, bytea) FROM PUBLIC;

-- Adds columns for the fields the API describes that no column holds
-- (src/discovery.rs).
CREATE FUNCTION sequin.refresh_schema(foreign_table regclass) RETURNS text[]
    STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'refresh_schema_wrapper';

-- A row a restore writes into the catalog (any insert but registration's):
-- the foreign table was registered when the dump created it, in phase
-- restoring; the dump's row, with the sync state it carried, replaces that
-- one and waits in phase restoring until the shadow table is whole.
CREATE FUNCTION sequin.restore_collection() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF sequin.registering() THEN
        RETURN NEW;
    END IF;
    DELETE FROM sequin.collections c WHERE c.foreign_table = NEW.foreign_table AND c.phase = 'restoring';
    NEW.restored_phase := CASE WHEN NEW.phase = 'restoring' THEN NEW.restored_phase ELSE NEW.phase END;
    NEW.phase := 'restoring';
    RETURN NEW;
END $$;

CREATE TRIGGER sequin_restore_collection BEFORE INSERT ON sequin.collections
    FOR EACH ROW EXECUTE FUNCTION sequin.restore_collection();

-- A restored pause finds its server by name.
CREATE FUNCTION sequin.restore_paused_server() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.server_name IS NOT NULL THEN
        NEW.server := (SELECT s.oid FROM pg_foreign_server s WHERE s.srvname = NEW.server_name);
        IF NEW.server IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sequin_restore_paused_server BEFORE INSERT ON sequin.paused_servers
    FOR EACH ROW EXECUTE FUNCTION sequin.restore_paused_server();

------------------------------------------------------------------------------
-- 4. Views
------------------------------------------------------------------------------

-- What is shown of an error or warning: it may quote record values, so
-- only roles that may read the table see it.
CREATE VIEW sequin.sync_status AS
SELECT s.srvname                                     AS server,
       c.foreign_table::regclass                     AS "table",
       c.collection,
       CASE WHEN p.server IS NOT NULL THEN 'paused'
            WHEN w.state NOT IN ('running', 'starting', 'standby') THEN 'no worker'
            WHEN c.consecutive_failures > 0 THEN 'error'
            ELSE c.phase END                         AS phase,
       sequin.shadow_row_count(c.foreign_table)      AS rows,
       CASE WHEN c.phase = 'incremental' THEN 'done'
            WHEN c.phase = 'restoring' THEN 'restoring from a dump'
            ELSE format('%s rows so far', c.backfill_rows) END AS backfill,
       date_trunc('millisecond', now() - c.last_success_at) AS lag,
       c.last_success_at,
       CASE WHEN pg_catalog.has_table_privilege(c.foreign_table, 'SELECT') THEN c.last_error
            WHEN c.last_error IS NOT NULL THEN '(hidden: needs SELECT on the table)' END AS last_error,
       c.last_error_at,
       c.consecutive_failures,
       CASE WHEN c.consecutive_failures > 0 AND p.server IS NULL THEN c.next_poll_at END AS next_retry_at,
       CASE WHEN pg_catalog.has_table_privilege(c.foreign_table, 'SELECT') THEN c.last_warning
            WHEN c.last_warning IS NOT NULL THEN '(hidden: needs SELECT on the table)' END AS last_warning,
       c.last_warning_at,
       c.poisoned_records,
       (SELECT count(*) FROM sequin.quarantine q WHERE q.foreign_table = c.foreign_table) AS quarantined_records,
       coalesce(r.writes_last_minute + r.sync_last_minute, 0) AS server_requests_last_minute,
       c.requests,
       c.changes_applied,
       CASE WHEN c.sweep_cursor IS NOT NULL THEN format('running: %s requests so far', c.sweep_requests)
            WHEN c.feed_refused IS NOT NULL THEN 'every poll interval (change feed refused)'
            WHEN o.sweep_interval IS NOT NULL AND o.sweep_interval <> 'off' THEN 'every ' || o.sweep_interval
            WHEN c.next_sweep_at IS NOT NULL THEN 'scheduled'
            ELSE 'off' END                           AS sweep,
       c.next_sweep_at,
       c.last_sweep_at,
       c.last_sweep_requests,
       c.last_sweep_drift,
       CASE WHEN pg_catalog.has_table_privilege(c.foreign_table, 'SELECT') THEN c.schema_drift
            WHEN c.schema_drift IS NOT NULL THEN '(hidden: needs SELECT on the table)' END AS schema_drift,
       w.detail                                      AS worker
  FROM sequin.collections c
  CROSS JOIN sequin.sync_worker() w
  JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.foreign_table
  JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
  LEFT JOIN sequin.paused_servers p ON p.server = s.oid
  LEFT JOIN sequin.rate_limits() r ON r.server_oid = s.oid
  LEFT JOIN LATERAL (SELECT t.option_value AS sweep_interval
                       FROM pg_catalog.pg_options_to_table(ft.ftoptions) t
                      WHERE t.option_name = 'sweep_interval') o ON true
 ORDER BY 1, 2;
COMMENT ON VIEW sequin.sync_status IS
  'What every sync is doing: phase (''no worker'' when this database has no running sync worker: the column worker says why), rows, backfill progress, lag since the last successful poll, last error and warning (shown to roles that may read the table), requests, and its reconciliation sweeps (the last one''s requests and drift: records it found missing, different or gone).';
GRANT SELECT ON sequin.sync_status TO PUBLIC;

CREATE VIEW sequin.quarantined_records AS
SELECT q.foreign_table::regclass AS "table", q.id, q.reason, q.raw, q.quarantined_at
  FROM sequin.quarantine q
 WHERE pg_catalog.has_table_privilege(q.foreign_table, 'SELECT')
 ORDER BY 1, q.quarantined_at;
COMMENT ON VIEW sequin.quarantined_records IS
  'Records the sync could not store (id, reason, the API''s JSON), for the tables the current role may read.';
GRANT SELECT ON sequin.quarantined_records TO PUBLIC;

------------------------------------------------------------------------------
-- 5. Grants
------------------------------------------------------------------------------

-- Called by the event trigger only; it writes the extension's catalog.
REVOKE EXECUTE ON FUNCTION sequin.register_foreign_table(oid) FROM PUBLIC;
GRANT SELECT ON sequin.rate_limit_status TO PUBLIC;

------------------------------------------------------------------------------
-- 6. Existing synced tables
------------------------------------------------------------------------------

-- 0.2.0 makes shadow tables as the extension's owner (the owner of the
-- SECURITY DEFINER event trigger function), where 0.1.0 made them as the
-- role that created the foreign table; and a role reads a shadow table
-- directly exactly when it may read its foreign table (what
-- src/fdw/ddl.rs mirror_read_privileges keeps up from now on). The grants
-- made here are the tables' own, not the extension's: they are taken out
-- of pg_init_privs again, so that pg_dump keeps dumping them.
DO $$
DECLARE
    owner_name name;
    c record;
    grantees text;
    holders text;
BEGIN
    SELECT r.rolname INTO owner_name
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
     WHERE p.oid = 'sequin.on_ddl_command_end()'::pg_catalog.regprocedure;
    FOR c IN
        SELECT co.foreign_table, co.shadow_table, pg_catalog.to_regclass(co.shadow_table) AS shadow
          FROM sequin.collections co
         WHERE pg_catalog.to_regclass(co.shadow_table) IS NOT NULL
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = co.foreign_table)
         ORDER BY co.foreign_table
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', c.shadow_table, owner_name);
        SELECT coalesce(pg_catalog.string_agg(DISTINCT CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                                                            ELSE pg_catalog.quote_ident(r.rolname) END, ', '), '')
          INTO grantees
          FROM (SELECT (pg_catalog.aclexplode(coalesce(k.relacl, pg_catalog.acldefault('r', k.relowner)))).*
                  FROM pg_catalog.pg_class k WHERE k.oid = c.foreign_table) g
          LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
         WHERE g.privilege_type = 'SELECT';
        SELECT coalesce(pg_catalog.string_agg(DISTINCT CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                                                            ELSE pg_catalog.quote_ident(r.rolname) END, ', '), '')
          INTO holders
          FROM (SELECT (pg_catalog.aclexplode(k.relacl)).*, k.relowner
                  FROM pg_catalog.pg_class k WHERE k.oid = c.shadow) g
          LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
         WHERE g.grantee <> g.relowner;
        IF holders <> '' THEN
            EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', c.shadow_table, holders);
        END IF;
        IF grantees <> '' THEN
            EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %s', c.shadow_table, grantees);
        END IF;
        DELETE FROM pg_catalog.pg_init_privs i
         WHERE i.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND i.objoid = c.shadow;
    END LOOP;
END $$;

-- A dump restores a synced table through its shadow_table option and its
-- dependency on its shadow table (pg_dump creates the shadow table first):
-- registration adds both to the tables of 0.1.0.
SELECT sequin.register_foreign_table(c.foreign_table)
  FROM sequin.collections c
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = c.foreign_table)
 ORDER BY c.foreign_table;

------------------------------------------------------------------------------
-- 7. Event triggers
------------------------------------------------------------------------------

CREATE EVENT TRIGGER sequin_alter_foreign_tables ON ddl_command_end
    WHEN TAG IN ('ALTER FOREIGN TABLE', 'ALTER TABLE', 'ALTER SERVER', 'GRANT', 'REVOKE')
    EXECUTE FUNCTION sequin.on_alter_foreign_table();
