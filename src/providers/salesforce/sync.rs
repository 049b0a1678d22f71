//! Salesforce's sync: SOQL pages ordered by SystemModstamp, the deleted
//! endpoint, and the records they carry (see the cursor in `mod.rs`).
//!
//! The query names every field the API describes (so that `raw` has them
//! all). Its SOQL goes in the URL, which Salesforce cuts at 16,384 bytes: an
//! sObject whose field list does not fit (hundreds of fields) is read with
//! the fields that fit in the query, and the rest of each page's records by
//! sObject Collections retrieve (`POST …/composite/sobjects/{X}` with the
//! page's ids and the other fields in the body), merged on Id.

use super::API;
use crate::providers::*;
use serde_json::{json, Map, Value};

/// The longest request path (with its query) sent: Salesforce refuses a
/// request line past 16,384 bytes; room is left for a base URL's path.
pub(super) const MAX_PATH: usize = 15_000;
/// Collections retrieve takes at most 2,000 ids.
const RETRIEVE_IDS: usize = 2_000;
/// Records changed this long before the last one seen are read again:
/// transactions commit out of SystemModstamp order.
pub(super) const LOOKBACK_US: i64 = 30_000_000;
/// A query locator older than this is not followed (Salesforce drops idle
/// ones after 15 minutes; the mock keeps few).
pub(super) const LOCATOR_MAX_AGE_US: i64 = 60_000_000;
/// The deleted endpoint is asked for at least this span (it refuses a
/// start and end less than a minute apart).
const DELETED_MIN_SPAN_US: i64 = 120_000_000;

// ---------------------------------------------------------------------------
// Times

/// `2026-01-01T00:00:00.000+0000` (or `Z`, `±hh:mm`) → microseconds since
/// the Unix epoch.
pub(super) fn parse_datetime(s: &str) -> Option<i64> {
    let timestamp: jiff::Timestamp = s.trim().parse().ok()?;
    Some(timestamp.as_microsecond())
}

/// Salesforce's precision: `2026-01-01T00:00:00.000Z`, the microseconds
/// dropped (so never later than `us`).
pub(super) fn iso_ms(us: i64) -> String {
    let full = crate::time::iso8601_from_us(us);
    format!("{}Z", &full[..full.len().min(23)])
}

/// Microseconds floored to the millisecond.
pub(super) fn floor_ms(us: i64) -> i64 {
    us - us.rem_euclid(1000)
}

/// `2026-01-01T00:00:00+00:00`, as the deleted endpoint's documentation
/// writes its bounds (it ignores seconds anyway).
pub(super) fn deleted_bound(us: i64) -> String {
    let full = crate::time::iso8601_from_us(us);
    format!("{}+00:00", &full[..full.len().min(19)])
}

// ---------------------------------------------------------------------------
// Queries

pub(super) fn query_request(soql: &str) -> ApiRequest {
    ApiRequest::get(format!("{API}/query?q={}", encode_query_value(soql)))
}

/// The fields the sync reads, `Id` first: every described one that can be
/// a column.
fn synced_fields(spec: &CollectionSpec) -> Vec<&str> {
    std::iter::once("Id").chain(spec.fields.iter().filter(|f| f.sql_type.is_some()).map(|f| f.name.as_str())).collect()
}

/// The fields a query of this length (without its field list) can name
/// within MAX_PATH, in the describe's order, and the rest: Id and
/// SystemModstamp always fit (the query orders and versions by them).
/// Field names need no escaping.
fn split_fields(spec: &CollectionSpec, fixed: usize) -> (Vec<&str>, Vec<&str>) {
    let mut length = fixed + "Id,SystemModstamp".len();
    let mut queried = Vec::new();
    let mut rest = Vec::new();
    for field in synced_fields(spec) {
        if matches!(field, "Id" | "SystemModstamp") {
            queried.push(field);
        } else if rest.is_empty() && length + 1 + field.len() <= MAX_PATH {
            length += 1 + field.len();
            queried.push(field);
        } else {
            rest.push(field);
        }
    }
    if !queried.contains(&"SystemModstamp") {
        queried.push("SystemModstamp");
    }
    (queried, rest)
}

/// The SOQL of `template`, whose `{}` is the field list: with every field
/// that fits in the URL, and the fields left for collections retrieve.
pub(super) fn fitted_query(spec: &CollectionSpec, template: &str) -> (ApiRequest, Vec<String>) {
    let fixed = query_request(&template.replace("{}", "")).path.len();
    let (queried, rest) = split_fields(spec, fixed);
    (query_request(&template.replace("{}", &queried.join(","))), rest.into_iter().map(str::to_string).collect())
}

/// The fields a page's records miss (the URL could not name them).
pub(super) fn fields_left(spec: &CollectionSpec) -> Vec<String> {
    fitted_query(spec, &sync_template(spec, None)).1
}

fn sync_template(spec: &CollectionSpec, filter: Option<(&str, i64)>) -> String {
    let filter = filter.map(|(op, us)| format!(" WHERE SystemModstamp {op} {}", iso_ms(us))).unwrap_or_default();
    format!("SELECT {{}} FROM {}{filter} ORDER BY SystemModstamp, Id", spec.name)
}

/// The sync's query: oldest change first, with an optional
/// `WHERE SystemModstamp <op> <time>`.
fn sync_query(spec: &CollectionSpec, filter: Option<(&str, i64)>) -> ApiRequest {
    fitted_query(spec, &sync_template(spec, filter)).0
}

/// One record's every field: `GET …/sobjects/{X}/{id}?fields=…` when it
/// fits the URL, else collections retrieve.
pub(super) fn fetch_request(spec: &CollectionSpec, id: &str) -> ApiRequest {
    let fields = synced_fields(spec);
    let path = format!("{API}/sobjects/{}/{}?fields={}", encode_path_segment(&spec.name), encode_path_segment(id), fields.join(","));
    match path.len() <= MAX_PATH {
        true => ApiRequest::get(path),
        false => retrieve_request(spec, &[id], &fields),
    }
}

/// `SELECT <fields> FROM <Type> WHERE Id IN (…)` when it fits the URL, else
/// collections retrieve of every field.
pub(super) fn fetch_many_request(spec: &CollectionSpec, ids: &[&str]) -> ApiRequest {
    let quoted: Vec<String> = ids.iter().map(|id| format!("'{}'", id.replace('\\', "").replace('\'', ""))).collect();
    let template = format!("SELECT {{}} FROM {} WHERE Id IN ({})", spec.name, quoted.join(","));
    match fitted_query(spec, &template) {
        (query, rest) if rest.is_empty() => query,
        _ => retrieve_request(spec, ids, &synced_fields(spec)),
    }
}

/// sObject Collections retrieve: these fields of these records, in the
/// body (no URL limit).
pub(super) fn retrieve_request(spec: &CollectionSpec, ids: &[&str], fields: &[&str]) -> ApiRequest {
    let mut fields: Vec<&str> = fields.to_vec();
    if !fields.contains(&"Id") {
        fields.insert(0, "Id");
    }
    ApiRequest {
        method: Method::Post,
        path: format!("{API}/composite/sobjects/{}", encode_path_segment(&spec.name)),
        body: Some(Body::Json(json!({"ids": ids, "fields": fields}))),
        idempotency_key: None,
        headers: Vec::new(),
    }
}

/// The requests that complete a page's records with the fields its query
/// left out: collections retrieve, 2,000 ids at a time.
pub(super) fn page_followups(spec: &CollectionSpec, page: &SyncPage) -> Vec<ApiRequest> {
    let rest = fields_left(spec);
    let live: Vec<&str> = page.records.iter().filter(|r| !r.deleted).map(|r| r.id.as_str()).collect();
    if rest.is_empty() || live.is_empty() {
        return Vec::new();
    }
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    live.chunks(RETRIEVE_IDS).map(|ids| retrieve_request(spec, ids, &rest)).collect()
}

/// Merges a retrieve reply into the page's records: their raw objects gain
/// the fields, and their columns are filled again. A record gone meanwhile
/// (null) keeps what the query gave; the deleted endpoint reports it.
pub(super) fn merge_followup(spec: &CollectionSpec, page: &mut SyncPage, response: &ApiResponse) -> Result<(), ApiError> {
    let objects = retrieved(response)?;
    for object in objects.iter().filter(|o| o.is_object()) {
        let Some(id) = object.get("Id").and_then(Value::as_str) else {
            return Err(unparseable(response, "a retrieved record without Id"));
        };
        let Some(record) = page.records.iter_mut().find(|r| r.id == id) else { continue };
        let Value::Object(raw) = &mut record.raw else { continue };
        for (field, value) in object.as_object().into_iter().flatten() {
            if field != "attributes" && field != "SystemModstamp" {
                raw.insert(field.clone(), value.clone());
            }
        }
        let merged = record.raw.clone();
        if let Some(full) = record_from_sobject(spec, &merged, record.version_us) {
            *record = full;
        }
    }
    Ok(())
}

/// A collections retrieve reply: one entry per id asked, null for none.
pub(super) fn retrieved(response: &ApiResponse) -> Result<Vec<Value>, ApiError> {
    response.json().and_then(|b| b.as_array().cloned()).ok_or_else(|| unparseable(response, "no array of records"))
}

// ---------------------------------------------------------------------------
// Records

/// A column's value from the Salesforce record, in a form
/// `jsonb_populate_record` accepts.
fn column_value(column: &ColumnSpec, value: &Value) -> Value {
    match (column.api_type.as_str(), value) {
        ("datetime", Value::String(s)) => match parse_datetime(s) {
            Some(us) => Value::String(crate::time::iso8601_from_us(us)),
            None => value.clone(),
        },
        // A number may come as a double (`50.0`), which an integer column refuses.
        ("int" | "long", Value::Number(n)) if !n.is_i64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => value.clone(),
        },
        ("multipicklist", Value::String(s)) if column.sql_type.ends_with("[]") => {
            Value::Array(s.split(';').filter(|v| !v.is_empty()).map(|v| Value::String(v.to_string())).collect())
        }
        // Salesforce stores an empty string as null.
        (_, Value::String(s)) if s.is_empty() => Value::Null,
        _ => value.clone(),
    }
}

/// The record an sObject describes: `raw` is the object without its
/// `attributes`, `columns` the table's columns.
pub(super) fn record_from_sobject(spec: &CollectionSpec, object: &Value, version_us: i64) -> Option<Record> {
    let mut raw = object.as_object()?.clone();
    raw.remove("attributes");
    let id = raw.get("Id")?.as_str()?.to_string();
    let mut columns = Map::new();
    for column in &spec.columns {
        if let Some(value) = raw.get(&column.field) {
            columns.insert(column.name.clone(), column_value(column, value));
        }
    }
    Some(Record { id, version_us, deleted: false, columns, raw: Value::Object(raw) })
}

pub(super) fn modstamp(object: &Value) -> Option<i64> {
    object.get("SystemModstamp").and_then(Value::as_str).and_then(parse_datetime)
}

/// A query page: its records and the next page's path, if any.
pub(super) fn query_page(response: &ApiResponse) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let body = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let records = body.get("records").and_then(Value::as_array).ok_or_else(|| unparseable(response, "no records array"))?;
    let done = body.get("done").and_then(Value::as_bool).unwrap_or(true);
    let next = body.get("nextRecordsUrl").and_then(Value::as_str).filter(|_| !done).map(str::to_string);
    Ok((records.clone(), next))
}

pub(super) fn cursor_str<'a>(cursor: &'a Value, key: &str) -> Option<&'a str> {
    cursor.get(key).and_then(Value::as_str)
}

fn cursor_us(cursor: &Value, key: &str) -> Option<i64> {
    cursor_str(cursor, key).and_then(parse_datetime)
}

/// The locator to follow, unless it is too old to trust.
fn fresh_next(cursor: &Value, now_us: i64) -> Option<&str> {
    let next = cursor_str(cursor, "next")?;
    let at = cursor_us(cursor, "next_at")?;
    (now_us - at <= LOCATOR_MAX_AGE_US).then_some(next)
}

/// Stores the reply's locator in `cursor`, or drops the old one.
fn set_next(cursor: &mut Value, next: Option<String>, now_us: i64) {
    match next {
        Some(next) => {
            cursor["next"] = Value::String(next);
            cursor["next_at"] = Value::String(iso_ms(now_us));
        }
        None => {
            if let Some(map) = cursor.as_object_mut() {
                map.remove("next");
                map.remove("next_at");
            }
        }
    }
}

/// The next sync request at `now_us`.
pub(super) fn sync_request_at(spec: &CollectionSpec, cursor: &Value, now_us: i64) -> ApiRequest {
    match cursor_str(cursor, "phase") {
        None | Some("backfill") => match fresh_next(cursor, now_us) {
            Some(next) => ApiRequest::get(next),
            None => sync_query(spec, cursor_us(cursor, "last").map(|last| (">=", last))),
        },
        _ => {
            if let Some(to) = cursor_us(cursor, "deleted_to") {
                let from = cursor_us(cursor, "deleted_from").unwrap_or(to);
                let end = to.max(from + DELETED_MIN_SPAN_US);
                return ApiRequest::get(format!(
                    "{API}/sobjects/{}/deleted/?start={}&end={}",
                    encode_path_segment(&spec.name),
                    encode_query_value(&deleted_bound(from)),
                    encode_query_value(&deleted_bound(end))
                ));
            }
            match fresh_next(cursor, now_us) {
                Some(next) => ApiRequest::get(next),
                None => {
                    let since = cursor_us(cursor, "since").unwrap_or(LOOKBACK_US);
                    sync_query(spec, Some((">", since - LOOKBACK_US)))
                }
            }
        }
    }
}

/// Interprets a sync reply (see the cursor in `mod.rs`).
pub(super) fn sync_response(
    spec: &CollectionSpec,
    cursor: &Value,
    response: &ApiResponse,
    now_us: i64,
) -> Result<SyncPage, ApiError> {
    let malformed = || unparseable(response, "record without Id or SystemModstamp");
    match cursor_str(cursor, "phase") {
        None | Some("backfill") => {
            let (objects, next) = query_page(response)?;
            let started = cursor_us(cursor, "started").unwrap_or_else(|| floor_ms(now_us));
            let mut last = cursor_us(cursor, "last");
            let mut records = Vec::with_capacity(objects.len());
            for object in &objects {
                let stamp = modstamp(object).ok_or_else(malformed)?;
                last = Some(last.map_or(stamp, |l| l.max(stamp)));
                records.push(record_from_sobject(spec, object, stamp).ok_or_else(malformed)?);
            }
            if next.is_none() {
                let cursor = json!({"phase": "incremental", "since": iso_ms(started), "deleted_from": iso_ms(started)});
                return Ok(SyncPage { records, cursor, phase: Phase::Incremental, more: true });
            }
            let mut cursor = json!({"phase": "backfill", "started": iso_ms(started)});
            if let Some(last) = last {
                cursor["last"] = Value::String(iso_ms(last));
            }
            set_next(&mut cursor, next, now_us);
            Ok(SyncPage { records, cursor, phase: Phase::Backfill, more: true })
        }
        _ if cursor.get("deleted_to").is_some() => {
            let body = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
            let deleted = body
                .get("deletedRecords")
                .and_then(Value::as_array)
                .ok_or_else(|| unparseable(response, "no deletedRecords array"))?;
            let covered = body
                .get("latestDateCovered")
                .and_then(Value::as_str)
                .and_then(parse_datetime)
                .ok_or_else(|| unparseable(response, "no latestDateCovered"))?;
            let mut records = Vec::with_capacity(deleted.len());
            for entry in deleted {
                let id = entry.get("id").and_then(Value::as_str).ok_or_else(|| unparseable(response, "deleted record without id"))?;
                let at = entry.get("deletedDate").and_then(Value::as_str).and_then(parse_datetime).unwrap_or(now_us);
                records.push(Record::gone(id, at));
            }
            let mut next = cursor.clone();
            next["deleted_from"] = Value::String(iso_ms(covered));
            next.as_object_mut().map(|m| m.remove("deleted_to"));
            Ok(SyncPage { records, cursor: next, phase: Phase::Incremental, more: false })
        }
        _ => {
            let (objects, locator) = query_page(response)?;
            let mut since = cursor_us(cursor, "since");
            let mut records = Vec::with_capacity(objects.len());
            for object in &objects {
                let stamp = modstamp(object).ok_or_else(malformed)?;
                since = Some(since.map_or(stamp, |s| s.max(stamp)));
                records.push(record_from_sobject(spec, object, stamp).ok_or_else(malformed)?);
            }
            let mut next = cursor.clone();
            if let Some(since) = since {
                next["since"] = Value::String(iso_ms(since));
            }
            if locator.is_none() {
                next["deleted_to"] = Value::String(iso_ms(now_us));
            }
            set_next(&mut next, locator, now_us);
            Ok(SyncPage { records, cursor: next, phase: Phase::Incremental, more: true })
        }
    }
}
