//! IMPORT FOREIGN SCHEMA <provider> FROM SERVER … INTO …: one foreign table
//! per collection, with typed columns and the standard fields. The shadow
//! tables are created by the DDL event trigger, as for a hand-written table.

use super::options::{load_credentials, options_from_list, parse_server};
use crate::discovery;
use crate::error::{ErrorKind, OrRaise, SequinError};
use crate::providers::{CollectionSchema, Writable};
use crate::schema::import_columns;
use crate::shadow::STANDARD_FIELDS;
use crate::sql::{ident as quote_identifier, literal as quote_literal};
use pgrx::pg_sys;
use pgrx::pg_sys::AsPgCStr;
use pgrx::PgList;
use std::ffi::CStr;

/// The columns the API fills get `DEFAULT sequin.assigned_by_api()` (a
/// NULL, which a write does not send): frameworks that reflect the table
/// see a server default and read the API's value back with RETURNING.
fn column_sql(name: &str, sql_type: &str, assigned_by_api: bool, field: Option<&str>) -> String {
    let default = match (assigned_by_api, sql_type) {
        (false, _) => String::new(),
        (true, "text") => " DEFAULT sequin.assigned_by_api()".to_string(),
        (true, _) => format!(" DEFAULT sequin.assigned_by_api()::{sql_type}"),
    };
    let options = field.map(|f| format!(" OPTIONS (field {})", quote_literal(f))).unwrap_or_default();
    format!("{} {sql_type}{options}{default}", quote_identifier(name))
}

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_sequin_assigned_by_api() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// `sequin.assigned_by_api()`: NULL. A C function, since every INSERT
/// plans the default of each column it leaves out: a SQL function was
/// inlined there, parsed anew each time (a sixth of a single-row INSERT
/// with 11 such columns), and an IMMUTABLE one would be run there instead.
#[no_mangle]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn sequin_assigned_by_api(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    (*fcinfo).isnull = true;
    pg_sys::Datum::from(0)
}

/// A table of every field that can be a column, with a `field` option where
/// the column's name is not the field's.
pub fn create_foreign_table_sql(schema: &CollectionSchema, server: &str) -> String {
    let columns = std::iter::once(column_sql("id", "text", true, None))
        .chain(import_columns(schema).into_iter().map(|(name, field)| {
            let option = (name != field.name).then_some(field.name.as_str());
            column_sql(&name, field.sql_type.as_deref().unwrap_or("text"), field.writable == Writable::Never, option)
        }))
        .chain(STANDARD_FIELDS.iter().map(|(name, sql_type)| column_sql(name, sql_type, true, None)))
        .collect::<Vec<_>>();
    format!(
        "CREATE FOREIGN TABLE {} ({}) SERVER {} OPTIONS (collection {})",
        quote_identifier(&schema.table),
        columns.join(", "),
        quote_identifier(server),
        quote_literal(&schema.name)
    )
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn import_foreign_schema(
    stmt: *mut pg_sys::ImportForeignSchemaStmt,
    server_oid: pg_sys::Oid,
) -> *mut pg_sys::List {
    let server = pg_sys::GetForeignServer(server_oid);
    let server_name = CStr::from_ptr((*server).servername).to_string_lossy().into_owned();
    let config = parse_server(&server_name, &options_from_list((*server).options)).or_raise();
    let provider = config.provider;
    let provider_name = provider.name();
    let credentials = || load_credentials(server_oid, &server_name, pg_sys::GetUserId()).or_raise();
    let compiled = provider.compiled_collections();
    let listed = match compiled.is_empty() {
        true => discovery::list_now(&config, &credentials()).or_raise(),
        false => compiled.into_iter().map(|schema| crate::providers::Listed { schema, described: true }).collect(),
    };
    let available = listed.iter().map(|l| l.schema.table.as_str()).collect::<Vec<_>>().join(", ");

    let remote_schema = CStr::from_ptr((*stmt).remote_schema).to_string_lossy();
    if remote_schema != provider_name {
        SequinError::new(ErrorKind::InvalidOptionValue, format!("server \"{server_name}\" has no schema \"{remote_schema}\""))
            .with_hint(format!("Import schema \"{provider_name}\"; its collections are: {available}."))
            .raise();
    }

    // Postgres keeps only the tables LIMIT TO names (and drops those
    // EXCEPT names) by table name: the names are table names.
    let named: Vec<String> = PgList::<pg_sys::RangeVar>::from_pg((*stmt).table_list)
        .iter_ptr()
        .map(|rv| CStr::from_ptr((*rv).relname).to_string_lossy().into_owned())
        .collect();
    let limit_to = (*stmt).list_type == pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_LIMIT_TO;
    let except = (*stmt).list_type == pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_EXCEPT;
    if let Some(unknown) = named.iter().find(|name| !listed.iter().any(|l| l.schema.table == **name)) {
        SequinError::new(ErrorKind::InvalidOptionValue, format!("{} has no collection \"{unknown}\"", provider.label()))
            .with_hint(format!("Available collections (by table name): {available}."))
            .raise();
    }

    let mut schemas = Vec::new();
    for entry in listed {
        let is_named = named.iter().any(|n| *n == entry.schema.table);
        if (limit_to && !is_named) || (except && is_named) {
            continue;
        }
        let schema = match entry.described {
            true => entry.schema,
            false => discovery::described_now(&config, &credentials(), entry).or_raise(),
        };
        schemas.push(schema);
    }
    discovery::remember_imported(server_oid, &schemas);
    let mut statements = PgList::<std::ffi::c_char>::new();
    for schema in &schemas {
        statements.push(create_foreign_table_sql(schema, &server_name).as_pg_cstr());
    }
    statements.into_pg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::stripe::Stripe;
    use crate::providers::{FieldSpec, Provider, WriteOp};

    #[test]
    fn imported_table_has_typed_columns_and_standard_fields() {
        let customers = Stripe.compiled_collections().into_iter().find(|c| c.name == "customers").unwrap();
        let sql = create_foreign_table_sql(&customers, "my stripe");
        assert!(sql.starts_with("CREATE FOREIGN TABLE \"customers\" (\"id\" text DEFAULT sequin.assigned_by_api(), \"email\" text,"));
        assert!(sql.contains("\"created\" timestamptz DEFAULT sequin.assigned_by_api()::timestamptz"));
        assert!(sql.contains("\"metadata\" jsonb,"));
        assert!(sql.contains("\"deleted\" boolean DEFAULT sequin.assigned_by_api()::boolean, \"updated_idx\" bigint DEFAULT sequin.assigned_by_api()::bigint"));
        assert!(sql.ends_with("SERVER \"my stripe\" OPTIONS (collection 'customers')"));
    }

    #[test]
    fn a_field_whose_column_is_named_otherwise_gets_a_field_option() {
        let field = |name: &str, sql_type: Option<&str>, writable| FieldSpec {
            name: name.into(),
            api_type: "x".into(),
            sql_type: sql_type.map(str::to_string),
            writable,
            nullable: true,
        };
        let schema = CollectionSchema {
            name: "Invoice__c".into(),
            table: "invoice__c".into(),
            fields: vec![
                field("Score__c", Some("numeric"), Writable::Always),
                field("Attachment__c", None, Writable::Always),
                field("SystemModstamp", Some("timestamptz"), Writable::Never),
            ],
            writes: WriteOp::ALL.to_vec(),
            writes_hint: None,
            open: false,
        };
        let sql = create_foreign_table_sql(&schema, "sf");
        assert!(sql.starts_with("CREATE FOREIGN TABLE \"invoice__c\" (\"id\" text DEFAULT sequin.assigned_by_api(), \"score__c\" numeric OPTIONS (field 'Score__c'), \"system_modstamp\" timestamptz OPTIONS (field 'SystemModstamp') DEFAULT sequin.assigned_by_api()::timestamptz, \"deleted\""), "{sql}");
        assert!(!sql.contains("Attachment"));
        assert!(sql.ends_with("SERVER \"sf\" OPTIONS (collection 'Invoice__c')"));
    }
}
