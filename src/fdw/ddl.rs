//! DDL on synced foreign tables: every `ALTER` keeps the shadow table in
//! step with its foreign table, or is refused with a HINT. Runs from the
//! `ddl_command_end` event trigger, so a refusal rolls the whole statement
//! back; the trigger is SECURITY DEFINER, so this runs with the rights of
//! the extension's owner, whoever ran the ALTER.
//!
//! * ADD COLUMN: the shadow gets the column, filled from each row's `raw`.
//! * ALTER COLUMN … TYPE: the shadow column is replaced and filled from `raw`.
//! * DROP COLUMN: the shadow drops it too (the values stay in `raw`);
//!   `id` and the standard fields stay, and `id` cannot be dropped.
//! * RENAME COLUMN and a new `collection`: refused (column names are the
//!   API's field names; a table follows one collection).
//! * GRANT, REVOKE, OWNER TO: who may read the shadow table directly
//!   follows who may read the foreign table.

use super::options::load_foreign_table;
use crate::catalog;
use crate::error::{ErrorKind, OrRaise, Result, SequinError};
use crate::shadow::is_standard_field;
use crate::sql::ident;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::{Map, Value};
use std::ffi::CStr;

/// Rows re-filled from `raw` per UPDATE when a column is added.
const REFILL_BATCH: usize = 1000;

thread_local! {
    /// Set while the extension runs DDL of its own (on a shadow table, a
    /// GRANT): that DDL fires the event triggers again, which must let it be.
    static OWN_DDL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as the extension's own DDL (see `OWN_DDL`); ends with `f`, also
/// when it unwinds.
pub(crate) fn own_ddl<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            OWN_DDL.with(|d| d.set(self.0));
        }
    }
    let _reset = Reset(OWN_DDL.with(|d| d.replace(true)));
    f()
}

fn spi_error(e: pgrx::spi::Error) -> SequinError {
    SequinError::internal(format!("catalog query failed: {e}"))
}

/// A live column of a relation.
struct Column {
    name: String,
    type_oid: pg_sys::Oid,
    typmod: i32,
    /// As `format_type` prints it, for DDL.
    sql_type: String,
    /// Generated or identity: Postgres fills it on INSERT.
    generated: bool,
}

fn columns_of(client: &SpiClient<'_>, relation: pg_sys::Oid) -> Result<Vec<Column>> {
    let args: [DatumWithOid; 1] = [relation.into()];
    let mut columns = Vec::new();
    for row in client
        .select(
            "SELECT attname::text, atttypid, atttypmod, format_type(atttypid, atttypmod), attgenerated <> '' OR attidentity <> ''
               FROM pg_catalog.pg_attribute
              WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            None,
            &args,
        )
        .map_err(spi_error)?
    {
        columns.push(Column {
            name: row.get::<String>(1).map_err(spi_error)?.unwrap_or_default(),
            type_oid: row.get::<pg_sys::Oid>(2).map_err(spi_error)?.unwrap_or(pg_sys::InvalidOid),
            typmod: row.get::<i32>(3).map_err(spi_error)?.unwrap_or(-1),
            sql_type: row.get::<String>(4).map_err(spi_error)?.unwrap_or_default(),
            generated: row.get::<bool>(5).map_err(spi_error)?.unwrap_or(false),
        });
    }
    Ok(columns)
}

/// Columns a synced table may not have, whatever DDL made them. The shadow
/// table belongs to the extension's owner and the sync worker writes it as
/// a superuser: a type of the user's (a domain's CHECK, an input function)
/// would run the user's code with those rights, and a generated column's
/// value would be sent to the API as a field.
pub fn check_columns_allowed(table: &str, columns: &[(String, pg_sys::Oid, bool)]) -> Result<()> {
    for (name, type_oid, generated) in columns {
        if *generated {
            return Err(SequinError::new(
                ErrorKind::Unsupported,
                format!("column \"{name}\" of {table}: a sequin_fdw table cannot have generated or identity columns"),
            )
            .with_detail("Postgres fills them on INSERT, and the value would be sent to the API as a field.")
            .with_hint("Compute the value in a view over the table."));
        }
        if u32::from(*type_oid) >= pg_sys::FirstNormalObjectId {
            return Err(SequinError::new(
                ErrorKind::Unsupported,
                format!("column \"{name}\" of {table}: a sequin_fdw table takes only built-in types"),
            )
            .with_detail("The sync writes the shadow table with the extension's rights; a user-defined type would run code with them.")
            .with_hint("Use a built-in type (text, numeric, jsonb, …) and convert in a view."));
        }
    }
    Ok(())
}

fn refused(message: String, hint: &str) -> SequinError {
    SequinError::new(ErrorKind::Unsupported, message).with_hint(hint.to_string())
}

/// Brings the shadow table of `foreign_table` in step with it, or fails.
fn align_shadow(foreign_table: pg_sys::Oid) -> Result<()> {
    let config = load_foreign_table(foreign_table)?;
    let collection = catalog::load_collection(foreign_table)?;
    let table = collection.shadow.feed_name.clone();
    let registered = catalog::registered_collection(foreign_table)?;
    if config.table.collection != registered {
        return Err(refused(
            format!("the collection of {table} cannot change from \"{registered}\" to \"{}\"", config.table.collection),
            "A foreign table follows one collection: create another foreign table for the other collection (or IMPORT FOREIGN SCHEMA … LIMIT TO it), and drop this one if it is no longer needed.",
        ));
    }
    let shadow_table = collection.shadow.table.clone();
    if config.table.shadow_table.as_deref() != Some(shadow_table.as_str()) {
        return Err(refused(
            format!("the option shadow_table of {table} must stay '{shadow_table}'"),
            "It names the table the rows are kept in; a dump restores it by that name. Leave the option as registration set it.",
        ));
    }
    let provider = config.server.provider;
    let spec = &collection.spec;
    Spi::connect_mut(|client| {
        let shadow_oid = client
            .select("SELECT $1::regclass::oid", Some(1), &[shadow_table.as_str().into()])
            .map_err(spi_error)?
            .first()
            .get::<pg_sys::Oid>(1)
            .map_err(spi_error)?
            .ok_or_else(|| SequinError::internal("shadow table not found"))?;
        let foreign = columns_of(client, foreign_table)?;
        let shadow = columns_of(client, shadow_oid)?;
        let allowed: Vec<_> = foreign.iter().map(|c| (c.name.clone(), c.type_oid, c.generated)).collect();
        check_columns_allowed(&table, &allowed)?;
        if !foreign.iter().any(|c| c.name == "id") {
            return Err(refused(
                format!("column \"id\" of {table} cannot be dropped"),
                "Every sequin_fdw table needs its \"id\" column (text): it names the record in the API.",
            ));
        }
        let mut changes = Vec::new();
        let mut refill = Vec::new();
        for column in &foreign {
            let twin = shadow.iter().find(|s| s.name == column.name);
            match twin {
                Some(twin) if twin.type_oid == column.type_oid && twin.typmod == column.typmod => {}
                Some(twin) if is_standard_field(&column.name) => {
                    return Err(refused(
                        format!("column \"{}\" of {table} must stay {}", column.name, twin.sql_type),
                        "The standard fields (id, deleted, updated_idx, upstream_updated_at, sync_id, sync_external_id, sync_metadata, raw) have fixed types; convert in a view.",
                    ))
                }
                Some(_) => {
                    changes.push(format!("DROP COLUMN {}", ident(&column.name)));
                    changes.push(format!("ADD COLUMN {} {}", ident(&column.name), column.sql_type));
                    refill.push(column.name.clone());
                }
                None => {
                    changes.push(format!("ADD COLUMN {} {}", ident(&column.name), column.sql_type));
                    refill.push(column.name.clone());
                }
            }
        }
        for column in &shadow {
            if !is_standard_field(&column.name) && !foreign.iter().any(|f| f.name == column.name) {
                changes.push(format!("DROP COLUMN {}", ident(&column.name)));
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        if let Some(schema) = &collection.schema {
            let misfits: Vec<_> = collection.mismatches.iter().filter(|m| refill.iter().any(|c| c == m.column())).cloned().collect();
            if !misfits.is_empty() {
                return Err(catalog::mismatch_error(&table, schema, &misfits));
            }
        }
        client.update(&format!("ALTER TABLE {shadow_table} {}", changes.join(", ")), None, &[]).map_err(spi_error)?;
        if !refill.is_empty() {
            refill_from_raw(client, &shadow_table, &refill, &|raw| provider.columns_from_raw(spec, raw))
                .map_err(|e| SequinError::new(ErrorKind::Validation, format!("{table} cannot take this change: {}", e.message))
                    .with_detail(format!("Filling column(s) {} from the API's records failed.", refill.join(", ")))
                    .with_hint("Choose a column type the API's values convert to, or leave the column out."))?;
        }
        Ok(())
    })
}

/// Fills `columns` of every shadow row from its `raw` API object, as the
/// sync would have filled them.
fn refill_from_raw(
    client: &mut SpiClient<'_>,
    shadow_table: &str,
    columns: &[String],
    columns_from_raw: &dyn Fn(&Value) -> Map<String, Value>,
) -> Result<()> {
    let sets = columns.iter().map(|c| format!("{0} = r.{0}", ident(c))).collect::<Vec<_>>().join(", ");
    let update = format!(
        "UPDATE {shadow_table} AS s SET {sets} FROM jsonb_populate_recordset(NULL::{shadow_table}, $1) AS r WHERE s.id = r.id"
    );
    let mut after = String::new();
    loop {
        let page = client
            .select(
                &format!("SELECT id, raw FROM {shadow_table} WHERE id > $1 AND raw IS NOT NULL ORDER BY id LIMIT {REFILL_BATCH}"),
                None,
                &[after.as_str().into()],
            )
            .map_err(spi_error)?;
        let mut rows = Vec::new();
        for row in page {
            let id = row.get::<String>(1).map_err(spi_error)?.unwrap_or_default();
            let raw = row.get::<JsonB>(2).map_err(spi_error)?.map(|j| j.0).unwrap_or(Value::Null);
            let values = columns_from_raw(&raw);
            let mut object = Map::new();
            object.insert("id".into(), Value::String(id.clone()));
            for column in columns {
                object.insert(column.clone(), values.get(column).cloned().unwrap_or(Value::Null));
            }
            rows.push(Value::Object(object));
            after = id;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let done = rows.len() < REFILL_BATCH;
        crate::shadow_guard::applying(|| client.update(&update, None, &[JsonB(Value::Array(rows)).into()]))
            .map_err(|e| SequinError::new(ErrorKind::Validation, e.to_string()))?;
        if done {
            return Ok(());
        }
    }
}

/// Grants SELECT on the shadow table to exactly the roles that may SELECT
/// the foreign table (its owner included), so a role reads records
/// directly only where it may read them through the foreign table.
pub fn mirror_read_privileges(foreign_table: pg_sys::Oid, shadow_table: &str) -> Result<()> {
    own_ddl(|| Spi::connect_mut(|client| {
        let args: [DatumWithOid; 2] = [foreign_table.into(), shadow_table.into()];
        let grantees = client
            .select(
                "SELECT coalesce(string_agg(DISTINCT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, ', '), '')
                   FROM (SELECT (aclexplode(coalesce(c.relacl, acldefault('r', c.relowner)))).*
                           FROM pg_catalog.pg_class c WHERE c.oid = $1) g
                   LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
                  WHERE g.privilege_type = 'SELECT'",
                Some(1),
                &args[..1],
            )
            .map_err(spi_error)?
            .first()
            .get::<String>(1)
            .map_err(spi_error)?
            .unwrap_or_default();
        let holders = client
            .select(
                "SELECT coalesce(string_agg(DISTINCT CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, ', '), '')
                   FROM (SELECT (aclexplode(c.relacl)).*, c.relowner FROM pg_catalog.pg_class c
                          WHERE c.oid = $2::regclass) g
                   LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
                  WHERE g.grantee <> g.relowner",
                Some(1),
                &args,
            )
            .map_err(spi_error)?
            .first()
            .get::<String>(1)
            .map_err(spi_error)?
            .unwrap_or_default();
        if !holders.is_empty() {
            client.update(&format!("REVOKE ALL ON {shadow_table} FROM {holders}"), None, &[]).map_err(spi_error)?;
        }
        if !grantees.is_empty() {
            client.update(&format!("GRANT SELECT ON {shadow_table} TO {grantees}"), None, &[]).map_err(spi_error)?;
        }
        Ok(())
    }))
}

/// The registered foreign tables an event touched (from the DDL commands
/// of this event), or every registered one for GRANT and REVOKE, whose
/// commands do not name their tables.
fn touched_tables(tag: &str) -> Result<Vec<pg_sys::Oid>> {
    let sql = if tag == "GRANT" || tag == "REVOKE" {
        "SELECT foreign_table::oid FROM sequin.collections ORDER BY 1"
    } else {
        "SELECT DISTINCT d.objid FROM pg_catalog.pg_event_trigger_ddl_commands() d
           JOIN sequin.collections c ON c.foreign_table = d.objid
          WHERE d.classid = 'pg_catalog.pg_class'::regclass ORDER BY 1"
    };
    Spi::connect(|client| {
        let mut tables = Vec::new();
        for row in client.select(sql, None, &[]).map_err(spi_error)? {
            if let Some(oid) = row.get::<pg_sys::Oid>(1).map_err(spi_error)? {
                tables.push(oid);
            }
        }
        Ok(tables)
    })
}

fn is_registered(foreign_table: pg_sys::Oid) -> bool {
    crate::plans::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM sequin.collections WHERE foreign_table = $1)",
        &[foreign_table.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// A column rename leaves no trace a later comparison could tell from a
/// drop and an add, so it is recognised in the statement itself.
unsafe fn refuse_column_rename(parsetree: *mut pg_sys::Node) {
    if parsetree.is_null() || (*parsetree).type_ != pg_sys::NodeTag::T_RenameStmt {
        return;
    }
    let stmt = parsetree as *mut pg_sys::RenameStmt;
    if (*stmt).renameType != pg_sys::ObjectType::OBJECT_COLUMN || (*stmt).relation.is_null() {
        return;
    }
    let relation = pg_sys::RangeVarGetRelidExtended((*stmt).relation, pg_sys::NoLock as i32, pg_sys::RVROption::RVR_MISSING_OK, None, std::ptr::null_mut());
    if relation == pg_sys::InvalidOid || !is_registered(relation) {
        return;
    }
    let column = if (*stmt).subname.is_null() { String::new() } else { CStr::from_ptr((*stmt).subname).to_string_lossy().into_owned() };
    let renamed = if (*stmt).newname.is_null() { String::new() } else { CStr::from_ptr((*stmt).newname).to_string_lossy().into_owned() };
    if has_field_option(relation, &renamed) {
        return;
    }
    refused(
        format!("column \"{column}\" of a sequin_fdw table cannot be renamed without a field option"),
        "A column without one holds the API field of its name. Name its field first: ALTER FOREIGN TABLE … ALTER COLUMN … OPTIONS (ADD field '<API name>'), then rename it.",
    )
    .raise()
}

/// The column (by its name now) names its API field in a `field` option.
fn has_field_option(relation: pg_sys::Oid, column: &str) -> bool {
    crate::plans::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a, pg_catalog.pg_options_to_table(a.attfdwoptions) o
                         WHERE a.attrelid = $1 AND a.attname = $2 AND o.option_name = 'field')",
        &[relation.into(), column.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// A server's provider decides what its tables' collections and columns
/// mean: once it has synced tables, it cannot change under them.
unsafe fn refuse_provider_change(parsetree: *mut pg_sys::Node) {
    if parsetree.is_null() || (*parsetree).type_ != pg_sys::NodeTag::T_AlterForeignServerStmt {
        return;
    }
    let stmt = parsetree as *mut pg_sys::AlterForeignServerStmt;
    if (*stmt).servername.is_null() {
        return;
    }
    let options = pgrx::PgList::<pg_sys::DefElem>::from_pg((*stmt).options);
    let names_provider = options
        .iter_ptr()
        .any(|option| !option.is_null() && !(*option).defname.is_null() && CStr::from_ptr((*option).defname).to_bytes() == b"provider");
    if !names_provider {
        return;
    }
    let server = CStr::from_ptr((*stmt).servername).to_string_lossy().into_owned();
    let tables = crate::plans::get_one::<i64>(
        "SELECT count(*) FROM sequin.collections c
           JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.foreign_table
           JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
          WHERE s.srvname = $1",
        &[server.as_str().into()],
    )
    .map_err(spi_error)
    .or_raise()
    .unwrap_or(0);
    if tables > 0 {
        refused(
            format!("the provider of server \"{server}\" cannot change while it has {tables} synced table(s)"),
            "Create a server for the other provider and import its tables there, or drop this server's tables first.",
        )
        .raise()
    }
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_sequin_on_alter_foreign_table() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// True while this extension's own script runs (CREATE EXTENSION, ALTER
/// EXTENSION … UPDATE): what it changes, it changes deliberately, and a
/// GRANT there would otherwise mirror privileges onto every shadow table and
/// have them recorded as the extension's initial privileges.
unsafe fn in_own_extension_script() -> bool {
    pg_sys::creating_extension && pg_sys::CurrentExtensionObject == pg_sys::get_extension_oid(c"sequin_fdw".as_ptr(), true)
}

/// `sequin.on_alter_foreign_table()`: the `ddl_command_end` event trigger
/// for ALTER FOREIGN TABLE, ALTER TABLE, ALTER SERVER, GRANT and REVOKE.
#[no_mangle]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn sequin_on_alter_foreign_table(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let context = (*fcinfo).context;
    if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_EventTriggerData {
        SequinError::new(ErrorKind::Unsupported, "sequin.on_alter_foreign_table() is an event trigger function").raise()
    }
    if OWN_DDL.with(std::cell::Cell::get) || in_own_extension_script() {
        return pg_sys::Datum::from(0);
    }
    let data = context as *mut pg_sys::EventTriggerData;
    refuse_column_rename((*data).parsetree);
    refuse_provider_change((*data).parsetree);
    let tag = CStr::from_ptr(pg_sys::GetCommandTagName((*data).tag)).to_string_lossy().into_owned();
    if tag == "ALTER SERVER" {
        // A renamed server keeps its pause through a dump and restore.
        catalog::name_paused_servers().or_raise();
    }
    for foreign_table in touched_tables(&tag).or_raise() {
        let altered = tag != "GRANT" && tag != "REVOKE";
        if altered {
            own_ddl(|| align_shadow(foreign_table)).or_raise();
        }
        let collection = catalog::load_collection(foreign_table).or_raise();
        if altered {
            // The table's sweep_interval may have changed.
            catalog::schedule_sweep(foreign_table, collection.sweep_every()).or_raise();
        }
        mirror_read_privileges(foreign_table, &collection.shadow.table).or_raise();
    }
    pg_sys::Datum::from(0)
}
