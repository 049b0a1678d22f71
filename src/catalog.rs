//! The sync catalog (`sequin.collections`): registering a foreign table and
//! its shadow, and the per-collection sync state the worker reads and
//! advances. All SQL against the catalog lives here.

use crate::error::{ErrorKind, Result, SequinError};
use crate::fdw::options::{load_foreign_table, ForeignTableConfig};
use crate::privilege::{catalog_owner, run_as};
use crate::providers::{CollectionSpec, SyncPage};
use crate::shadow::{create_table_sql, Shadow};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use crate::sql::ident as quote_identifier;
use pgrx::JsonB;
use serde_json::Value;
use std::time::Duration;

fn spi_error(e: pgrx::spi::Error) -> SequinError {
    SequinError::internal(format!("catalog query failed: {e}"))
}

/// A registered foreign table: its server, provider collection and shadow.
pub struct Collection {
    pub config: ForeignTableConfig,
    pub spec: &'static CollectionSpec,
    pub shadow: Shadow,
    pub shadow_owner: pg_sys::Oid,
}

fn collection_spec(config: &ForeignTableConfig) -> Result<&'static CollectionSpec> {
    let provider = config.server.provider;
    provider.collection(&config.table.collection).ok_or_else(|| {
        SequinError::new(
            ErrorKind::InvalidOptionValue,
            format!("{} has no collection \"{}\"", provider.label(), config.table.collection),
        )
        .with_hint(format!(
            "Available collections: {}.",
            provider.collections().iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Creates the shadow table and catalog row of a new foreign table.
pub fn register(foreign_table: pg_sys::Oid) -> Result<()> {
    let config = load_foreign_table(foreign_table)?;
    collection_spec(&config)?;
    Spi::connect_mut(|client| {
        let args: [DatumWithOid; 1] = [foreign_table.into()];
        let names = client
            .select(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
                Some(1),
                &args,
            )
            .map_err(spi_error)?
            .first()
            .get_two::<String, String>()
            .map_err(spi_error)?;
        let (Some(schema), Some(name)) = names else {
            return Err(SequinError::internal("foreign table vanished during registration"));
        };
        let mut columns = Vec::new();
        let mut kinds = Vec::new();
        for row in client
            .select(
                "SELECT attname::text, format_type(atttypid, atttypmod), atttypid, attgenerated <> '' OR attidentity <> ''
                   FROM pg_attribute
                  WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                None,
                &args,
            )
            .map_err(spi_error)?
        {
            let name: String = row.get(1).map_err(spi_error)?.unwrap_or_default();
            let sql_type: Option<String> = row.get(2).map_err(spi_error)?;
            let type_oid: pg_sys::Oid = row.get(3).map_err(spi_error)?.unwrap_or(pg_sys::InvalidOid);
            let generated: bool = row.get(4).map_err(spi_error)?.unwrap_or(false);
            kinds.push((name.clone(), type_oid, generated));
            columns.push((name, sql_type.unwrap_or_default()));
        }
        crate::fdw::ddl::check_columns_allowed(&format!("{}.{}", quote_identifier(&schema), quote_identifier(&name)), &kinds)?;
        let shadow_name = shadow_table_name(client, &schema, &name, foreign_table)?;
        let ddl = create_table_sql(&shadow_name, &columns)?;
        client.update(&ddl, None, &[]).map_err(spi_error)?;
        client
            .update(&format!("CREATE INDEX ON {shadow_name} (updated_idx)"), None, &[])
            .map_err(spi_error)?;
        for statement in crate::shadow_guard::trigger_sql(&shadow_name) {
            client.update(&statement, None, &[]).map_err(spi_error)?;
        }
        let comment = format!(
            "COMMENT ON TABLE {shadow_name} IS {}",
            crate::sql::literal(&format!(
                "Shadow table of {}.{} (sequin_fdw): read freely, write through the foreign table.",
                quote_identifier(&schema),
                quote_identifier(&name)
            ))
        );
        client.update(&comment, None, &[]).map_err(spi_error)?;
        let args: [DatumWithOid; 3] =
            [foreign_table.into(), config.table.collection.as_str().into(), shadow_name.as_str().into()];
        client
            .update(
                "INSERT INTO sequin.collections (foreign_table, collection, shadow_table) VALUES ($1, $2, $3)",
                None,
                &args,
            )
            .map_err(spi_error)?;
        Ok(shadow_name)
    })
    .and_then(|shadow_name| crate::fdw::ddl::mirror_read_privileges(foreign_table, &shadow_name))
}

/// The collection a foreign table was registered for.
pub fn registered_collection(foreign_table: pg_sys::Oid) -> Result<String> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    run_as(catalog_owner(), || {
        Spi::get_one_with_args::<String>("SELECT collection FROM sequin.collections WHERE foreign_table = $1", &args)
    })
    .map_err(spi_error)?
    .ok_or_else(|| not_registered(foreign_table))
}

/// `sequin_shadow.<schema>_<table>`, made unique with the table's oid when
/// that name is taken or too long.
fn shadow_table_name(
    client: &pgrx::spi::SpiClient<'_>,
    schema: &str,
    table: &str,
    foreign_table: pg_sys::Oid,
) -> Result<String> {
    let base = format!("{schema}_{table}");
    let args: [DatumWithOid; 1] = [base.as_str().into()];
    let taken = client
        .select(
            "SELECT 1 FROM pg_class WHERE relnamespace = 'sequin_shadow'::regnamespace AND relname = $1",
            Some(1),
            &args,
        )
        .map_err(spi_error)?
        .len()
        > 0;
    let name = if taken || base.len() > 50 {
        format!("{}_{}", base.chars().take(40).collect::<String>(), u32::from(foreign_table))
    } else {
        base
    };
    Ok(format!("sequin_shadow.{}", quote_identifier(&name)))
}

/// Loads a registered collection with its current options.
pub fn load_collection(foreign_table: pg_sys::Oid) -> Result<Collection> {
    let config = load_foreign_table(foreign_table)?;
    let spec = collection_spec(&config)?;
    let (shadow_table, owner, feed_name, columns) = run_as(catalog_owner(), || Spi::connect(|client| {
        let args: [DatumWithOid; 1] = [foreign_table.into()];
        let table = client
            .select(
                "SELECT c.shadow_table, r.relowner, c.foreign_table::regclass::text,
                        array(SELECT quote_ident(a.attname) FROM pg_attribute a
                               WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
                                 AND a.attname <> 'updated_idx' ORDER BY a.attnum)
                   FROM sequin.collections c JOIN pg_class r ON r.oid = to_regclass(c.shadow_table)
                  WHERE c.foreign_table = $1",
                Some(1),
                &args,
            )
            .map_err(spi_error)?;
        if table.is_empty() {
            return Err(not_registered(foreign_table));
        }
        let row = table.first();
        Ok((
            row.get::<String>(1).map_err(spi_error)?.unwrap_or_default(),
            row.get::<pg_sys::Oid>(2).map_err(spi_error)?.unwrap_or(pg_sys::InvalidOid),
            row.get::<String>(3).map_err(spi_error)?.unwrap_or_default(),
            row.get::<Vec<String>>(4).map_err(spi_error)?.unwrap_or_default(),
        ))
    }))?;
    let shadow = Shadow::new(shadow_table, columns, feed_name, config.table.delete_mode, &config.server);
    Ok(Collection { config, spec, shadow, shadow_owner: owner })
}

fn not_registered(foreign_table: pg_sys::Oid) -> SequinError {
    SequinError::new(
        ErrorKind::Internal,
        format!("foreign table {} has no shadow table", u32::from(foreign_table)),
    )
    .with_hint("Recreate the foreign table, or run SELECT sequin.register_foreign_table('<table>'::regclass).")
}

pub struct ShadowStats {
    pub shadow_oid: pg_sys::Oid,
    pub rows: f64,
    pub pages: f64,
}

/// The shadow table of a foreign table and its size, for the planner.
pub fn shadow_stats(foreign_table: pg_sys::Oid) -> Result<ShadowStats> {
    run_as(catalog_owner(), || Spi::connect(|client| {
        let args: [DatumWithOid; 1] = [foreign_table.into()];
        let table = client
            .select(
                "SELECT r.oid, (CASE WHEN r.reltuples >= 0 THEN r.reltuples
                                     ELSE greatest(pg_relation_size(r.oid) / 8192, 1) * 50 END)::float8,
                        greatest(r.relpages, pg_relation_size(r.oid) / 8192)::float8
                   FROM sequin.collections c JOIN pg_class r ON r.oid = to_regclass(c.shadow_table)
                  WHERE c.foreign_table = $1",
                Some(1),
                &args,
            )
            .map_err(spi_error)?;
        if table.is_empty() {
            return Err(not_registered(foreign_table));
        }
        let row = table.first();
        Ok(ShadowStats {
            shadow_oid: row.get::<pg_sys::Oid>(1).map_err(spi_error)?.unwrap_or(pg_sys::InvalidOid),
            rows: row.get::<f64>(2).map_err(spi_error)?.unwrap_or(1000.0),
            pages: row.get::<f64>(3).map_err(spi_error)?.unwrap_or(10.0),
        })
    }))
}

fn shadow_value(collection: &Collection, id: &str, expression: &str) -> Result<Option<Value>> {
    run_as(collection.shadow_owner, || Spi::connect(|client| {
        let args: [DatumWithOid; 1] = [id.into()];
        let sql = format!("SELECT {expression} FROM {} s WHERE s.id = $1", collection.shadow.table);
        let table = client.select(&sql, Some(1), &args).map_err(spi_error)?;
        if table.is_empty() {
            return Ok(None);
        }
        Ok(table.first().get::<JsonB>(1).map_err(spi_error)?.map(|j| j.0))
    }))
}

/// The shadow row of a record, as JSON (for RETURNING).
pub fn shadow_row_json(collection: &Collection, id: &str) -> Result<Option<Value>> {
    shadow_value(collection, id, "to_jsonb(s)")
}

/// The API object last seen for a record.
pub fn shadow_raw(collection: &Collection, id: &str) -> Result<Option<Value>> {
    Ok(shadow_value(collection, id, "s.raw")?.filter(|v| !v.is_null()))
}

/// The API object last seen for a record and its version (µs), for a
/// batch UPDATE that builds the new record from it.
pub fn shadow_raw_and_version(collection: &Collection, id: &str) -> Result<Option<(Value, i64)>> {
    let pair = shadow_value(
        collection,
        id,
        "jsonb_build_array(s.raw, (extract(epoch FROM s.upstream_updated_at) * 1000000)::bigint)",
    )?;
    Ok(pair.and_then(|pair| Some((pair.get(0)?.clone(), pair.get(1)?.as_i64().unwrap_or(0)))))
}

/// Whether the extension exists in this database (the worker may start first).
pub fn extension_installed() -> bool {
    Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'sequin_fdw')")
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Collections whose next poll is due, most overdue first.
pub fn due_collections() -> Result<Vec<pg_sys::Oid>> {
    Spi::connect(|client| {
        let mut due = Vec::new();
        for row in client
            .select(
                "SELECT c.foreign_table FROM sequin.collections c
                   JOIN pg_foreign_table ft ON ft.ftrelid = c.foreign_table
                  WHERE c.next_poll_at <= clock_timestamp()
                    AND NOT EXISTS (SELECT 1 FROM sequin.paused_servers p WHERE p.server = ft.ftserver)
                  ORDER BY c.next_poll_at",
                None,
                &[],
            )
            .map_err(spi_error)?
        {
            if let Some(oid) = row.get::<pg_sys::Oid>(1).map_err(spi_error)? {
                due.push(oid);
            }
        }
        Ok(due)
    })
}

/// Makes every collection due now.
pub fn poll_all_now() -> Result<()> {
    Spi::run("UPDATE sequin.collections SET next_poll_at = clock_timestamp()").map_err(spi_error)
}

/// Time until the next collection is due (None when there is none).
pub fn time_until_next_poll() -> Option<Duration> {
    let millis = Spi::get_one::<f64>(
        "SELECT greatest(0, extract(epoch FROM min(c.next_poll_at) - clock_timestamp()) * 1000)::float8
           FROM sequin.collections c JOIN pg_foreign_table ft ON ft.ftrelid = c.foreign_table
          WHERE NOT EXISTS (SELECT 1 FROM sequin.paused_servers p WHERE p.server = ft.ftserver)",
    )
    .ok()
    .flatten()?;
    Some(Duration::from_millis(millis as u64))
}

/// The stored cursor of a collection.
pub fn cursor(foreign_table: pg_sys::Oid) -> Result<Value> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    Spi::get_one_with_args::<JsonB>("SELECT cursor FROM sequin.collections WHERE foreign_table = $1", &args)
        .map_err(spi_error)?
        .map(|j| j.0)
        .ok_or_else(|| not_registered(foreign_table))
}

/// The change-feed position a backfill over existing rows began at, when
/// the collection is in one (see `collections.backfill_from_idx`).
pub fn backfill_from_idx(foreign_table: pg_sys::Oid) -> Result<Option<i64>> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    Spi::get_one_with_args::<i64>(
        "SELECT (SELECT backfill_from_idx FROM sequin.collections WHERE foreign_table = $1 AND phase = 'backfill')",
        &args,
    )
    .map_err(spi_error)
}

/// Remembers the ids a backfill over existing rows has seen.
pub fn remember_seen(foreign_table: pg_sys::Oid, ids: &[&str]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    let args: [DatumWithOid; 2] = [foreign_table.into(), ids.into()];
    Spi::run_with_args(
        "INSERT INTO sequin.backfill_seen (foreign_table, id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        &args,
    )
    .map_err(spi_error)
}

/// Ends a backfill's bookkeeping of seen ids.
pub fn forget_seen(foreign_table: pg_sys::Oid) -> Result<()> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    Spi::run_with_args("DELETE FROM sequin.backfill_seen WHERE foreign_table = $1", &args).map_err(spi_error)?;
    Spi::run_with_args("UPDATE sequin.collections SET backfill_from_idx = NULL WHERE foreign_table = $1", &args)
        .map_err(spi_error)
}

/// Stores a page's cursor and counters; called in the transaction that
/// applied the page, so both commit or neither does.
pub fn save_page(
    foreign_table: pg_sys::Oid,
    page: &SyncPage,
    changed: u64,
    poisoned: usize,
    warning: Option<&str>,
    poll_interval: Duration,
) -> Result<()> {
    let next_in = if page.more { 0.0 } else { poll_interval.as_secs_f64() };
    let args: [DatumWithOid; 8] = [
        foreign_table.into(),
        JsonB(page.cursor.clone()).into(),
        page.phase.as_str().into(),
        (changed as i64).into(),
        (page.records.len() as i64).into(),
        next_in.into(),
        (poisoned as i64).into(),
        warning.into(),
    ];
    Spi::run_with_args(
        "UPDATE sequin.collections SET
                cursor = $2,
                backfill_rows = backfill_rows + CASE WHEN phase = 'backfill' THEN $5 ELSE 0 END,
                backfill_started_at = coalesce(backfill_started_at, clock_timestamp()),
                backfill_finished_at = CASE WHEN phase = 'backfill' AND $3 = 'incremental'
                                            THEN clock_timestamp() ELSE backfill_finished_at END,
                phase = $3,
                changes_applied = changes_applied + $4,
                requests = requests + 1,
                last_poll_at = clock_timestamp(),
                last_success_at = clock_timestamp(),
                consecutive_failures = 0,
                next_poll_at = clock_timestamp() + make_interval(secs => $6),
                poisoned_records = poisoned_records + $7,
                last_warning = coalesce($8, last_warning),
                last_warning_at = CASE WHEN $8 IS NULL THEN last_warning_at ELSE clock_timestamp() END
          WHERE foreign_table = $1",
        &args,
    )
    .map_err(spi_error)
}

/// Starts the collection's backfill over, keeping its rows (they are
/// updated as the backfill sees them, and the ones it does not see are
/// marked deleted when it ends). `warning` says why, when it was not asked for.
pub fn restart_backfill(foreign_table: pg_sys::Oid, warning: Option<&str>) -> Result<()> {
    let args: [DatumWithOid; 2] = [foreign_table.into(), warning.into()];
    Spi::run_with_args("DELETE FROM sequin.backfill_seen WHERE foreign_table = $1", &args[..1])
        .map_err(spi_error)?;
    Spi::run_with_args(
        "UPDATE sequin.collections SET
                cursor = '{}', phase = 'backfill', backfill_rows = 0,
                backfill_from_idx = (SELECT last_value FROM sequin.updated_idx_seq),
                backfill_started_at = NULL, backfill_finished_at = NULL,
                consecutive_failures = 0, next_poll_at = clock_timestamp(),
                last_warning = coalesce($2, last_warning),
                last_warning_at = CASE WHEN $2 IS NULL THEN last_warning_at ELSE clock_timestamp() END
          WHERE foreign_table = $1",
        &args,
    )
    .map_err(spi_error)
}

/// Makes a collection due now.
pub fn poll_now(foreign_table: pg_sys::Oid) -> Result<()> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    Spi::run_with_args("UPDATE sequin.collections SET next_poll_at = clock_timestamp() WHERE foreign_table = $1", &args)
        .map_err(spi_error)
}

/// Pauses (or resumes) the sync of every collection of a server.
pub fn set_paused(server: pg_sys::Oid, paused: bool) -> Result<()> {
    let args: [DatumWithOid; 1] = [server.into()];
    let sql = if paused {
        "INSERT INTO sequin.paused_servers (server) VALUES ($1) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM sequin.paused_servers WHERE server = $1"
    };
    Spi::run_with_args(sql, &args).map_err(spi_error)?;
    if !paused {
        // Whatever came due while paused is polled now.
        Spi::run_with_args(
            "UPDATE sequin.collections c SET next_poll_at = least(c.next_poll_at, clock_timestamp())
               FROM pg_foreign_table ft WHERE ft.ftrelid = c.foreign_table AND ft.ftserver = $1",
            &args,
        )
        .map_err(spi_error)?;
    }
    Ok(())
}

/// Records a failed poll and schedules a retry with exponential backoff
/// (the poll interval, doubled per consecutive failure, at most 5 minutes).
pub fn record_failure(foreign_table: pg_sys::Oid, message: &str, poll_interval: Duration) -> Result<()> {
    let args: [DatumWithOid; 3] = [foreign_table.into(), message.into(), poll_interval.as_secs_f64().into()];
    Spi::run_with_args(
        "UPDATE sequin.collections SET
                last_error = $2,
                last_error_at = clock_timestamp(),
                last_poll_at = clock_timestamp(),
                requests = requests + 1,
                consecutive_failures = consecutive_failures + 1,
                next_poll_at = clock_timestamp()
                    + least(interval '5 minutes',
                            make_interval(secs => $3 * power(2, least(consecutive_failures, 12))))
          WHERE foreign_table = $1",
        &args,
    )
    .map_err(spi_error)
}
