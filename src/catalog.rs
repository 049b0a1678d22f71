//! The sync catalog (`sequin.collections`): registering a foreign table and
//! its shadow, and the per-collection sync state the worker reads and
//! advances. All SQL against the catalog lives here.

use crate::error::{ErrorKind, Result, SequinError};
use crate::fdw::options::{load_foreign_table, ForeignTableConfig, SweepInterval};
use crate::privilege::{catalog_owner, run_as};
use crate::providers::{CollectionSchema, CollectionSpec, SyncPage, Writable, WriteValue};
use crate::schema::{bind, Mismatch, TableColumn};
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
    /// The table's columns bound to the API's fields (none while `schema`
    /// is unknown).
    /// Shared with the sync's helper threads (`offload`).
    pub spec: std::sync::Arc<CollectionSpec>,
    /// The collection's schema: compiled, or as the API last described it;
    /// None until the API has been asked (`discovery::ensure_described`).
    pub schema: Option<CollectionSchema>,
    /// The table's own columns, with their `field` options.
    pub columns: Vec<TableColumn>,
    /// Columns whose field the API no longer has (or cannot fit): NULL.
    pub mismatches: Vec<Mismatch>,
    pub shadow: Shadow,
    pub shadow_owner: pg_sys::Oid,
}

/// A provider's compiled schema of the collection an option names.
fn compiled_schema(config: &ForeignTableConfig) -> Result<Option<CollectionSchema>> {
    let provider = config.server.provider;
    if provider.describes_itself() {
        return Ok(None);
    }
    match provider.compiled_collection(&config.table.collection) {
        Some(schema) => Ok(Some(schema)),
        None => Err(SequinError::new(
            ErrorKind::InvalidOptionValue,
            format!("{} has no collection \"{}\"", provider.label(), config.table.collection),
        )
        .with_hint(format!(
            "Available collections: {}.",
            provider.compiled_collections().iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The refusal of a table whose columns do not fit the API's fields.
pub fn mismatch_error(table: &str, schema: &CollectionSchema, mismatches: &[Mismatch]) -> SequinError {
    let problems = mismatches.iter().map(|m| m.describe(&schema.name)).collect::<Vec<_>>().join("; ");
    let available = schema
        .fields
        .iter()
        .filter(|f| f.sql_type.is_some())
        .take(100)
        .map(|f| format!("{} ({})", f.name, f.api_type))
        .collect::<Vec<_>>()
        .join(", ");
    let more = schema.fields.len().saturating_sub(100);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    SequinError::new(ErrorKind::InvalidOptionValue, format!("{table}: {problems}"))
        .with_detail("A column holds the API field its option field names (else the field of its name), in a type that can hold its values.")
        .with_hint(format!("Fields of {}: {available}{more}.", schema.name))
}

/// Creates the shadow table and catalog row of a new foreign table. Its
/// columns are checked against the collection's schema now where the API
/// can be asked (compiled, described by IMPORT just before, or with the
/// current user's credentials); else at the first sync.
pub fn register(foreign_table: pg_sys::Oid) -> Result<()> {
    let config = load_foreign_table(foreign_table)?;
    let schema = match compiled_schema(&config)? {
        Some(schema) => Some(schema),
        None => crate::discovery::describe_at_create(&config)?,
    };
    Spi::connect_mut(|client| {
        let args: [DatumWithOid; 1] = [foreign_table.into()];
        let names = crate::plans::execute(
                client,
                "SELECT n.nspname::text, c.relname::text FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
                Some(1),
                &args,
            )
            .map_err(spi_error)?
            .first()
            .get_two::<String, String>()
            .map_err(spi_error)?;
        let (Some(schema_name), Some(name)) = names else {
            return Err(SequinError::internal("foreign table vanished during registration"));
        };
        let mut columns = Vec::new();
        let mut kinds = Vec::new();
        let mut table_columns = Vec::new();
        for row in crate::plans::execute(
                client,
                "SELECT attname::text, format_type(atttypid, atttypmod), atttypid, attgenerated <> '' OR attidentity <> '',
                        (SELECT option_value FROM pg_options_to_table(attfdwoptions) WHERE option_name = 'field')
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
            let field: Option<String> = row.get(5).map_err(spi_error)?;
            kinds.push((name.clone(), type_oid, generated));
            table_columns.push(TableColumn { name: name.clone(), sql_type: sql_type.clone().unwrap_or_default(), field });
            columns.push((name, sql_type.unwrap_or_default()));
        }
        let table = format!("{}.{}", quote_identifier(&schema_name), quote_identifier(&name));
        let spec = match &schema {
            Some(schema) => {
                let bound = bind(schema, &table_columns);
                if !bound.mismatches.is_empty() {
                    return Err(mismatch_error(&table, schema, &bound.mismatches));
                }
                Some(bound.spec)
            }
            None => None,
        };
        crate::fdw::ddl::check_columns_allowed(&table, &kinds)?;
        let (shadow_name, restored) = match &config.table.shadow_table {
            Some(named) => named_shadow(client, named, &columns)?,
            None => (shadow_table_name(client, &schema_name, &name, foreign_table)?, false),
        };
        // A restored shadow table gets its keys, indexes and triggers from
        // the rest of the dump, after its rows.
        if !restored {
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
                    quote_identifier(&schema_name),
                    quote_identifier(&name)
                ))
            );
            client.update(&comment, None, &[]).map_err(spi_error)?;
        }
        for (column, _) in &columns {
            comment_column(client, foreign_table, &table, column, &config, spec.as_ref())?;
        }
        let phase = if restored { "restoring" } else { "backfill" };
        // A compiled schema is not kept: the library's is always current.
        let described = schema.as_ref().filter(|_| config.server.provider.describes_itself()).map(|s| JsonB(s.to_json()));
        let args: [DatumWithOid; 5] = [
            foreign_table.into(),
            config.table.collection.as_str().into(),
            shadow_name.as_str().into(),
            phase.into(),
            described.into(),
        ];
        registering(|| {
            client.update(
                "INSERT INTO sequin.collections (foreign_table, collection, shadow_table, phase, schema, schema_checked_at)
                 VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 IS NOT NULL THEN now() END)",
                None,
                &args,
            )
        })
        .map_err(spi_error)?;
        Ok(shadow_name)
    })
    .and_then(|shadow_name| {
        make_restorable(foreign_table, &shadow_name)?;
        crate::fdw::ddl::mirror_read_privileges(foreign_table, &shadow_name)
    })
}

thread_local! {
    static REGISTERING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as registration writing the catalog: the catalog's insert
/// trigger takes every other insert for a restored row (sequin.registering()).
fn registering<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            REGISTERING.with(|r| r.set(self.0));
        }
    }
    let _reset = Reset(REGISTERING.with(|r| r.replace(true)));
    f()
}

pub fn is_registering() -> bool {
    REGISTERING.with(std::cell::Cell::get)
}

/// The shadow table a foreign table names in its `shadow_table` option:
/// one that a restore created before it (adopted: `true`), or a new one by
/// that name. It must be in schema sequin_shadow, belong to no other
/// foreign table, and have exactly the columns this table's shadow needs.
fn named_shadow(client: &pgrx::spi::SpiClient<'_>, named: &str, columns: &[(String, String)]) -> Result<(String, bool)> {
    let bad = |why: String| {
        SequinError::new(ErrorKind::InvalidOptionValue, format!("invalid shadow_table '{named}': {why}")).with_hint(
            "Leave the option out: registration names the shadow table and records it here (a dump carries it to the restored table).",
        )
    };
    let args: [DatumWithOid; 1] = [named.into()];
    let row = client.select(
            "SELECT n.nspname::text, c.relname::text, c.oid, c.relkind::text,
                    c.oid IS NOT NULL AND EXISTS (SELECT 1 FROM sequin.collections k WHERE to_regclass(k.shadow_table) = c.oid),
                    p.parts[2]
               FROM (SELECT parse_ident($1) AS parts) p
               JOIN pg_namespace n ON n.nspname = p.parts[1] AND array_length(p.parts, 1) = 2
               LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.parts[2]",
            Some(1),
            &args,
        )
        .map_err(|_| bad("not a schema-qualified name".into()))?;
    let Some(row) = row.into_iter().next() else {
        return Err(bad("it must be a table of schema sequin_shadow".into()));
    };
    let schema: String = row.get(1).map_err(spi_error)?.unwrap_or_default();
    if schema != "sequin_shadow" {
        return Err(bad("it must be a table of schema sequin_shadow".into()));
    }
    let part: String = row.get(6).map_err(spi_error)?.unwrap_or_default();
    let name = format!("sequin_shadow.{}", quote_identifier(&part));
    let Some(relname) = row.get::<String>(2).map_err(spi_error)? else {
        return Ok((name, false));
    };
    let name = format!("sequin_shadow.{}", quote_identifier(&relname));
    let relation: pg_sys::Oid = row.get(3).map_err(spi_error)?.unwrap_or(pg_sys::InvalidOid);
    if row.get::<String>(4).map_err(spi_error)?.as_deref() != Some("r") {
        return Err(bad("it exists and is not a table".into()));
    }
    if row.get::<bool>(5).map_err(spi_error)? == Some(true) {
        return Err(bad("it is the shadow table of another foreign table".into()));
    }
    let expected = crate::shadow::table_columns(columns)?;
    let args: [DatumWithOid; 1] = [relation.into()];
    let mut actual = Vec::new();
    for row in client.select(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            None,
            &args,
        )
        .map_err(spi_error)?
    {
        actual.push((row.get::<String>(1).map_err(spi_error)?.unwrap_or_default(), row.get::<String>(2).map_err(spi_error)?.unwrap_or_default()));
    }
    if actual != expected {
        let list = |c: &[(String, String)]| c.iter().map(|(n, t)| format!("{n} {t}")).collect::<Vec<_>>().join(", ");
        return Err(bad(format!("its columns ({}) are not those of this table's shadow ({})", list(&actual), list(&expected))));
    }
    Ok((name, true))
}

/// What a dump needs to restore a synced table: its `shadow_table` option
/// (so that the restored foreign table finds its restored rows) and a
/// dependency on its shadow table (so that pg_dump creates the shadow
/// table first, and the shadow table cannot be dropped from under it).
/// Idempotent: also brings tables registered by 0.1.0 up to date.
pub fn make_restorable(foreign_table: pg_sys::Oid, shadow_table: &str) -> Result<()> {
    let config = load_foreign_table(foreign_table)?;
    let action = match config.table.shadow_table.as_deref() {
        None => Some("ADD"),
        // Written by hand another way (quotes): as registration spells it.
        Some(named) if named != shadow_table => Some("SET"),
        Some(_) => None,
    };
    if let Some(action) = action {
        let sql = format!(
            "ALTER FOREIGN TABLE {} OPTIONS ({action} shadow_table {})",
            foreign_table_name(foreign_table)?,
            crate::sql::literal(shadow_table)
        );
        crate::fdw::ddl::own_ddl(|| Spi::run(&sql)).map_err(spi_error)?;
    }
    let shadow_oid = crate::plans::get_one::<pg_sys::Oid>("SELECT $1::regclass::oid", &[shadow_table.into()])
        .map_err(spi_error)?
        .ok_or_else(|| SequinError::internal("shadow table vanished during registration"))?;
    let args: [DatumWithOid; 2] = [foreign_table.into(), shadow_oid.into()];
    let recorded = crate::plans::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_depend WHERE classid = 'pg_class'::regclass AND objid = $1
                          AND refclassid = 'pg_class'::regclass AND refobjid = $2 AND deptype = 'n')",
        &args,
    )
    .map_err(spi_error)?;
    if recorded != Some(true) {
        let address = |oid| pg_sys::ObjectAddress { classId: pg_sys::RelationRelationId, objectId: oid, objectSubId: 0 };
        let (depender, referenced) = (address(foreign_table), address(shadow_oid));
        unsafe { pg_sys::recordDependencyOn(&depender, &referenced, pg_sys::DependencyType::DEPENDENCY_NORMAL) };
    }
    Ok(())
}

fn foreign_table_name(foreign_table: pg_sys::Oid) -> Result<String> {
    crate::plans::get_one::<String>("SELECT $1::regclass::text", &[foreign_table.into()])
        .map_err(spi_error)?
        .ok_or_else(|| SequinError::internal("foreign table vanished during registration"))
}

/// Says in a column's comment (`\d+`) who owns it, unless it has one:
/// the API (read-only), the API after INSERT, or the sync.
fn comment_column(
    client: &mut pgrx::spi::SpiClient<'_>,
    foreign_table: pg_sys::Oid,
    table: &str,
    column: &str,
    config: &ForeignTableConfig,
    spec: Option<&CollectionSpec>,
) -> Result<()> {
    let provider = config.server.provider;
    let writable = spec.and_then(|s| s.column(column)).map(|c| c.writable);
    let text = match (crate::shadow::standard_field_comment(column), writable) {
        (Some(text), _) => text.to_string(),
        (None, _) if column == "id" => {
            format!("Read-only: {} assigns the id when a row is inserted (RETURNING id shows it).", provider.label())
        }
        (None, Some(Writable::Never)) => {
            format!("Read-only: assigned by {}. An UPDATE may name it with its current value.", provider.label())
        }
        (None, Some(Writable::OnInsert)) => format!("Set by INSERT only: {} fixes it afterwards.", provider.label()),
        _ => return Ok(()),
    };
    let args: [DatumWithOid; 2] = [foreign_table.into(), column.into()];
    let has_comment = crate::plans::execute(
            client,
            "SELECT 1 FROM pg_attribute a WHERE a.attrelid = $1 AND a.attname = $2
                AND col_description(a.attrelid, a.attnum) IS NOT NULL",
            Some(1),
            &args,
        )
        .map_err(spi_error)?
        .len()
        > 0;
    if !has_comment {
        let sql = format!(
            "COMMENT ON COLUMN {table}.{} IS {}",
            quote_identifier(column),
            crate::sql::literal(&text)
        );
        client.update(&sql, None, &[]).map_err(spi_error)?;
    }
    Ok(())
}

/// The collection a foreign table was registered for.
pub fn registered_collection(foreign_table: pg_sys::Oid) -> Result<String> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    run_as(catalog_owner(), || {
        crate::plans::get_one::<String>("SELECT collection FROM sequin.collections WHERE foreign_table = $1", &args)
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
    let taken = client.select(
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

/// Loads a registered collection with its current options, bound to its
/// schema as last described.
pub fn load_collection(foreign_table: pg_sys::Oid) -> Result<Collection> {
    let config = load_foreign_table(foreign_table)?;
    let compiled = compiled_schema(&config)?;
    // The catalog row and the columns as this backend keeps them: this runs
    // for every statement that writes.
    let registered = registered(foreign_table)?;
    let schema = compiled.or_else(|| registered.described.clone());
    let feed_name = relation_name(foreign_table);
    let shadow = Shadow::new(
        registered.shadow_table.clone(),
        registered.shadow_columns.clone(),
        feed_name,
        config.table.delete_mode,
        &config.server,
    );
    Ok(Collection::bound(config, schema, registered.columns.clone(), shadow, registered.shadow_owner))
}

/// The foreign table's row of `sequin.collections`, with its shadow table
/// resolved (`registered` keeps it).
fn registered(foreign_table: pg_sys::Oid) -> Result<std::rc::Rc<crate::registered::Registered>> {
    crate::registered::get(foreign_table, || {
        run_as(catalog_owner(), || Spi::connect_mut(|client| {
            let args: [DatumWithOid; 1] = [foreign_table.into()];
            let table = crate::plans::execute(
                    client,
                    // (The schema as a key of the row: a catalog of 0.1.0
                    // has no such column, and its tables are read before
                    // ALTER EXTENSION … UPDATE.)
                    "SELECT c.shadow_table, r.oid, r.relowner, to_jsonb(c) -> 'schema', c.phase = 'restoring'
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
            let shadow_oid = row.get::<pg_sys::Oid>(2).map_err(spi_error)?.unwrap_or(pg_sys::InvalidOid);
            Ok(crate::registered::Registered {
                shadow_table: row.get::<String>(1).map_err(spi_error)?.unwrap_or_default(),
                shadow_oid,
                shadow_owner: row.get::<pg_sys::Oid>(3).map_err(spi_error)?.unwrap_or(pg_sys::InvalidOid),
                described: row.get::<JsonB>(4).map_err(spi_error)?.and_then(|j| CollectionSchema::from_json(&j.0)),
                columns: table_columns(foreign_table),
                shadow_columns: crate::attributes::of(shadow_oid, false)
                    .iter()
                    .filter(|a| a.name != "updated_idx")
                    .map(|a| a.quoted_name())
                    .collect(),
                restoring: row.get::<bool>(5).map_err(spi_error)?.unwrap_or(false),
            })
        }))
    })
}

/// The foreign table's columns, with their `field` options.
fn table_columns(foreign_table: pg_sys::Oid) -> Vec<TableColumn> {
    crate::attributes::of(foreign_table, true)
        .into_iter()
        .map(|a| TableColumn {
            sql_type: a.type_name(),
            field: a.options.iter().find(|(name, _)| name == "field").map(|(_, value)| value.clone()),
            name: a.name,
        })
        .collect()
}

/// A relation's schema-qualified name, quoted where SQL needs it.
fn relation_name(relid: pg_sys::Oid) -> String {
    // Qualified whatever the search_path, so that the sync worker and every
    // writer name a table alike in the change feed (regclassout leaves out
    // a schema the search_path finds).
    // SAFETY: both names are looked up first (NULL: the relation is gone);
    // quote_qualified_identifier returns a palloc'd C string.
    unsafe {
        let name = pg_sys::get_rel_name(relid);
        let namespace = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        if name.is_null() || namespace.is_null() {
            return relid.to_u32().to_string();
        }
        let text = pg_sys::quote_qualified_identifier(namespace, name);
        std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned()
    }
}

impl Collection {
    fn bound(
        config: ForeignTableConfig,
        schema: Option<CollectionSchema>,
        columns: Vec<TableColumn>,
        shadow: Shadow,
        shadow_owner: pg_sys::Oid,
    ) -> Collection {
        let (spec, mismatches) = match &schema {
            Some(schema) => {
                let bound = bind(schema, &columns);
                (bound.spec, bound.mismatches)
            }
            None => (
                CollectionSpec {
                    name: config.table.collection.clone(),
                    fields: Vec::new(),
                    columns: Vec::new(),
                    writes: crate::providers::WriteOp::ALL.to_vec(),
                    writes_hint: None,
                    settings: Vec::new(),
                },
                Vec::new(),
            ),
        };
        let mut spec = spec;
        spec.settings = config.server.settings.iter().chain(&config.table.settings).cloned().collect();
        Collection { config, spec: std::sync::Arc::new(spec), schema, columns, mismatches, shadow, shadow_owner }
    }

    /// The collection bound to a schema just described.
    pub fn with_schema(self, schema: CollectionSchema) -> Collection {
        Collection::bound(self.config, Some(schema), self.columns, self.shadow, self.shadow_owner)
    }

    /// How often the collection is swept while its change feed works: the
    /// table's `sweep_interval`, else the provider's default.
    pub fn sweep_every(&self) -> Option<Duration> {
        match self.config.table.sweep_interval {
            SweepInterval::ProviderDefault => self.config.server.provider.default_sweep_interval(&self.spec),
            SweepInterval::Off => None,
            SweepInterval::Every(every) => Some(every),
        }
    }
}

/// Keeps the schema the API described for a collection, and what differs
/// from its table (`discovery::drift`).
pub fn store_schema(foreign_table: pg_sys::Oid, collection: &Collection) -> Result<()> {
    let Some(schema) = &collection.schema else { return Ok(()) };
    let drift = crate::discovery::drift(collection);
    let args: [DatumWithOid; 3] = [foreign_table.into(), JsonB(schema.to_json()).into(), drift.into()];
    // (The subquery sees the row as it was before this UPDATE.)
    let changed = run_as(catalog_owner(), || {
        crate::plans::get_one::<bool>(
            "UPDATE sequin.collections SET schema = $2, schema_checked_at = now(), schema_drift = $3 WHERE foreign_table = $1
             RETURNING (SELECT o.schema FROM sequin.collections o WHERE o.foreign_table = $1) IS DISTINCT FROM $2",
            &args,
        )
    })
    .map_err(spi_error)?;
    if changed == Some(true) {
        crate::registered::forget(foreign_table);
    }
    Ok(())
}

/// Makes the collection's schema due to be asked for again.
pub fn forget_schema_check(foreign_table: pg_sys::Oid) -> Result<()> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    run_as(catalog_owner(), || {
        crate::plans::run("UPDATE sequin.collections SET schema_checked_at = NULL WHERE foreign_table = $1", &args)
    })
    .map_err(spi_error)
}

/// The collection's schema was last asked for longer than `every` ago.
pub fn schema_check_due(foreign_table: pg_sys::Oid, every: Duration) -> Result<bool> {
    let args: [DatumWithOid; 2] = [foreign_table.into(), (every.as_secs_f64()).into()];
    run_as(catalog_owner(), || {
        crate::plans::get_one::<bool>(
            "SELECT schema_checked_at IS NULL OR schema_checked_at < now() - make_interval(secs => $2)
               FROM sequin.collections WHERE foreign_table = $1",
            &args,
        )
    })
    .map_err(spi_error)
    .map(|due| due.unwrap_or(false))
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
    let shadow_oid = registered(foreign_table)?.shadow_oid;
    // SAFETY: the relation is opened (NULL when it is gone) and closed
    // again, its lock released, as pg_relation_size does.
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let shadow = pg_sys::try_relation_open(shadow_oid, lock);
        if shadow.is_null() {
            return Err(not_registered(foreign_table));
        }
        let pages = f64::from(pg_sys::RelationGetNumberOfBlocksInFork(shadow, pg_sys::ForkNumber::MAIN_FORKNUM));
        let (reltuples, relpages) = (f64::from((*(*shadow).rd_rel).reltuples), f64::from((*(*shadow).rd_rel).relpages));
        pg_sys::relation_close(shadow, lock);
        Ok(ShadowStats {
            shadow_oid,
            // Never analyzed: 50 rows a page, as Postgres guesses.
            rows: if reltuples >= 0.0 { reltuples } else { pages.max(1.0) * 50.0 },
            pages: relpages.max(pages),
        })
    }
}

fn shadow_value(collection: &Collection, id: &str, expression: &str) -> Result<Option<Value>> {
    run_as(collection.shadow_owner, || Spi::connect_mut(|client| {
        let args: [DatumWithOid; 1] = [id.into()];
        let sql = format!("SELECT {expression} FROM {} s WHERE s.id = $1", collection.shadow.table);
        let table = crate::plans::execute(client, &sql, Some(1), &args).map_err(spi_error)?;
        if table.is_empty() {
            return Ok(None);
        }
        Ok(table.first().get::<JsonB>(1).map_err(spi_error)?.map(|j| j.0))
    }))
}

/// Which of these columns' values differ from the record's row in the
/// shadow table (all of them when it has no row). The values are converted
/// to the columns' types first, so `'2024-01-01 00:00:00+00'` equals a
/// timestamp stored as `2024-01-01T00:00:00Z`.
pub fn changed_columns(collection: &Collection, id: &str, values: &[&(String, WriteValue)]) -> Result<Vec<String>> {
    let names: Vec<String> = values.iter().map(|(name, _)| name.clone()).collect();
    let row: serde_json::Map<String, Value> = values
        .iter()
        .map(|(name, value)| {
            let json = match value {
                WriteValue::Null => Value::Null,
                WriteValue::Text(text) => Value::String(text.clone()),
                WriteValue::Json(json) => json.clone(),
            };
            (name.clone(), json)
        })
        .collect();
    let sql = format!(
        "SELECT array(SELECT k FROM unnest($2::text[]) AS k
                       WHERE to_jsonb(n) -> k IS DISTINCT FROM to_jsonb(s) -> k)
           FROM {t} s, jsonb_populate_record(NULL::{t}, $3) n
          WHERE s.id = $1",
        t = collection.shadow.table
    );
    let args: [DatumWithOid; 3] = [id.into(), names.clone().into(), JsonB(Value::Object(row)).into()];
    let changed = run_as(collection.shadow_owner, || crate::plans::get_one::<Vec<String>>(&sql, &args));
    match changed {
        Ok(Some(changed)) => Ok(changed),
        Ok(None) | Err(pgrx::spi::Error::InvalidPosition) => Ok(names),
        Err(e) => Err(spi_error(e)),
    }
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

/// Whether the extension exists in this database at the library's version
/// (the worker may start first). After a new library is installed and the
/// server restarted, the extension's SQL objects stay at the old version
/// until `ALTER EXTENSION sequin_fdw UPDATE`: until then the worker leaves
/// the database alone (its catalog may lack what this library reads), and
/// says so once in the server log.
pub fn extension_installed() -> bool {
    let installed = crate::plans::get_one::<String>("SELECT extversion FROM pg_extension WHERE extname = 'sequin_fdw'", &[])
        .ok()
        .flatten();
    match installed {
        Some(version) if version == LIBRARY_VERSION => true,
        Some(version) => {
            WAITING_FOR_UPDATE.with(|seen| {
                if seen.borrow().as_deref() != Some(version.as_str()) {
                    log!(
                        "sequin_fdw: the extension is at version {version} and the library at {LIBRARY_VERSION}: \
                         the sync waits for ALTER EXTENSION sequin_fdw UPDATE"
                    );
                    *seen.borrow_mut() = Some(version);
                }
            });
            false
        }
        None => false,
    }
}

/// The version of the extension's SQL this library works with.
pub const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

thread_local! {
    /// The older extension version last reported as waiting for its update.
    static WAITING_FOR_UPDATE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// What the worker has to do: the collections whose next poll has come
/// (`false`) or their sweep (`true`), to start or to fetch their next page,
/// most overdue first; and how long until the next one is due. Sweeps run
/// in the incremental phase only: a backfill over existing rows is a full
/// comparison already. One query, planned once: the worker asks after
/// every poll.
pub struct Work {
    pub due: Vec<(pg_sys::Oid, bool)>,
    pub next_in: Option<Duration>,
}

pub fn due_work() -> Result<Work> {
    Spi::connect_mut(|client| {
        // One pass over the collections (each gives its poll and its sweep
        // as two rows), whatever plan is chosen: the worker runs it after
        // every poll.
        let sql = "SELECT c.foreign_table::oid, s.sweep, extract(epoch FROM s.due_at - statement_timestamp())::float8
                     FROM sequin.collections c
                     JOIN pg_foreign_table ft ON ft.ftrelid = c.foreign_table
                     CROSS JOIN LATERAL (VALUES
                         (false, CASE WHEN c.phase <> 'restoring' AND NOT (c.phase = 'incremental' AND c.feed_refused IS NOT NULL)
                                      THEN c.next_poll_at END),
                         (true, CASE WHEN c.phase = 'incremental' AND c.backfill_from_idx IS NULL
                                     THEN c.next_sweep_at END)) AS s(sweep, due_at)
                    WHERE s.due_at IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM sequin.paused_servers p WHERE p.server = ft.ftserver)
                    ORDER BY s.due_at";
        let mut work = Work { due: Vec::new(), next_in: None };
        for row in crate::plans::execute(client, sql, None, &[]).map_err(spi_error)? {
            let (Some(oid), Some(sweep), Some(due_in)) = (
                row.get::<pg_sys::Oid>(1).map_err(spi_error)?,
                row.get::<bool>(2).map_err(spi_error)?,
                row.get::<f64>(3).map_err(spi_error)?,
            ) else {
                continue;
            };
            if due_in <= 0.0 {
                work.due.push((oid, sweep));
            } else if work.next_in.is_none() {
                // Rows come most overdue first: the first one not yet due
                // is the next.
                work.next_in = Some(Duration::try_from_secs_f64(due_in).unwrap_or(Duration::MAX));
            }
        }
        Ok(work)
    })
}

/// Collections restored from a dump go on once their shadow table is
/// whole again: the dump creates its primary key and guard trigger after
/// its rows, and the worker must not write before. They go on from the
/// sync state the dump carried, or, when the dump had none (the catalog
/// was left out), with a backfill over the restored rows.
pub fn finish_restores() -> Result<()> {
    let restored = Spi::connect_mut(|client| {
        let mut restored = Vec::new();
        for row in crate::plans::execute(
                client,
                "SELECT c.foreign_table::oid, c.restored_phase IS NOT NULL FROM sequin.collections c
                  WHERE c.phase = 'restoring'
                    AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(c.shadow_table) AND i.indisprimary)
                    AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = to_regclass(c.shadow_table)
                                   AND t.tgname = 'sequin_shadow_guard' AND t.tgenabled = 'A')",
                None,
                &[],
            )
            .map_err(spi_error)?
        {
            if let (Some(oid), Some(with_state)) = (row.get::<pg_sys::Oid>(1).map_err(spi_error)?, row.get::<bool>(2).map_err(spi_error)?) {
                restored.push((oid, with_state));
            }
        }
        Ok::<_, SequinError>(restored)
    })?;
    for (foreign_table, with_state) in restored {
        if with_state {
            Spi::run_with_args(
                "UPDATE sequin.collections SET phase = restored_phase, restored_phase = NULL, next_poll_at = clock_timestamp()
                  WHERE foreign_table = $1",
                &[foreign_table.into()],
            )
            .map_err(spi_error)?;
        } else {
            restart_backfill(
                foreign_table,
                Some("Restored from a dump without its sync state (sequin.collections): the restored rows are compared with a new backfill."),
            )?;
        }
    }
    Ok(())
}

/// Makes every collection due now.
pub fn poll_all_now() -> Result<()> {
    Spi::run("UPDATE sequin.collections SET next_poll_at = clock_timestamp()").map_err(spi_error)
}

/// The stored cursor of a collection, and whether its change feed is
/// refused.
pub fn cursor(foreign_table: pg_sys::Oid) -> Result<(Value, bool)> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    let (cursor, refused) = crate::plans::get_two::<JsonB, bool>(
        "SELECT c.cursor, c.feed_refused IS NOT NULL
           FROM (SELECT 1) AS one LEFT JOIN sequin.collections c ON c.foreign_table = $1",
        &args,
    )
    .map_err(spi_error)?;
    Ok((cursor.ok_or_else(|| not_registered(foreign_table))?.0, refused.unwrap_or(false)))
}

/// The change-feed position a backfill over existing rows began at, when
/// the collection is in one (see `collections.backfill_from_idx`).
pub fn backfill_from_idx(foreign_table: pg_sys::Oid) -> Result<Option<i64>> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    crate::plans::get_one::<i64>(
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
    crate::plans::run(
        "INSERT INTO sequin.backfill_seen (foreign_table, id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        &args,
    )
    .map_err(spi_error)
}

/// Ends a backfill's bookkeeping of seen ids.
pub fn forget_seen(foreign_table: pg_sys::Oid) -> Result<()> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    crate::plans::run("DELETE FROM sequin.backfill_seen WHERE foreign_table = $1", &args).map_err(spi_error)?;
    crate::plans::run("UPDATE sequin.collections SET backfill_from_idx = NULL WHERE foreign_table = $1", &args)
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
    sweep_every: Option<Duration>,
) -> Result<()> {
    let next_in = if page.more { 0.0 } else { poll_interval.as_secs_f64() };
    let args: [DatumWithOid; 10] = [
        foreign_table.into(),
        JsonB(page.cursor.clone()).into(),
        page.phase.as_str().into(),
        (changed as i64).into(),
        (page.records.len() as i64).into(),
        next_in.into(),
        (poisoned as i64).into(),
        warning.into(),
        poll_interval.as_secs_f64().into(),
        sweep_every.map(|every| every.as_secs_f64()).into(),
    ];
    crate::plans::run(
        "UPDATE sequin.collections SET
                cursor = $2,
                next_sweep_at = CASE WHEN phase = 'backfill' AND $3 = 'incremental'
                                     THEN clock_timestamp() + make_interval(secs =>
                                          CASE WHEN feed_refused IS NOT NULL THEN $9 ELSE $10 END)
                                     ELSE next_sweep_at END,
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
/// marked deleted when it ends). `warning` says why, when it was not asked
/// for. A sweep in progress is dropped (the backfill compares everything),
/// and a refused change feed is tried again.
pub fn restart_backfill(foreign_table: pg_sys::Oid, warning: Option<&str>) -> Result<()> {
    let args: [DatumWithOid; 2] = [foreign_table.into(), warning.into()];
    crate::plans::run("DELETE FROM sequin.backfill_seen WHERE foreign_table = $1", &args[..1])
        .map_err(spi_error)?;
    crate::plans::run(
        "UPDATE sequin.collections SET
                cursor = '{}', phase = 'backfill', backfill_rows = 0,
                backfill_from_idx = (SELECT last_value FROM sequin.updated_idx_seq),
                backfill_started_at = NULL, backfill_finished_at = NULL,
                consecutive_failures = 0, next_poll_at = clock_timestamp(),
                feed_refused = NULL, next_sweep_at = NULL, sweep_cursor = NULL, sweep_from_idx = NULL,
                sweep_failures = 0,
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
    crate::plans::run("UPDATE sequin.collections SET next_poll_at = clock_timestamp() WHERE foreign_table = $1", &args)
        .map_err(spi_error)
}

/// Whether the sync of the foreign table's server is paused.
pub fn server_paused(foreign_table: pg_sys::Oid) -> Result<bool> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    crate::plans::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_foreign_table ft JOIN sequin.paused_servers p ON p.server = ft.ftserver
                         WHERE ft.ftrelid = $1)",
        &args,
    )
    .map(|paused| paused.unwrap_or(false))
    .map_err(spi_error)
}

/// Records the current names of paused servers (a restore finds a pause by
/// its server's name; oids are not restored).
pub fn name_paused_servers() -> Result<()> {
    Spi::run(
        "UPDATE sequin.paused_servers p SET server_name = s.srvname
           FROM pg_foreign_server s
          WHERE s.oid = p.server AND p.server_name IS DISTINCT FROM s.srvname",
    )
    .map_err(spi_error)
}

/// Pauses (or resumes) the sync of every collection of a server.
pub fn set_paused(server: pg_sys::Oid, paused: bool) -> Result<()> {
    let args: [DatumWithOid; 1] = [server.into()];
    let sql = if paused {
        "INSERT INTO sequin.paused_servers (server, server_name)
         SELECT s.oid, s.srvname FROM pg_foreign_server s WHERE s.oid = $1 ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM sequin.paused_servers WHERE server = $1"
    };
    crate::plans::run(sql, &args).map_err(spi_error)?;
    if !paused {
        // Whatever came due while paused is polled now.
        crate::plans::run(
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
    crate::plans::run(
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

/// The change feed is refused (`reason`): the collection goes on from
/// `cursor` (a backfill that does not wait for the feed, or its incremental
/// cursor) and is kept current by sweeps at its poll interval.
pub fn refuse_feed(foreign_table: pg_sys::Oid, reason: &str, cursor: &Value) -> Result<()> {
    let args: [DatumWithOid; 3] = [foreign_table.into(), reason.into(), JsonB(cursor.clone()).into()];
    crate::plans::run(
        "UPDATE sequin.collections SET
                feed_refused = $2, cursor = $3,
                last_warning = $2, last_warning_at = clock_timestamp(),
                requests = requests + 1, last_poll_at = clock_timestamp(),
                consecutive_failures = 0, next_poll_at = clock_timestamp(),
                next_sweep_at = CASE WHEN phase = 'incremental' AND sweep_cursor IS NULL
                                     THEN clock_timestamp() ELSE next_sweep_at END
          WHERE foreign_table = $1",
        &args,
    )
    .map_err(spi_error)
}

/// Sets when the next sweep starts after the table's `sweep_interval`
/// changed: that long after the last one ended (or the backfill did). Off
/// (`None`) also drops a sweep under way. A backfill and a refused feed
/// keep theirs.
pub fn schedule_sweep(foreign_table: pg_sys::Oid, every: Option<Duration>) -> Result<()> {
    let args: [DatumWithOid; 2] = [foreign_table.into(), every.map(|every| every.as_secs_f64()).into()];
    if every.is_none() {
        crate::plans::run(
            "DELETE FROM sequin.backfill_seen s USING sequin.collections c
              WHERE s.foreign_table = $1 AND c.foreign_table = $1
                AND c.sweep_cursor IS NOT NULL AND c.feed_refused IS NULL",
            &args[..1],
        )
        .map_err(spi_error)?;
    }
    crate::plans::run(
        "UPDATE sequin.collections SET
                sweep_cursor = CASE WHEN $2 IS NULL AND feed_refused IS NULL THEN NULL ELSE sweep_cursor END,
                next_sweep_at =
                CASE WHEN feed_refused IS NOT NULL THEN next_sweep_at
                     WHEN phase <> 'incremental' OR $2 IS NULL THEN NULL
                     WHEN sweep_cursor IS NOT NULL THEN next_sweep_at
                     ELSE coalesce(last_sweep_at, backfill_finished_at, clock_timestamp())
                          + make_interval(secs => $2::float8) END
          WHERE foreign_table = $1",
        &args,
    )
    .map_err(spi_error)
}

/// A sweep under way: where its listing stands and the change-feed
/// position it began at.
pub struct SweepState {
    pub cursor: Value,
    pub from_idx: i64,
}

/// The sweep under way, if any.
pub fn sweep_state(foreign_table: pg_sys::Oid) -> Result<Option<SweepState>> {
    let args: [DatumWithOid; 1] = [foreign_table.into()];
    let pair = crate::plans::get_two::<JsonB, i64>(
        "SELECT c.sweep_cursor, c.sweep_from_idx
           FROM (SELECT 1) AS one
           LEFT JOIN sequin.collections c ON c.foreign_table = $1 AND c.sweep_cursor IS NOT NULL",
        &args,
    )
    .map_err(spi_error)?;
    Ok(match pair {
        (Some(cursor), Some(from_idx)) => Some(SweepState { cursor: cursor.0, from_idx }),
        _ => None,
    })
}

/// Starts a sweep from `cursor` (the provider's listing from the start).
pub fn begin_sweep(foreign_table: pg_sys::Oid, cursor: &Value) -> Result<SweepState> {
    let args: [DatumWithOid; 2] = [foreign_table.into(), JsonB(cursor.clone()).into()];
    crate::plans::run("DELETE FROM sequin.backfill_seen WHERE foreign_table = $1", &args[..1]).map_err(spi_error)?;
    let from_idx = crate::plans::get_one::<i64>(
        "UPDATE sequin.collections SET
                sweep_cursor = $2, sweep_from_idx = (SELECT last_value FROM sequin.updated_idx_seq),
                sweep_started_at = clock_timestamp(), sweep_requests = 0, sweep_drift = 0
          WHERE foreign_table = $1
          RETURNING sweep_from_idx",
        &args,
    )
    .map_err(spi_error)?
    .ok_or_else(|| not_registered(foreign_table))?;
    Ok(SweepState { cursor: cursor.clone(), from_idx })
}

/// Stores a sweep page's cursor and what it corrected, in the transaction
/// that applied it.
pub fn save_sweep_page(foreign_table: pg_sys::Oid, cursor: &Value, corrected: u64, poisoned: usize, warning: Option<&str>) -> Result<()> {
    let args: [DatumWithOid; 5] = [
        foreign_table.into(),
        JsonB(cursor.clone()).into(),
        (corrected as i64).into(),
        (poisoned as i64).into(),
        warning.into(),
    ];
    crate::plans::run(
        "UPDATE sequin.collections SET
                sweep_cursor = $2, sweep_requests = sweep_requests + 1, sweep_drift = sweep_drift + $3,
                sweep_failures = 0, next_sweep_at = clock_timestamp(),
                requests = requests + 1, changes_applied = changes_applied + $3,
                poisoned_records = poisoned_records + $4,
                last_warning = coalesce($5, last_warning),
                last_warning_at = CASE WHEN $5 IS NULL THEN last_warning_at ELSE clock_timestamp() END
          WHERE foreign_table = $1",
        &args,
    )
    .map_err(spi_error)
}

/// Ends a sweep: its figures become the last sweep's, and the next one is
/// due `every` later (the poll interval while the feed is refused; never
/// when sweeps are off).
pub fn finish_sweep(
    foreign_table: pg_sys::Oid,
    corrected: u64,
    gone: u64,
    poisoned: usize,
    every: Option<Duration>,
    poll_interval: Duration,
) -> Result<()> {
    let args: [DatumWithOid; 6] = [
        foreign_table.into(),
        (corrected as i64).into(),
        (gone as i64).into(),
        (poisoned as i64).into(),
        every.map(|every| every.as_secs_f64()).into(),
        poll_interval.as_secs_f64().into(),
    ];
    crate::plans::run(
        "UPDATE sequin.collections SET
                sweep_cursor = NULL, sweep_from_idx = NULL, sweep_failures = 0, sweeps = sweeps + 1,
                last_sweep_at = clock_timestamp(),
                last_sweep_requests = sweep_requests + 1,
                last_sweep_drift = sweep_drift + $2 + $3,
                requests = requests + 1, changes_applied = changes_applied + $2 + $3,
                poisoned_records = poisoned_records + $4,
                last_success_at = CASE WHEN feed_refused IS NOT NULL THEN clock_timestamp() ELSE last_success_at END,
                last_warning = CASE WHEN feed_refused IS NULL THEN last_warning
                                    ELSE format('%s; the table is kept current by a full sweep every %s s instead (the last one: %s)',
                                                feed_refused, $6,
                                                CASE WHEN sweep_requests = 0 THEN '1 request'
                                                     ELSE (sweep_requests + 1) || ' requests' END) END,
                next_sweep_at = clock_timestamp() + make_interval(secs =>
                                CASE WHEN feed_refused IS NOT NULL THEN $6 ELSE $5 END)
          WHERE foreign_table = $1",
        &args,
    )
    .map_err(spi_error)
}

/// Records a failed sweep request: the sweep resumes from where it stood
/// (or from the start: `restart`) after a backoff (the poll interval,
/// doubled per failure, at most 5 min).
pub fn sweep_failed(foreign_table: pg_sys::Oid, message: &str, poll_interval: Duration, restart: bool) -> Result<()> {
    let args: [DatumWithOid; 4] = [foreign_table.into(), message.into(), poll_interval.as_secs_f64().into(), restart.into()];
    crate::plans::run(
        "UPDATE sequin.collections SET
                sweep_cursor = CASE WHEN $4 THEN NULL ELSE sweep_cursor END,
                last_error = 'sweep: ' || $2,
                last_error_at = clock_timestamp(),
                requests = requests + 1,
                sweep_failures = sweep_failures + 1,
                next_sweep_at = clock_timestamp()
                    + least(interval '5 minutes', make_interval(secs => $3 * power(2, least(sweep_failures, 12))))
          WHERE foreign_table = $1",
        &args,
    )
    .map_err(spi_error)
}
