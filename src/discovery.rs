//! Asking an API what its collections and fields are (DESIGN §4a): the
//! compiled schema of a provider that has one, else its list and describe
//! requests. IMPORT, CREATE FOREIGN TABLE, the write path and
//! `refresh_schema` ask from the backend (blocking, cancellable); the sync
//! worker asks between its transactions.

use crate::catalog::{self, Collection};
use crate::error::{ErrorKind, Result, SequinError};
use crate::fdw::options::{load_credentials, Credentials, ForeignTableConfig, ServerConfig};
use crate::providers::{CollectionSchema, Listed};
use crate::rate_limit::Priority;
use crate::{schema, upstream};
use pgrx::pg_sys;

/// Every collection of the server's API, as its list shows them.
pub async fn list(server: &ServerConfig, credentials: &Credentials, priority: Priority) -> Result<Vec<Listed>> {
    let provider = server.provider;
    let Some(request) = provider.list_collections_request() else {
        return Ok(provider.compiled_collections().into_iter().map(|schema| Listed { schema, described: true }).collect());
    };
    let response = upstream::send(server, credentials, &request, priority).await?;
    upstream::parse(server, &request, provider.list_collections_response(&response))
}

/// A listed collection with its fields (asking for them where the list
/// does not carry them).
pub async fn described(server: &ServerConfig, credentials: &Credentials, priority: Priority, listed: Listed) -> Result<CollectionSchema> {
    match listed.described {
        true => Ok(listed.schema),
        false => describe_by_name(server, credentials, priority, &listed.schema.name).await,
    }
}

async fn describe_by_name(
    server: &ServerConfig,
    credentials: &Credentials,
    priority: Priority,
    name: &str,
) -> Result<CollectionSchema> {
    let provider = server.provider;
    let request = provider.describe_request(name).ok_or_else(|| SequinError::internal("a listed collection without describe"))?;
    let response = upstream::send(server, credentials, &request, priority).await?;
    upstream::parse(server, &request, provider.describe_response(name, &response))
}

/// The schema of the collection a table's `collection` option names: the
/// API's name of it, or the name IMPORT gives its table (`contacts` for
/// Salesforce's Contact).
pub async fn collection(
    server: &ServerConfig,
    credentials: &Credentials,
    priority: Priority,
    option: &str,
) -> Result<CollectionSchema> {
    let provider = server.provider;
    if !provider.describes_itself() {
        return provider.compiled_collection(option).ok_or_else(|| {
            let names: Vec<String> = provider.compiled_collections().into_iter().map(|c| c.name).collect();
            unknown_collection(server, option, &names)
        });
    }
    // The API's name, asked for directly (one request); else the name of
    // a table (`contacts`), found in the list.
    if let Some(request) = provider.describe_request(option) {
        match upstream::send(server, credentials, &request, priority).await {
            Ok(response) => return upstream::parse(server, &request, provider.describe_response(option, &response)),
            Err(error) if error.kind == ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    let listed = list(server, credentials, priority).await?;
    let found = listed
        .iter()
        .find(|l| l.schema.name == option)
        .or_else(|| listed.iter().find(|l| l.schema.name.eq_ignore_ascii_case(option) || l.schema.table == option));
    match found {
        Some(l) if l.described => Ok(l.schema.clone()),
        Some(l) => describe_by_name(server, credentials, priority, &l.schema.name).await,
        None => {
            let names: Vec<String> = listed.iter().map(|l| l.schema.name.clone()).collect();
            Err(unknown_collection(server, option, &names))
        }
    }
}

fn unknown_collection(server: &ServerConfig, option: &str, names: &[String]) -> SequinError {
    let label = server.provider.label();
    let shown = names.iter().take(50).cloned().collect::<Vec<_>>().join(", ");
    let more = names.len().saturating_sub(50);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    SequinError::new(ErrorKind::InvalidOptionValue, format!("{label} has no collection \"{option}\""))
        .with_hint(format!("Available collections: {shown}{more}."))
}

/// `collection` from the backend: blocks, and stops on cancel.
pub fn collection_now(server: &ServerConfig, credentials: &Credentials, option: &str) -> Result<CollectionSchema> {
    block(server, collection(server, credentials, Priority::Write, option))
}

/// `list` from the backend.
pub fn list_now(server: &ServerConfig, credentials: &Credentials) -> Result<Vec<Listed>> {
    block(server, list(server, credentials, Priority::Write))
}

/// `described` from the backend.
pub fn described_now(server: &ServerConfig, credentials: &Credentials, listed: Listed) -> Result<CollectionSchema> {
    block(server, described(server, credentials, Priority::Write, listed))
}

fn block<T>(server: &ServerConfig, future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    crate::http::block_on(future, &crate::write::cancel_pending).unwrap_or_else(|| {
        Err(SequinError::new(ErrorKind::Timeout, format!("asking {} for its schema was cancelled", server.provider.label())))
    })
}

thread_local! {
    /// What IMPORT FOREIGN SCHEMA just described, by server: the tables it
    /// creates are registered right after, without asking again.
    static IMPORTED: std::cell::RefCell<Vec<(pg_sys::Oid, CollectionSchema)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps what IMPORT described for the registration of its tables.
pub fn remember_imported(server: pg_sys::Oid, schemas: &[CollectionSchema]) {
    IMPORTED.with(|imported| {
        let mut imported = imported.borrow_mut();
        imported.retain(|(s, _)| *s != server);
        imported.extend(schemas.iter().map(|schema| (server, schema.clone())));
    });
}

/// The schema of a table being created, where it can be had now: from the
/// IMPORT that creates it, else from the API with the current user's
/// credentials. None (with a NOTICE) when the API cannot be asked now: the
/// columns are then checked at the first sync. A collection the API says it
/// does not have is an error.
pub fn describe_at_create(config: &ForeignTableConfig) -> Result<Option<CollectionSchema>> {
    let option = &config.table.collection;
    let imported = IMPORTED.with(|imported| {
        imported.borrow().iter().find(|(s, schema)| *s == config.server_oid && schema.name == *option).map(|(_, schema)| schema.clone())
    });
    if imported.is_some() {
        return Ok(imported);
    }
    let later = |why: &str| {
        pgrx::notice!(
            "the columns of this table are checked against {} {option} at its first sync: {why}",
            config.server.provider.label()
        );
        Ok(None)
    };
    // Registration runs in the DDL event trigger, as the extension's owner:
    // the API is asked with the mapping of the role that creates the table.
    let user = unsafe { pg_sys::GetOuterUserId() };
    let credentials = match load_credentials(config.server_oid, &config.server.name, user) {
        Ok(credentials) => credentials,
        Err(_) => return later("the current user has no user mapping for the server"),
    };
    match collection_now(&config.server, &credentials, option) {
        Ok(schema) => Ok(Some(schema)),
        Err(error) if error.kind == ErrorKind::InvalidOptionValue => Err(error),
        Err(error) => later(&format!("the API could not be asked ({})", error.message)),
    }
}

/// The collection with its schema, asking the API (with `credentials`) and
/// keeping the answer in the catalog when it has none yet.
pub fn ensure_described(foreign_table: pg_sys::Oid, collection: Collection, credentials: &Credentials) -> Result<Collection> {
    if collection.schema.is_some() {
        return Ok(collection);
    }
    let schema = collection_now(&collection.config.server, credentials, &collection.config.table.collection)?;
    let collection = collection.with_schema(schema);
    check_first_use(true, &collection)?;
    catalog::store_schema(foreign_table, &collection)?;
    Ok(collection)
}

/// A table whose columns could not be checked when it was created is
/// checked when the API is first asked: a column naming a field the API
/// does not have, or whose type cannot hold it, is refused then (the sync
/// reports it in sync_status.last_error until the table is fixed). Later,
/// such a column is drift: its field went away upstream.
pub fn check_first_use(first: bool, collection: &Collection) -> Result<()> {
    match (&collection.schema, first && !collection.mismatches.is_empty()) {
        (Some(schema), true) => Err(catalog::mismatch_error(&collection.shadow.feed_name, schema, &collection.mismatches)),
        _ => Ok(()),
    }
}

/// What differs between the API's fields and the table's columns, for
/// sync_status: fields no column holds yet, and columns whose field is
/// gone or does not fit. None when they agree.
pub fn drift(collection: &Collection) -> Option<String> {
    let schema = collection.schema.as_ref()?;
    let table = &collection.shadow.feed_name;
    let mut parts = Vec::new();
    let new = schema::new_fields(schema, &collection.spec, &collection.mismatches);
    if !new.is_empty() {
        let names = new.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
        parts.push(format!(
            "new field(s) {names}: SELECT sequin.refresh_schema({}) adds them as columns",
            crate::sql::literal(table)
        ));
    }
    for mismatch in &collection.mismatches {
        parts.push(format!("{}: NULL from now on", mismatch.describe(&schema.name)));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `sequin.refresh_schema()`: asks the API for the collection's fields now
/// (with the current user's credentials) and adds a column for each field
/// no column holds, named as IMPORT names it, with its `field` option. The
/// shadow table gains them too and they are filled from `raw`, without API
/// calls (`fdw::ddl`). Returns the columns added.
pub fn refresh(foreign_table: pg_sys::Oid) -> Result<Vec<String>> {
    let collection = catalog::load_collection(foreign_table)?;
    let config = &collection.config;
    let user = unsafe { pg_sys::GetUserId() };
    let credentials = load_credentials(config.server_oid, &config.server.name, user)?;
    let schema = collection_now(&config.server, &credentials, &config.table.collection)?;
    let collection = collection.with_schema(schema);
    // Kept first: the columns added below are checked against it.
    catalog::store_schema(foreign_table, &collection)?;
    let Some(schema) = &collection.schema else { return Ok(Vec::new()) };
    let mut taken: Vec<String> = collection.columns.iter().map(|c| c.name.clone()).collect();
    let imported = schema::import_columns(schema);
    let mut additions = Vec::new();
    let mut added = Vec::new();
    for field in schema::new_fields(schema, &collection.spec, &collection.mismatches) {
        let base = imported.iter().find(|(_, f)| f.name == field.name).map_or_else(|| schema::column_name(&field.name), |(n, _)| n.clone());
        let name = schema::unique_name(&base, &taken);
        taken.push(name.clone());
        additions.push(format!(
            "ADD COLUMN {} {} OPTIONS (field {})",
            crate::sql::ident(&name),
            field.sql_type.as_deref().unwrap_or("text"),
            crate::sql::literal(&field.name)
        ));
        added.push(name);
    }
    if !additions.is_empty() {
        let table = &collection.shadow.feed_name;
        pgrx::Spi::run(&format!("ALTER FOREIGN TABLE {table} {}", additions.join(", ")))
            .map_err(|e| SequinError::internal(format!("adding columns failed: {e}")))?;
    }
    catalog::store_schema(foreign_table, &catalog::load_collection(foreign_table)?.with_schema(schema.clone()))?;
    Ok(added)
}
