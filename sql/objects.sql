-- The foreign-data wrapper, the status view and the DDL hooks.

CREATE FUNCTION sequin.sequin_fdw_handler() RETURNS fdw_handler
    AS 'MODULE_PATHNAME', 'sequin_fdw_handler' LANGUAGE C STRICT;

-- The statement trigger of every shadow table: only the extension writes them.
CREATE FUNCTION sequin.shadow_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'sequin_shadow_guard' LANGUAGE C;

CREATE FOREIGN DATA WRAPPER sequin_fdw
    HANDLER sequin.sequin_fdw_handler
    VALIDATOR sequin.sequin_fdw_validator;

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

-- Records that could not be stored (an id too long for an index, a value
-- Postgres cannot hold): kept aside with the reason, never blocking the
-- collection. `raw` is the API's JSON as text (jsonb cannot hold \u0000).
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
SELECT pg_catalog.pg_extension_config_dump('sequin.quarantine', '');

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

CREATE VIEW sequin.quarantined_records AS
SELECT q.foreign_table::regclass AS "table", q.id, q.reason, q.raw, q.quarantined_at
  FROM sequin.quarantine q
 WHERE pg_catalog.has_table_privilege(q.foreign_table, 'SELECT')
 ORDER BY 1, q.quarantined_at;
COMMENT ON VIEW sequin.quarantined_records IS
  'Records the sync could not store (id, reason, the API''s JSON), for the tables the current role may read.';
GRANT USAGE ON SCHEMA sequin TO PUBLIC;
GRANT USAGE ON SCHEMA sequin_shadow TO PUBLIC;
GRANT SELECT ON sequin.sync_status TO PUBLIC;
GRANT SELECT ON sequin.quarantined_records TO PUBLIC;

-- The DEFAULT IMPORT gives the columns the API fills (ids, timestamps, the
-- standard fields): NULL, which a write does not send. Frameworks that
-- reflect a table (SQLAlchemy, Django) see a server default on them and
-- read the API's values back with RETURNING.
-- In C and STABLE: the planner neither inlines it (a SQL function's body
-- is parsed anew for each defaulted column of every INSERT) nor runs it
-- (as it would an IMMUTABLE one); the executor calls it, which costs
-- nothing.
CREATE FUNCTION sequin.assigned_by_api() RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'sequin_assigned_by_api';
COMMENT ON FUNCTION sequin.assigned_by_api() IS
  'The default of columns a sequin_fdw API assigns: NULL, not sent; the API''s value comes back with RETURNING.';

-- A foreign table of this wrapper, however created (CREATE FOREIGN TABLE or
-- IMPORT FOREIGN SCHEMA), gets its shadow table and catalog row here.
-- The DDL event triggers run with the extension owner's rights (SECURITY
-- DEFINER): the catalog and the shadow tables are the extension's, and a
-- role without rights on them keeps every DDL it had.
CREATE FUNCTION sequin.on_ddl_command_end() RETURNS event_trigger
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

CREATE EVENT TRIGGER sequin_register_foreign_tables ON ddl_command_end
    WHEN TAG IN ('CREATE FOREIGN TABLE', 'IMPORT FOREIGN SCHEMA')
    EXECUTE FUNCTION sequin.on_ddl_command_end();

-- Dropping a foreign table drops its shadow table and sync state.
CREATE FUNCTION sequin.on_sql_drop() RETURNS event_trigger
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

CREATE EVENT TRIGGER sequin_drop_foreign_tables ON sql_drop
    EXECUTE FUNCTION sequin.on_sql_drop();

-- ALTER of a synced table keeps its shadow table in step or is refused, as
-- is a change of provider of a server with synced tables; GRANT and REVOKE keep direct reads of shadow tables to the roles that
-- may read the foreign table (src/fdw/ddl.rs).
CREATE FUNCTION sequin.on_alter_foreign_table() RETURNS event_trigger
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sequin_on_alter_foreign_table' LANGUAGE C;

CREATE EVENT TRIGGER sequin_alter_foreign_tables ON ddl_command_end
    WHEN TAG IN ('ALTER FOREIGN TABLE', 'ALTER TABLE', 'ALTER SERVER', 'GRANT', 'REVOKE')
    EXECUTE FUNCTION sequin.on_alter_foreign_table();

-- Called by the event trigger only; it writes the extension's catalog.
REVOKE EXECUTE ON FUNCTION sequin.register_foreign_table(oid) FROM PUBLIC;

-- Each server's shared request budget: the configured rate, what writes and
-- the sync used in the last minute, time spent waiting for a slot, and any
-- pause an API asked for (429 with Retry-After).
CREATE VIEW sequin.rate_limit_status AS
SELECT s.srvname                        AS server,
       r.rate_limit,
       r.burst,
       r.writes_last_minute,
       r.sync_last_minute,
       r.waited_ms,
       to_timestamp(r.paused_until_epoch) AS paused_until
  FROM sequin.rate_limits() r
  JOIN pg_catalog.pg_foreign_server s ON s.oid = r.server_oid
 ORDER BY 1;
GRANT SELECT ON sequin.rate_limit_status TO PUBLIC;
