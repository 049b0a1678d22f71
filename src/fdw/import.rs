//! IMPORT FOREIGN SCHEMA <provider> FROM SERVER … INTO …: one foreign table
//! per collection, with typed columns and the standard fields. The shadow
//! tables are created by the DDL event trigger, as for a hand-written table.

use super::options::{options_from_list, parse_server};
use crate::error::{ErrorKind, OrRaise, SequinError};
use crate::providers::{CollectionSpec, Writable};
use crate::shadow::STANDARD_FIELDS;
use pgrx::pg_sys;
use pgrx::pg_sys::AsPgCStr;
use crate::sql::{ident as quote_identifier, literal as quote_literal};
use pgrx::PgList;
use std::ffi::CStr;

/// The columns the API fills get `DEFAULT sequin.assigned_by_api()` (a
/// NULL, which a write does not send): frameworks that reflect the table
/// see a server default and read the API's value back with RETURNING.
fn column_sql(name: &str, sql_type: &str, assigned_by_api: bool) -> String {
    let default = match (assigned_by_api, sql_type) {
        (false, _) => String::new(),
        (true, "text") => " DEFAULT sequin.assigned_by_api()".to_string(),
        (true, _) => format!(" DEFAULT sequin.assigned_by_api()::{sql_type}"),
    };
    format!("{} {sql_type}{default}", quote_identifier(name))
}

pub fn create_foreign_table_sql(spec: &CollectionSpec, server: &str) -> String {
    let columns = spec
        .columns
        .iter()
        .map(|c| column_sql(c.name, c.sql_type, c.writable == Writable::Never))
        .chain(STANDARD_FIELDS.iter().map(|(name, sql_type)| column_sql(name, sql_type, true)))
        .collect::<Vec<_>>();
    format!(
        "CREATE FOREIGN TABLE {} ({}) SERVER {} OPTIONS (collection {})",
        quote_identifier(spec.name),
        columns.join(", "),
        quote_identifier(server),
        quote_literal(spec.name)
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
    let available = provider.collections().iter().map(|c| c.name).collect::<Vec<_>>().join(", ");

    let remote_schema = CStr::from_ptr((*stmt).remote_schema).to_string_lossy();
    if remote_schema != provider_name {
        SequinError::new(ErrorKind::InvalidOptionValue, format!("server \"{server_name}\" has no schema \"{remote_schema}\""))
            .with_hint(format!("Import schema \"{provider_name}\"; its collections are: {available}."))
            .raise();
    }

    let listed: Vec<String> = PgList::<pg_sys::RangeVar>::from_pg((*stmt).table_list)
        .iter_ptr()
        .map(|rv| CStr::from_ptr((*rv).relname).to_string_lossy().into_owned())
        .collect();
    let limit_to = (*stmt).list_type == pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_LIMIT_TO;
    let except = (*stmt).list_type == pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_EXCEPT;
    if let Some(unknown) = listed.iter().find(|name| provider.collection(name).is_none()) {
        SequinError::new(ErrorKind::InvalidOptionValue, format!("{} has no collection \"{unknown}\"", provider.label()))
            .with_hint(format!("Available collections: {available}."))
            .raise();
    }

    let mut statements = PgList::<std::ffi::c_char>::new();
    for spec in provider.collections() {
        let named = listed.iter().any(|n| n == spec.name);
        if (limit_to && !named) || (except && named) {
            continue;
        }
        statements.push(create_foreign_table_sql(spec, &server_name).as_pg_cstr());
    }
    statements.into_pg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::stripe::Stripe;
    use crate::providers::Provider;

    #[test]
    fn imported_table_has_typed_columns_and_standard_fields() {
        let sql = create_foreign_table_sql(Stripe.collection("customers").unwrap(), "my stripe");
        assert!(sql.starts_with("CREATE FOREIGN TABLE \"customers\" (\"id\" text DEFAULT sequin.assigned_by_api(), \"email\" text,"));
        assert!(sql.contains("\"created\" timestamptz DEFAULT sequin.assigned_by_api()::timestamptz"));
        assert!(sql.contains("\"metadata\" jsonb,"));
        assert!(sql.contains("\"deleted\" boolean DEFAULT sequin.assigned_by_api()::boolean, \"updated_idx\" bigint DEFAULT sequin.assigned_by_api()::bigint"));
        assert!(sql.ends_with("SERVER \"my stripe\" OPTIONS (collection 'customers')"));
    }
}
