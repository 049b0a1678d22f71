//! `sequin.request()`: any request to a server's API, with the caller's user
//! mapping, the server's timeout, retries and request budget (as a write);
//! the API's reply comes back as it is, and on a 2xx every record of a
//! synced collection in it is applied to its shadow tables in the caller's
//! transaction, as a write's reply is. The provider tells which JSON objects
//! are records (`Provider::reply_object`); nothing here knows an API's JSON.

use crate::catalog::{load_collection, Collection};
use crate::error::{ErrorKind, Result, SequinError};
use crate::fdw::options::{find_server, load_credentials, load_server, Credentials, ServerConfig};
use crate::privilege::{catalog_owner, run_as};
use crate::providers::{cut_api_text, records_in_reply, ApiRequest, ApiResponse, Body, Method, Record, Touched};
use crate::rate_limit::Priority;
use crate::time::now_us;
use crate::write::{apply_locally, cancel_pending};
use crate::{reconcile, rollback, upstream};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use serde_json::{Map, Value};

/// What the caller asks for, as `sequin.request()` takes it.
pub struct Call<'a> {
    pub server: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub body: Option<&'a Value>,
    pub headers: Option<&'a Value>,
}

/// The API's reply, as the function returns it.
pub struct Row {
    pub status: i32,
    /// Header names in lower case; a repeated header's values joined by ", ".
    pub headers: Value,
    /// The reply's JSON; a JSON string when it is not JSON; None when empty.
    pub body: Option<Value>,
}

/// What goes out: the method, the path, the caller's headers (checked)
/// and the body, in the provider's encoding of a JSON body or as the
/// caller's bytes (the proxy's clients encode their own).
pub struct Outgoing<'a> {
    pub server: &'a str,
    pub method: Method,
    pub path: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: Option<OutgoingBody<'a>>,
}

pub enum OutgoingBody<'a> {
    Json(&'a Value),
    Raw { content_type: String, bytes: Vec<u8> },
}

/// A request the API answered: what was sent, on whose behalf, and the
/// reply.
pub struct Sent {
    server: ServerConfig,
    request: ApiRequest,
    user: pg_sys::Oid,
    credentials: Credentials,
    sent_at: i64,
    pub response: ApiResponse,
    attempts: u32,
}

/// Sends the call and applies a 2xx reply's records. A non-2xx reply is
/// returned like any other (nothing applied), or with `raise_error` raised as
/// the write path's error for it.
pub fn request(call: &Call, raise_error: bool) -> Result<Row> {
    let outgoing = Outgoing {
        server: call.server,
        method: parse_method(call.method)?,
        path: call.path,
        headers: caller_headers(call.headers)?,
        body: call.body.filter(|body| !body.is_null()).map(OutgoingBody::Json),
    };
    let sent = send(&outgoing)?;
    if !sent.response.is_success() {
        if raise_error {
            let reply = upstream::Reply { response: sent.response, attempts: sent.attempts };
            return Err(upstream::refused(&sent.server, &sent.request, &reply));
        }
        return Ok(to_row(&sent.response));
    }
    if let Some(behind) = apply_reply(&sent)? {
        pgrx::warning!("{behind}");
    }
    Ok(to_row(&sent.response))
}

/// Sends the request as the current user, with that user's mapping, and
/// returns the API's final reply, a refusal too. Fails when the call may
/// not be made or no reply came.
pub fn send(outgoing: &Outgoing) -> Result<Sent> {
    crate::api::refuse_in_recovery("sequin.request()")?;
    let method = outgoing.method;
    check_path(outgoing.path)?;
    if method != Method::Get && unsafe { pg_sys::XactReadOnly } {
        return Err(SequinError::new(
            ErrorKind::ReadOnly,
            format!("cannot run sequin.request() with {} in a read-only transaction", method.as_str()),
        )
        .with_detail("No request was sent."));
    }
    let server_oid = find_sequin_server(outgoing.server)?;
    let user = unsafe { pg_sys::GetUserId() };
    check_usage(server_oid, outgoing.server)?;
    let (server, owner) = load_server(server_oid)?;
    let request = build_request(&server, outgoing)?;
    let credentials = load_credentials(server_oid, &server.name, user)?;
    crate::account::ensure_same_account(&server, owner, user, &credentials)?;

    let sent_at = now_us();
    let reply = upstream::call_for_reply(&server, &credentials, &request, Priority::Write, &cancel_pending);
    let reply = reply.inspect_err(|error| {
        // Abandoned for a cancel, a statement timeout or a shutdown:
        // Postgres raises its own error, now that we are back on its stack.
        if cancel_pending() {
            pgrx::check_for_interrupts!();
        }
        // The API may have applied it: what it changed is not known, so
        // every collection is polled at once, as for an INSERT.
        if error.kind == ErrorKind::OutcomeUnknown {
            reconcile::poll_all_soon();
        }
    })?;
    Ok(Sent { server, request, user, credentials, sent_at, response: reply.response, attempts: reply.attempts })
}

/// The oid of the sequin_fdw server of this name, or 42704.
pub fn find_sequin_server(name: &str) -> Result<pg_sys::Oid> {
    find_server(name).ok_or_else(|| {
        SequinError::new(ErrorKind::UndefinedObject, format!("server \"{name}\" is not a sequin_fdw server"))
            .with_hint("SELECT srvname FROM pg_foreign_server lists the servers.")
    })
}

/// Applies the records of a 2xx reply (see `apply`). Returns why some of
/// them were left to the sync (a record the request changed without
/// showing it could not be read back), if any were.
pub fn apply_reply(sent: &Sent) -> Result<Option<String>> {
    let response = &sent.response;
    let provider = sent.server.provider;
    let mut records = response.json().map(|json| records_in_reply(provider, &json, sent.sent_at)).unwrap_or_default();
    let mut rereads = Vec::new();
    for touched in provider.records_touched(&sent.request, response, sent.sent_at) {
        match touched {
            Touched::Gone(spec, record) => records.push((spec, record)),
            Touched::Changed(spec, id) => rereads.push((spec, id)),
        }
    }
    apply(sent, records, &rereads)
}

pub fn parse_method(method: &str) -> Result<Method> {
    Method::parse(method).ok_or_else(|| {
        SequinError::new(ErrorKind::InvalidArgument, format!("sequin.request(): method \"{}\" is not supported", cut_api_text(method)))
            .with_detail("No request was sent.")
            .with_hint("Use GET, POST, PUT, PATCH or DELETE.")
    })
}

/// A path relative to the server's `base_url` (`/v1/customers?limit=3`):
/// it cannot name another host or scheme, climb out of the API with `..`,
/// or carry what no request line may.
pub fn check_path(path: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(SequinError::new(ErrorKind::InvalidArgument, format!("sequin.request(): path \"{}\" {why}", cut_api_text(path)))
            .with_detail("No request was sent.")
            .with_hint("Give the API path below the server's base_url, starting with /, e.g. '/v1/customers/cus_123'."))
    };
    if !path.starts_with('/') || path.starts_with("//") {
        return refuse("is not a path below the server's base_url");
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\' || c == '#') {
        return refuse("contains a space, a control character, \\ or #");
    }
    let route = path.split('?').next().unwrap_or(path);
    if route.split('/').map(percent_decoded).any(|segment| segment == b"." || segment == b"..") {
        return refuse("has a . or .. segment");
    }
    Ok(())
}

fn percent_decoded(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(text).collect()
}

/// USAGE on the server: the request reaches any endpoint of the API, not
/// only a table's collection.
fn check_usage(server_oid: pg_sys::Oid, name: &str) -> Result<()> {
    let args: [DatumWithOid; 1] = [server_oid.into()];
    let usage = crate::plans::get_one::<bool>("SELECT pg_catalog.has_server_privilege($1, 'USAGE')", &args)
        .map_err(|e| SequinError::internal(format!("could not check privileges: {e}")))?;
    if usage != Some(true) {
        return Err(SequinError::new(ErrorKind::NoPrivilege, format!("permission denied for foreign server {name}"))
            .with_detail("sequin.request() needs USAGE on the server.")
            .with_hint(format!("GRANT USAGE ON FOREIGN SERVER {name} TO …;")));
    }
    Ok(())
}

/// The request as the API takes it: the provider's body encoding (for GET
/// and DELETE a form goes into the query string) or the caller's bytes,
/// the caller's headers, and an idempotency key where the API
/// de-duplicates by one (the caller's own `Idempotency-Key`, else a new
/// one).
fn build_request(server: &ServerConfig, outgoing: &Outgoing) -> Result<ApiRequest> {
    let provider = server.provider;
    let method = outgoing.method;
    let mut request =
        ApiRequest { method, path: outgoing.path.to_string(), body: None, idempotency_key: None, headers: outgoing.headers.clone() };
    if let Some(key) = provider.idempotency_key(method) {
        let given = request.headers.iter().position(|(name, _)| name.eq_ignore_ascii_case("idempotency-key"));
        request.idempotency_key = Some(match given {
            Some(at) => request.headers.remove(at).1,
            None => key,
        });
    }
    let body = match &outgoing.body {
        None => return Ok(request),
        Some(OutgoingBody::Raw { content_type, bytes }) => {
            request.body = Some(Body::Raw { content_type: content_type.clone(), bytes: bytes.clone() });
            return Ok(request);
        }
        Some(OutgoingBody::Json(body)) => provider.request_body(body).map_err(|error| SequinError {
            message: format!("sequin.request(): {}", error.message),
            ..error.with_detail("No request was sent.")
        })?,
    };
    match (method, body) {
        (Method::Get | Method::Delete, Body::Form(params)) => {
            if !params.is_empty() {
                let separator = if request.path.contains('?') { '&' } else { '?' };
                request.path = format!("{}{separator}{}", request.path, crate::http::encode_form(&params));
            }
        }
        (Method::Get | Method::Delete, _) => {
            return Err(SequinError::new(
                ErrorKind::InvalidArgument,
                format!("sequin.request(): a {} to {} carries no body", method.as_str(), provider.label()),
            )
            .with_detail("No request was sent.")
            .with_hint("Put its parameters into the path's query string."))
        }
        (_, body) => request.body = Some(body),
    }
    Ok(request)
}

/// The caller's headers: a JSON object of names and values (text, numbers
/// or booleans), none of those the extension sets itself.
fn caller_headers(headers: Option<&Value>) -> Result<Vec<(String, String)>> {
    let invalid = |why: String| {
        SequinError::new(ErrorKind::InvalidArgument, format!("sequin.request(): {why}")).with_detail("No request was sent.")
    };
    let map = match headers {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(invalid("headers must be a JSON object of names and values".into())
                .with_hint("For example '{\"Stripe-Version\": \"2020-08-27\"}'."))
        }
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let value = match value {
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(invalid(format!("the value of header \"{}\" must be text", cut_api_text(name)))),
        };
        crate::http::check_header(name, &value).map_err(|why| invalid(cut_api_text(&why)))?;
        out.push((name.clone(), value));
    }
    Ok(out)
}

fn route(request: &ApiRequest) -> String {
    format!("{} {}", request.method.as_str(), request.route())
}

/// A foreign table of the server, its collection, and whether the caller
/// may write through it.
struct SyncedTable {
    foreign_table: pg_sys::Oid,
    collection: String,
    writable: bool,
}

/// The server's synced tables. Whether the caller may write through one is
/// what a write through it needs: INSERT or UPDATE on the table or on any
/// of its columns, or DELETE.
fn synced_tables(server_oid: pg_sys::Oid, user: pg_sys::Oid) -> Result<Vec<SyncedTable>> {
    let args: [DatumWithOid; 2] = [server_oid.into(), user.into()];
    let failed = |e: pgrx::spi::Error| SequinError::internal(format!("catalog query failed: {e}"));
    run_as(catalog_owner(), || {
        Spi::connect_mut(|client| {
            let rows = crate::plans::execute(
                    client,
                    "SELECT c.foreign_table::oid, coalesce(c.schema->>'name', c.collection),
                            has_any_column_privilege($2, c.foreign_table::oid, 'INSERT, UPDATE')
                            OR has_table_privilege($2, c.foreign_table::oid, 'DELETE')
                       FROM sequin.collections c
                       JOIN pg_foreign_table ft ON ft.ftrelid = c.foreign_table
                      WHERE ft.ftserver = $1
                      ORDER BY 1",
                    None,
                    &args,
                )
                .map_err(failed)?;
            let mut tables = Vec::new();
            for row in rows {
                tables.push(SyncedTable {
                    foreign_table: row.get::<pg_sys::Oid>(1).map_err(failed)?.unwrap_or(pg_sys::InvalidOid),
                    collection: row.get::<String>(2).map_err(failed)?.unwrap_or_default(),
                    writable: row.get::<bool>(3).map_err(failed)?.unwrap_or(false),
                });
            }
            Ok(tables)
        })
    })
}

/// Applies a 2xx reply's records to every synced table of their collection
/// on this server that the caller may write through (the others follow with
/// the sync), as a write applies its record. The records the request
/// changed without showing them (`rereads`: a Salesforce PATCH answers 204)
/// are read back first, so that the caller's next SELECT sees them too;
/// one that cannot be is queued for the sync, and the reason returned.
/// Except after a GET, each applied record is remembered as a change a
/// rollback cannot undo; a request that applied none is remembered itself.
fn apply(sent: &Sent, records: Vec<(String, Record)>, rereads: &[(String, String)]) -> Result<Option<String>> {
    let (applied, behind) = apply_to_tables(sent, records, rereads)?;
    if sent.request.method != Method::Get && !applied {
        rollback::remember_request(sent.server.provider.label(), &route(&sent.request));
    }
    Ok(behind)
}

/// See `apply`; whether any record was applied, and why some were left to
/// the sync.
fn apply_to_tables(sent: &Sent, mut records: Vec<(String, Record)>, rereads: &[(String, String)]) -> Result<(bool, Option<String>)> {
    // A GET in a read-only transaction returns what it read, applying nothing.
    if unsafe { pg_sys::XactReadOnly } || (records.is_empty() && rereads.is_empty()) {
        return Ok((false, None));
    }
    let server = &sent.server;
    let tables = synced_tables(server.oid, sent.user)?;
    let writable = |collection: &str| {
        let collection = collection.to_string();
        tables.iter().filter(move |t| t.writable && t.collection == collection)
    };
    let mut behind = None;
    for (collection, id) in rereads {
        let Some(table) = writable(collection).next() else { continue };
        let synced = load_collection(table.foreign_table)?;
        match read_back(sent, &synced, id) {
            Ok(record) => records.push((collection.clone(), record)),
            Err(error) => {
                let queued: Vec<(pg_sys::Oid, String)> = writable(collection).map(|t| (t.foreign_table, id.clone())).collect();
                reconcile::request(&queued);
                behind = Some(format!("[{}]: record {id} could not be read back after {}: {}; the sync brings it", server.provider.label(), route(&sent.request), error.message));
            }
        }
    }
    let mut by_collection: Vec<(String, Vec<Record>)> = Vec::new();
    for (collection, record) in records {
        match by_collection.iter_mut().find(|(name, _)| *name == collection) {
            Some((_, list)) => list.push(record),
            None => by_collection.push((collection, vec![record])),
        }
    }
    let provider = server.provider;
    let mut applied = false;
    for (collection, records) in &by_collection {
        for table in writable(collection) {
            let synced = load_collection(table.foreign_table)?;
            // Each table fills its own columns; a partial record is left
            // to the sync.
            let records: Vec<Record> = records
                .iter()
                .filter(|r| r.deleted || provider.whole_record(&synced.spec, &r.raw))
                .map(|r| Record { columns: provider.columns_from_raw(&synced.spec, &r.raw), ..r.clone() })
                .collect();
            if records.is_empty() {
                continue;
            }
            if sent.request.method != Method::Get {
                for record in &records {
                    rollback::remember(table.foreign_table, provider.label(), &record.id);
                }
            }
            apply_locally(&synced, &records)?;
            applied = true;
        }
    }
    Ok((applied, behind))
}

/// The API's record `id` of the collection now, with the caller's
/// credentials and the write's priority; a record the API no longer has
/// comes back deleted.
fn read_back(sent: &Sent, synced: &Collection, id: &str) -> Result<Record> {
    let server = &sent.server;
    let provider = server.provider;
    let raw = match provider.needs_synced_record() {
        true => crate::catalog::shadow_raw(synced, id)?,
        false => None,
    };
    let request = provider.fetch_request(&synced.spec, id, raw.as_ref());
    let sent_at = now_us();
    match upstream::call(server, &sent.credentials, &request, Priority::Write, &cancel_pending) {
        Ok(response) => upstream::parse(server, &request, provider.fetch_response(&synced.spec, id, &response, sent_at)),
        Err(error) if error.kind == ErrorKind::NotFound => Ok(Record::gone(id, sent_at)),
        Err(error) => Err(error),
    }
}

/// The row `sequin.request()` returns for a reply.
fn to_row(response: &ApiResponse) -> Row {
    let mut headers = Map::new();
    for (name, value) in &response.headers {
        let value = storable(value);
        match headers.get_mut(name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                headers.insert(storable(name), Value::String(value));
            }
        }
    }
    let body = match response.body.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false => Some(match response.json() {
            Some(json) => storable_json(json),
            None => Value::String(storable(&String::from_utf8_lossy(&response.body))),
        }),
    };
    Row { status: i32::from(response.status), headers: Value::Object(headers), body }
}

/// jsonb holds no NUL character: it is spelled out, as the quarantine does.
fn storable(text: &str) -> String {
    text.replace('\0', "\\u0000")
}

fn storable_json(value: Value) -> Value {
    match value {
        Value::String(text) if text.contains('\0') => Value::String(storable(&text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (storable(&k), storable_json(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_path_is_checked_without_panicking(path in any::<String>()) {
            let _ = check_path(&path);
        }

        #[test]
        fn a_dot_segment_is_refused_however_it_is_encoded(prefix in "[a-z/]{0,8}", dots in prop::sample::select(vec![".", "..", "%2e", "%2E%2e", ".%2E"])) {
            let path = format!("/v1/{prefix}/{dots}/x");
            prop_assert!(check_path(&path).is_err(), "{}", path);
        }
    }

    #[test]
    fn paths_stay_below_the_base_url() {
        for ok in ["/v1/customers", "/v1/customers/cus_1?expand[]=x&limit=3", "/services/data/v60.0/sobjects/Contact/003", "/", "/v1/a..b", "/v1/.well"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "v1/customers",
            "",
            "//evil.example/v1",
            "http://evil.example/v1",
            "https:/v1",
            "/v1/../admin",
            "/v1/..",
            "/v1/./x",
            "/v1/%2e%2E/x",
            "/v1/%2E/x",
            "/v1/customers #x",
            "/v1/a\\b",
            "/v1/a\nb",
            "/v1/a#frag",
        ] {
            let error = check_path(bad).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidArgument, "{bad}");
            assert_eq!(error.detail.as_deref(), Some("No request was sent."));
        }
        // A query string may hold what a path segment may not.
        assert!(check_path("/v1/customers?email=a..b").is_ok());
    }

    #[test]
    fn methods_are_the_five_of_an_api() {
        assert_eq!(parse_method("get").unwrap(), Method::Get);
        assert!(check_path("/v1/%2e%2E/secret").is_err());
        assert!(check_path("/v1/customers/cus_1%2").is_ok());
        assert_eq!(parse_method("PATCH").unwrap(), Method::Patch);
        assert_eq!(parse_method("Put").unwrap(), Method::Put);
        for bad in ["TRACE", "CONNECT", "HEAD", "OPTIONS", "", "GET "] {
            assert_eq!(parse_method(bad).unwrap_err().kind, ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn headers_are_an_object_of_text() {
        let headers = serde_json::json!({"Stripe-Version": "2020-08-27", "X-Count": 3, "X-Flag": true});
        let parsed = caller_headers(Some(&headers)).unwrap();
        assert!(parsed.contains(&("X-Count".to_string(), "3".to_string())));
        assert_eq!(caller_headers(None).unwrap(), vec![]);
        assert_eq!(caller_headers(Some(&Value::Null)).unwrap(), vec![]);
        for bad in [serde_json::json!(["a"]), serde_json::json!({"X": {"a": 1}}), serde_json::json!({"Authorization": "Bearer x"})] {
            assert_eq!(caller_headers(Some(&bad)).unwrap_err().kind, ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn a_reply_becomes_a_row() {
        let response = ApiResponse {
            status: 201,
            headers: vec![
                ("request-id".into(), "req_1".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
            ],
            body: br#"{"id": "cus_1", "name": "nul\u0000"}"#.to_vec(),
        };
        let row = to_row(&response);
        assert_eq!(row.status, 201);
        assert_eq!(row.headers, serde_json::json!({"request-id": "req_1", "set-cookie": "a=1, b=2"}));
        assert_eq!(row.body, Some(serde_json::json!({"id": "cus_1", "name": "nul\\u0000"})));
        let empty = to_row(&ApiResponse { status: 204, headers: vec![], body: b"\n".to_vec() });
        assert_eq!(empty.body, None);
        let html = to_row(&ApiResponse { status: 502, headers: vec![], body: b"<html>bad gateway</html>".to_vec() });
        assert_eq!(html.body, Some(Value::String("<html>bad gateway</html>".into())));
    }
}
