-- The sync catalog: one row per synced collection (= foreign table).
-- The schema "sequin" belongs to the extension (the extension itself is
-- recorded in pg_catalog, as pg_cron does), so DROP EXTENSION drops it;
-- everything below that is not schema-qualified is created in it.
CREATE SCHEMA sequin;
COMMENT ON SCHEMA sequin IS 'sequin_fdw: its functions, status views and sync catalog.';
SET LOCAL search_path = sequin, pg_catalog;

CREATE SCHEMA sequin_shadow;
COMMENT ON SCHEMA sequin_shadow IS
  'Shadow tables of sequin_fdw foreign tables: the local copy reads are served from. Read them freely; write through the foreign table.';

-- Bumped on every change applied to any shadow table: a change feed.
CREATE SEQUENCE sequin.updated_idx_seq;

-- foreign_table is a regclass: pg_dump writes it as the table's name, and
-- a restore reads the name back as the restored table's new oid.
CREATE TABLE sequin.collections (
    foreign_table        regclass PRIMARY KEY,
    collection           text NOT NULL,
    shadow_table         text NOT NULL UNIQUE,
    -- restoring: restored from a dump, waiting for the rest of the dump to
    -- make its shadow table whole (catalog::finish_restores).
    phase                text NOT NULL DEFAULT 'backfill'
                         CHECK (phase IN ('backfill', 'incremental', 'restoring')),
    cursor               jsonb NOT NULL DEFAULT '{}',
    backfill_rows        bigint NOT NULL DEFAULT 0,
    changes_applied      bigint NOT NULL DEFAULT 0,
    requests             bigint NOT NULL DEFAULT 0,
    backfill_started_at  timestamptz,
    backfill_finished_at timestamptz,
    last_poll_at         timestamptz,
    last_success_at      timestamptz,
    last_error           text,
    last_error_at        timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    next_poll_at         timestamptz NOT NULL DEFAULT now(),
    -- Something a person should know that did not stop the sync: a restarted
    -- backfill, a record kept in raw only.
    last_warning         text,
    last_warning_at      timestamptz,
    -- Records whose values do not fit the table's column types: stored with
    -- id and raw only, instead of blocking the collection.
    poisoned_records     bigint NOT NULL DEFAULT 0,
    -- A backfill over rows already there (resync, expired cursor) began when
    -- the change feed stood here: when it ends, rows it did not see and that
    -- did not change since are gone upstream. NULL: no such backfill.
    backfill_from_idx    bigint,
    -- Why the change feed is not used (refused by the API), or NULL: the
    -- collection is then kept current by sweeps at its poll interval.
    feed_refused         text,
    -- The reconciliation sweep: a full listing compared with the shadow
    -- table. While one runs, sweep_cursor is its position and the ids it
    -- saw go to backfill_seen; rows it did not see whose updated_idx has
    -- not moved past sweep_from_idx are gone upstream when it ends.
    next_sweep_at        timestamptz,
    sweep_cursor         jsonb,
    sweep_from_idx       bigint,
    sweep_started_at     timestamptz,
    sweep_requests       bigint NOT NULL DEFAULT 0,
    sweep_drift          bigint NOT NULL DEFAULT 0,
    sweep_failures       integer NOT NULL DEFAULT 0,
    last_sweep_at        timestamptz,
    last_sweep_requests  bigint,
    -- Records the last sweep found missing or different locally, or gone
    -- upstream: what the change feed had not brought (yet).
    last_sweep_drift     bigint,
    sweeps               bigint NOT NULL DEFAULT 0,
    -- While restoring: the phase the dump carried, to go on with.
    restored_phase       text,
    -- The collection's fields as the API last described them (DESIGN §4a;
    -- NULL for a compiled schema, or not asked yet), when, and what differs
    -- from the table's columns (fields to add with sequin.refresh_schema,
    -- columns whose field is gone).
    schema               jsonb,
    schema_checked_at    timestamptz,
    schema_drift         text
);
COMMENT ON TABLE sequin.collections IS
  'One row per sequin_fdw foreign table: its shadow table and sync state. Read sequin.sync_status instead.';

-- Servers whose sync is paused (sequin.pause / sequin.resume); writes go on.
CREATE TABLE sequin.paused_servers (
    server      oid PRIMARY KEY,
    paused_at   timestamptz NOT NULL DEFAULT now(),
    -- What a restore finds the server by (server oids are not restored).
    server_name text
);
COMMENT ON TABLE sequin.paused_servers IS
  'Foreign servers whose sync is paused by sequin.pause(server). Read sequin.sync_status instead.';

-- The ids a backfill over existing rows, or a sweep, has seen so far (see
-- collections.backfill_from_idx and sweep_from_idx; a collection has one of
-- them at a time); written with each page, emptied when it ends.
CREATE TABLE sequin.backfill_seen (
    foreign_table regclass NOT NULL,
    id            text NOT NULL,
    PRIMARY KEY (foreign_table, id)
);

-- pg_dump: the catalog, the change feed's position and the shadow tables
-- (ordinary tables, dumped with their rows) restore together; see
-- sequin.restore_collection() and README "Dump and restore".
SELECT pg_catalog.pg_extension_config_dump('sequin.collections', '');
SELECT pg_catalog.pg_extension_config_dump('sequin.paused_servers', '');
SELECT pg_catalog.pg_extension_config_dump('sequin.backfill_seen', '');
SELECT pg_catalog.pg_extension_config_dump('sequin.updated_idx_seq', '');
