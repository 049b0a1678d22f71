//! Salesforce REST (API v60.0): SOQL queries paged with `nextRecordsUrl`,
//! `SystemModstamp` as the change cursor, the `deleted` endpoint for
//! deletions, and sObject Collections for all-or-nothing batch writes.
//!
//! Columns are lower snake_case; each names the Salesforce field of the same
//! words in PascalCase (`first_name` ↔ `FirstName`, `account_id` ↔
//! `AccountId`, `number_of_employees` ↔ `NumberOfEmployees`).
//!
//! Sync cursor (stored as JSON on the collection; times are ISO 8601 UTC
//! strings with milliseconds, `2026-01-01T00:00:00.000Z`):
//! * `{}` (or `{"phase":"backfill"}`) → `SELECT <fields> FROM <Type> ORDER BY
//!   SystemModstamp, Id`; its reply fixes `started` (the time of that
//!   request);
//! * `{"phase":"backfill","started":…,"last":…,"next":"/services/…","next_at":…}`
//!   → the next page (`next` is the reply's `nextRecordsUrl`, `next_at` when
//!   it came, `last` the last page's highest SystemModstamp);
//! * the backfill's last page switches to
//!   `{"phase":"incremental","since":started,"deleted_from":started}` →
//!   `SELECT … WHERE SystemModstamp > <since − LOOKBACK> ORDER BY
//!   SystemModstamp, Id`, pages through `next`/`next_at` the same way, and
//!   moves `since` to the highest SystemModstamp seen;
//! * once that query is done: `"deleted_to"` (the time of its last request)
//!   is added → `GET …/sobjects/<Type>/deleted/?start=<deleted_from>&end=…`;
//!   its reply's `latestDateCovered` becomes `deleted_from`, `deleted_to` is
//!   dropped, and the collection waits a poll interval.
//!
//! A query locator (`next`) older than `LOCATOR_MAX_AGE` is not followed: the
//! query runs again from where the cursor is (the backfill from `last`, with
//! `>=`; the incremental query from `since`). Salesforce drops idle locators
//! after 15 minutes (the mock keeps an account's newest 10); a page whose
//! locator was refused (`INVALID_QUERY_LOCATOR`) fails, and its retry, once
//! the locator is that old, starts the query again instead of a backfill.
//!
//! Salesforce keeps deleted records 15 days: a `deleted_from` older than that
//! is refused with `INVALID_REPLICATION_DATE`, the cursor has expired
//! (`cursor_expired`), and the collection is backfilled again (the rows the
//! backfill does not see are marked deleted).

use super::Writable::{Always, Never};
use super::*;
use crate::time::iso8601_from_us;
use serde_json::json;

pub struct Salesforce;

const API: &str = "/services/data/v60.0";
/// sObject Collections take at most 200 records a request.
const BATCH_LIMIT: usize = 200;
/// Re-read what changed this long before the newest SystemModstamp seen:
/// a record committed late may carry an earlier stamp. Re-reading a record
/// is harmless (an equal version with equal content is skipped).
const LOOKBACK_US: i64 = 30_000_000;
/// A query locator older than this is not followed (see the module doc).
const LOCATOR_MAX_AGE_US: i64 = 60_000_000;
/// The deleted endpoint ignores seconds and wants its end more than a minute
/// after its start: an earlier end is moved to this long after the start
/// (the reply covers no further than now either way).
const DELETED_MIN_SPAN_US: i64 = 120_000_000;
/// How long every request to the server waits after a 403
/// `REQUEST_LIMIT_EXCEEDED`. The org's 24-hour allowance frees up as the day
/// goes on (or when an admin raises it), and the reply says nothing about
/// when: one probe a minute finds out soon without spending requests.
const REQUEST_LIMIT_PAUSE: Duration = Duration::from_secs(60);
const ROLLED_BACK: &str = "ALL_OR_NONE_OPERATION_ROLLED_BACK";

const fn col(name: &'static str, sql_type: &'static str, writable: Writable) -> ColumnSpec {
    ColumnSpec { name, sql_type, writable }
}

const ID: ColumnSpec = col("id", "text", Never);
const IS_DELETED: ColumnSpec = col("is_deleted", "boolean", Never);
const CREATED_DATE: ColumnSpec = col("created_date", "timestamptz", Never);
const LAST_MODIFIED_DATE: ColumnSpec = col("last_modified_date", "timestamptz", Never);
const SYSTEM_MODSTAMP: ColumnSpec = col("system_modstamp", "timestamptz", Never);

struct SalesforceCollection {
    spec: CollectionSpec,
    /// The sObject type.
    sobject: &'static str,
}

const COLLECTIONS: &[SalesforceCollection] = &[
    SalesforceCollection {
        spec: CollectionSpec {
            name: "accounts",
            columns: &[
                ID,
                col("name", "text", Always),
                col("type", "text", Always),
                col("industry", "text", Always),
                col("phone", "text", Always),
                col("website", "text", Always),
                col("billing_city", "text", Always),
                col("billing_country", "text", Always),
                col("annual_revenue", "numeric", Always),
                col("number_of_employees", "integer", Always),
                col("description", "text", Always),
                IS_DELETED,
                CREATED_DATE,
                LAST_MODIFIED_DATE,
                SYSTEM_MODSTAMP,
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        sobject: "Account",
    },
    SalesforceCollection {
        spec: CollectionSpec {
            name: "contacts",
            columns: &[
                ID,
                col("first_name", "text", Always),
                col("last_name", "text", Always),
                // "First Last", computed by Salesforce.
                col("name", "text", Never),
                col("email", "text", Always),
                col("phone", "text", Always),
                col("title", "text", Always),
                col("department", "text", Always),
                col("account_id", "text", Always),
                col("mailing_city", "text", Always),
                col("lead_source", "text", Always),
                IS_DELETED,
                CREATED_DATE,
                LAST_MODIFIED_DATE,
                SYSTEM_MODSTAMP,
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        sobject: "Contact",
    },
    SalesforceCollection {
        spec: CollectionSpec {
            name: "leads",
            columns: &[
                ID,
                col("first_name", "text", Always),
                col("last_name", "text", Always),
                col("name", "text", Never),
                col("company", "text", Always),
                col("email", "text", Always),
                col("phone", "text", Always),
                col("title", "text", Always),
                col("status", "text", Always),
                col("lead_source", "text", Always),
                col("industry", "text", Always),
                IS_DELETED,
                CREATED_DATE,
                LAST_MODIFIED_DATE,
                SYSTEM_MODSTAMP,
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        sobject: "Lead",
    },
    SalesforceCollection {
        spec: CollectionSpec {
            name: "opportunities",
            columns: &[
                ID,
                col("name", "text", Always),
                col("stage_name", "text", Always),
                col("close_date", "date", Always),
                col("amount", "numeric", Always),
                col("probability", "numeric", Always),
                col("account_id", "text", Always),
                col("type", "text", Always),
                col("lead_source", "text", Always),
                col("description", "text", Always),
                IS_DELETED,
                CREATED_DATE,
                LAST_MODIFIED_DATE,
                SYSTEM_MODSTAMP,
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        sobject: "Opportunity",
    },
];

static SPECS: once_cell::sync::Lazy<Vec<CollectionSpec>> =
    once_cell::sync::Lazy::new(|| COLLECTIONS.iter().map(|c| c.spec).collect());

fn sobject(spec: &CollectionSpec) -> &'static str {
    COLLECTIONS.iter().find(|c| c.spec.name == spec.name).expect("collection spec comes from COLLECTIONS").sobject
}

/// `first_name` → `FirstName`.
fn field_name(column: &str) -> String {
    column
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn field_list(spec: &CollectionSpec) -> String {
    spec.columns.iter().map(|c| field_name(c.name)).collect::<Vec<_>>().join(",")
}

// ---------------------------------------------------------------------------
// Times

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// `2026-01-01T00:00:00.000+0000` (or `Z`, `±hh:mm`, `±hh`, any fraction)
/// → microseconds since the Unix epoch.
fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    // ASCII up to 19, so that the slices below are on char boundaries.
    if b.len() < 19 || !b[..19].is_ascii() || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, m, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (h, mi, sec) = (digits(&s[11..13])?, digits(&s[14..16])?, digits(&s[17..19])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction.find(|c: char| !c.is_ascii_digit()).unwrap_or(fraction.len());
        let padded = format!("{:0<6}", &fraction[..end.min(6)]);
        micros = digits(&padded)?;
        rest = &fraction[end..];
    }
    let offset_secs = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = rest[1..].replace(':', "");
            let (hh, mm) = match zone.len() {
                2 => (digits(&zone)?, 0),
                4 => (digits(zone.get(..2)?)?, digits(zone.get(2..)?)?),
                _ => return None,
            };
            sign * (hh * 3600 + mm * 60)
        }
    };
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs * 1_000_000 + micros)
}

/// Salesforce's precision: `2026-01-01T00:00:00.000Z`, the microseconds
/// dropped (so never later than `us`).
fn iso_ms(us: i64) -> String {
    let full = iso8601_from_us(us);
    format!("{}Z", &full[..23])
}

/// Microseconds floored to the millisecond.
fn floor_ms(us: i64) -> i64 {
    us - us.rem_euclid(1000)
}

/// `2026-01-01T00:00:00+00:00`, as the deleted endpoint's documentation
/// writes its bounds (it ignores seconds anyway).
fn deleted_bound(us: i64) -> String {
    format!("{}+00:00", &iso8601_from_us(us)[..19])
}

// ---------------------------------------------------------------------------
// Encoding

/// Percent-encodes a query-string value; spaces become `+`, commas stay.
fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn encode_path_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query_request(soql: &str) -> ApiRequest {
    ApiRequest::get(format!("{API}/query?q={}", encode_query_value(soql)))
}

/// The sync's query: every field, oldest change first, with an optional
/// `WHERE SystemModstamp <op> <time>`.
fn sync_query(spec: &CollectionSpec, filter: Option<(&str, i64)>) -> ApiRequest {
    let filter = filter.map(|(op, us)| format!(" WHERE SystemModstamp {op} {}", iso_ms(us))).unwrap_or_default();
    query_request(&format!(
        "SELECT {} FROM {}{filter} ORDER BY SystemModstamp, Id",
        field_list(spec),
        sobject(spec)
    ))
}

// ---------------------------------------------------------------------------
// Records

/// A column's value from the Salesforce record, in a form
/// `jsonb_populate_record` accepts.
fn column_value(column: &ColumnSpec, value: &Value) -> Value {
    match (column.sql_type, value) {
        ("timestamptz", Value::String(s)) => match parse_datetime(s) {
            Some(us) => Value::String(iso8601_from_us(us)),
            None => value.clone(),
        },
        // Salesforce numbers are doubles (`50.0`), which an integer column refuses.
        ("integer" | "bigint", Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => value.clone(),
        },
        // Salesforce stores an empty string as null.
        (_, Value::String(s)) if s.is_empty() => Value::Null,
        _ => value.clone(),
    }
}

/// The record an sObject describes: `raw` is the object without its
/// `attributes`, `columns` the declared fields.
fn record_from_sobject(spec: &CollectionSpec, object: &Value, version_us: i64) -> Option<Record> {
    let mut raw = object.as_object()?.clone();
    raw.remove("attributes");
    let id = raw.get("Id")?.as_str()?.to_string();
    let mut columns = Map::new();
    for column in spec.columns {
        if let Some(value) = raw.get(&field_name(column.name)) {
            columns.insert(column.name.to_string(), column_value(column, value));
        }
    }
    Some(Record { id, version_us, deleted: false, columns, raw: Value::Object(raw) })
}

fn modstamp(object: &Value) -> Option<i64> {
    object.get("SystemModstamp").and_then(Value::as_str).and_then(parse_datetime)
}

/// A query page: its records and the next page's path, if any.
fn query_page(response: &ApiResponse) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let body = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let records = body.get("records").and_then(Value::as_array).ok_or_else(|| unparseable(response, "no records array"))?;
    let done = body.get("done").and_then(Value::as_bool).unwrap_or(true);
    let next = body.get("nextRecordsUrl").and_then(Value::as_str).filter(|_| !done).map(str::to_string);
    Ok((records.clone(), next))
}

fn cursor_str<'a>(cursor: &'a Value, key: &str) -> Option<&'a str> {
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

// ---------------------------------------------------------------------------
// Writes

/// Refuses, before any request, a column this statement may not set.
fn check_writable(collection: &CollectionSpec, op: WriteOp, name: &str) -> Result<(), SequinError> {
    if collection.column(name).is_some_and(|c| c.writable_by(op)) {
        return Ok(());
    }
    let writable = collection.columns.iter().filter(|c| c.writable_by(op)).map(|c| c.name).collect::<Vec<_>>();
    let detail = match collection.column(name) {
        Some(_) => "Salesforce sets it.".to_string(),
        None => format!("Salesforce {} has no such field.", collection.name),
    };
    Err(SequinError::new(
        ErrorKind::ReadOnlyColumn,
        format!("column \"{name}\" of Salesforce {} cannot be written", collection.name),
    )
    .with_detail(detail)
    .with_hint(format!("Columns an {} may set: {}.", op.as_sql(), writable.join(", "))))
}

/// The fields a row sets, by Salesforce name. A create leaves out nulls
/// (the columns the INSERT did not set, and Salesforce's defaults apply); an
/// update sends them, which clears the field.
fn sobject_fields(collection: &CollectionSpec, op: WriteOp, row: &WriteRow) -> Result<Map<String, Value>, SequinError> {
    let mut fields = Map::new();
    for (name, value) in row {
        if op == WriteOp::Insert && *value == WriteValue::Null {
            continue;
        }
        check_writable(collection, op, name)?;
        let value = match value {
            WriteValue::Null => Value::Null,
            WriteValue::Text(text) => Value::String(text.clone()),
            WriteValue::Json(json) => json.clone(),
        };
        fields.insert(field_name(name), value);
    }
    Ok(fields)
}

fn row_id(row: &BatchRow, op: WriteOp) -> Result<&str, SequinError> {
    row.id.as_deref().ok_or_else(|| SequinError::internal(format!("a Salesforce {} row without an id", op.as_sql())))
}

/// One Salesforce error object, top-level (`errorCode`) or inside a
/// collection's result (`statusCode`).
fn api_error(error: Option<&Value>, status: u16, fallback: String) -> ApiError {
    let text = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str).map(str::to_string);
    // The OAuth endpoints answer `{"error","error_description"}` instead.
    let code = text("errorCode").or_else(|| text("statusCode")).or_else(|| text("error"));
    let fields = error
        .and_then(|e| e.get("fields"))
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .filter(|f| !f.is_empty());
    ApiError {
        kind: kind_for_code(code.as_deref(), status),
        status,
        message: text("message").or_else(|| text("error_description")).unwrap_or(fallback),
        code,
        field: fields,
        request_id: None,
        retry_after: None,
    }
}

fn kind_for_code(code: Option<&str>, status: u16) -> ErrorKind {
    match code {
        Some("DUPLICATES_DETECTED" | "DUPLICATE_VALUE") => ErrorKind::Conflict,
        Some("INVALID_SESSION_ID") => ErrorKind::Unauthorized,
        Some("REQUEST_LIMIT_EXCEEDED") => ErrorKind::RateLimited,
        Some("NOT_FOUND" | "ENTITY_IS_DELETED") => ErrorKind::NotFound,
        Some(
            "REQUIRED_FIELD_MISSING"
            | "STRING_TOO_LONG"
            | "FIELD_INTEGRITY_EXCEPTION"
            | "MALFORMED_ID"
            | "JSON_PARSER_ERROR"
            | "MISSING_ARGUMENT",
        ) => ErrorKind::Validation,
        Some(code) if code.starts_with("INVALID_") => ErrorKind::Validation,
        _ => kind_for_status(status),
    }
}

/// The first record a collection reply refused, by its own error (the others
/// only say they were rolled back).
fn first_refusal(response: &ApiResponse, results: &[Value]) -> Option<BatchRefusal> {
    let failed = |r: &&Value| r.get("success").and_then(Value::as_bool) != Some(true);
    let errors = |r: &Value| r.get("errors").and_then(Value::as_array).cloned().unwrap_or_default();
    let own_error = |r: &Value| {
        errors(r).into_iter().find(|e| e.get("statusCode").or_else(|| e.get("errorCode")).and_then(Value::as_str) != Some(ROLLED_BACK))
    };
    let refusal = |position: usize, error: Option<Value>| BatchRefusal {
        position,
        error: api_error(error.as_ref(), response.status, "Salesforce refused the record without a message".into()),
    };
    if let Some((position, error)) =
        results.iter().enumerate().filter(|(_, r)| failed(r)).find_map(|(i, r)| own_error(r).map(|e| (i, e)))
    {
        return Some(refusal(position, Some(error)));
    }
    let (position, result) = results.iter().enumerate().find(|(_, r)| failed(r))?;
    Some(refusal(position, errors(result).into_iter().next()))
}

/// The records a successful batch applies locally.
fn batch_records(
    spec: &CollectionSpec,
    op: WriteOp,
    rows: &[BatchRow],
    results: &[Value],
    now_us: i64,
) -> Result<Vec<Record>, &'static str> {
    let mut records = Vec::with_capacity(rows.len());
    for (row, result) in rows.iter().zip(results) {
        let result_id = result.get("id").and_then(Value::as_str);
        let record = match op {
            WriteOp::Insert => {
                let id = result_id.ok_or("a created record without id")?;
                let mut raw = sobject_fields(spec, op, &row.row).map_err(|_| "a row it could not have sent")?;
                raw.insert("Id".into(), Value::String(id.to_string()));
                // Version 0: the sync's full record, with Salesforce's own
                // timestamps and defaults, always replaces it.
                record_from_sobject(spec, &Value::Object(raw), 0).ok_or("a record without id")?
            }
            WriteOp::Update => {
                let id = row.id.as_deref().ok_or("an update without id")?;
                if result_id.is_some_and(|r| r != id) {
                    return Err("a result for another record");
                }
                let (mut raw, version) = match &row.old {
                    Some((Value::Object(old), version)) => (old.clone(), *version),
                    _ => (Map::new(), 0),
                };
                for (name, value) in sobject_fields(spec, op, &row.row).map_err(|_| "a row it could not have sent")? {
                    let value = match value {
                        Value::String(s) if s.is_empty() => Value::Null,
                        other => other,
                    };
                    raw.insert(name, value);
                }
                raw.insert("Id".into(), Value::String(id.to_string()));
                // The old version: the apply takes an equal version with other
                // content, and the sync's newer SystemModstamp replaces it.
                record_from_sobject(spec, &Value::Object(raw), version).ok_or("a record without id")?
            }
            WriteOp::Delete => {
                let id = row.id.as_deref().ok_or("a delete without id")?;
                if result_id.is_some_and(|r| r != id) {
                    return Err("a result for another record");
                }
                Record::gone(id, now_us)
            }
        };
        records.push(record);
    }
    Ok(records)
}

impl Salesforce {
    /// `sync_request` at a given time (tests).
    fn sync_request_at(&self, spec: &CollectionSpec, cursor: &Value, now_us: i64) -> ApiRequest {
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
                        sobject(spec),
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

    fn one_result(response: &ApiResponse) -> Result<Vec<Value>, ApiError> {
        let results = response.json().and_then(|b| b.as_array().cloned()).ok_or_else(|| unparseable(response, "no result array"))?;
        if results.len() != 1 {
            return Err(unparseable(response, "not one result"));
        }
        Ok(results)
    }
}

impl Provider for Salesforce {
    fn columns_from_raw(&self, collection: &CollectionSpec, raw: &Value) -> Map<String, Value> {
        record_from_sobject(collection, raw, 0).map(|r| r.columns).unwrap_or_default()
    }

    /// A single-record request names its record in the path
    /// (`…/sobjects/Contact/{id}`): a DELETE deleted it, a PATCH changed it
    /// (both answer 204), a POST to `…/sobjects/Contact` created the record
    /// its reply names (`{"id", "success": true}`). Ids are those of 18
    /// characters, as records carry them.
    fn records_touched(&self, request: &ApiRequest, response: &ApiResponse, now_us: i64) -> Vec<Touched> {
        let Some(rest) = request.route().strip_prefix("/services/data/v").and_then(|r| r.split_once("/sobjects/")) else {
            return Vec::new();
        };
        let mut segments = rest.1.split('/');
        let (Some(kind), id, None) = (segments.next(), segments.next(), segments.next()) else {
            return Vec::new();
        };
        let Some(collection) = COLLECTIONS.iter().find(|c| c.sobject == kind) else {
            return Vec::new();
        };
        let is_id = |id: &str| id.len() == 18 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        let spec = &collection.spec;
        let touched = match (request.method, id) {
            (Method::Delete, Some(id)) if is_id(id) => Touched::Gone(spec, Record::gone(id, now_us)),
            (Method::Patch, Some(id)) if is_id(id) => Touched::Changed(spec, id.to_string()),
            (Method::Post, None | Some("")) => {
                match response.json().and_then(|b| b.get("id").and_then(Value::as_str).map(str::to_string)) {
                    Some(id) if is_id(&id) => Touched::Changed(spec, id),
                    _ => return Vec::new(),
                }
            }
            _ => return Vec::new(),
        };
        vec![touched]
    }

    /// A record names its sObject type in `attributes.type`. Only a whole
    /// one is a record to apply: every field the collection syncs, and its
    /// SystemModstamp as the version. A record of some fields only (a query
    /// of a few, `?fields=`) would blank the others.
    fn reply_object(&self, object: &Value, _now_us: i64) -> ReplyObject {
        let kind = object.get("attributes").and_then(|a| a.get("type")).and_then(Value::as_str);
        let Some(collection) = COLLECTIONS.iter().find(|c| Some(c.sobject) == kind) else {
            return ReplyObject::Other;
        };
        let whole = collection.spec.columns.iter().all(|c| object.get(field_name(c.name)).is_some());
        match (whole, modstamp(object)) {
            (true, Some(stamp)) => match record_from_sobject(&collection.spec, object, stamp) {
                Some(record) => ReplyObject::Record(&collection.spec, record),
                None => ReplyObject::Other,
            },
            _ => ReplyObject::Other,
        }
    }

    fn name(&self) -> &'static str {
        "salesforce"
    }

    fn label(&self) -> &'static str {
        "Salesforce"
    }

    /// Every org has its own instance URL (`https://mydomain.my.salesforce.com`),
    /// which the server's `base_url` must name; this is only Salesforce's
    /// login host.
    fn default_base_url(&self) -> &'static str {
        "https://login.salesforce.com"
    }

    fn collections(&self) -> &'static [CollectionSpec] {
        &SPECS
    }

    fn auth_headers(&self, access_token: &str) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Bearer {access_token}"))]
    }

    /// The backfill's SOQL query, from the start.
    fn listing_cursor(&self, _spec: &CollectionSpec) -> Value {
        json!({"phase": "backfill"})
    }

    fn sync_request(&self, spec: &CollectionSpec, cursor: &Value) -> ApiRequest {
        self.sync_request_at(spec, cursor, crate::time::now_us())
    }

    fn sync_response(
        &self,
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

    /// A one-record batch. The write path sends batches instead (batch_limit
    /// is over 1); the reply can only be read as an id: see `write_response`.
    fn create_request(&self, spec: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError> {
        self.batch_request(spec, WriteOp::Insert, &[BatchRow { id: None, row: row.clone(), old: None }])
    }

    fn update_request(
        &self,
        spec: &CollectionSpec,
        id: &str,
        row: &WriteRow,
        old_raw: Option<&Value>,
    ) -> Result<ApiRequest, SequinError> {
        let old = old_raw.map(|raw| (raw.clone(), 0));
        self.batch_request(spec, WriteOp::Update, &[BatchRow { id: Some(id.to_string()), row: row.clone(), old }])
    }

    /// Salesforce's single-record DELETE (204, no body), which is how
    /// `write_response` tells a deletion from an update.
    fn delete_request(&self, spec: &CollectionSpec, id: &str) -> ApiRequest {
        ApiRequest {
            method: Method::Delete,
            path: format!("{API}/sobjects/{}/{}", sobject(spec), encode_path_segment(id)),
            body: None,
            idempotency_key: None,
            headers: Vec::new(),
        }
    }

    /// The reply to a one-record request: a delete's is a 204 without a
    /// body; a create's or an update's a one-result batch reply, which names
    /// only the id, so the record comes back with its id alone and version 0:
    /// the apply never lets it overwrite a row, and the sync brings the values.
    fn write_response(
        &self,
        _spec: &CollectionSpec,
        id: Option<&str>,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError> {
        if let (Some(id), true) = (id, response.body.iter().all(u8::is_ascii_whitespace)) {
            return Ok(Record::gone(id, now_us));
        }
        let results = Self::one_result(response)?;
        if let Some(refusal) = first_refusal(response, &results) {
            return Err(refusal.error);
        }
        let result_id = results[0].get("id").and_then(Value::as_str);
        let id = match (id, result_id) {
            (Some(expected), Some(got)) if expected != got => {
                return Err(unparseable(response, "reply is for another record"))
            }
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => return Err(unparseable(response, "a created record without id")),
        };
        let mut columns = Map::new();
        columns.insert("id".into(), Value::String(id.to_string()));
        Ok(Record { id: id.to_string(), version_us: 0, deleted: false, columns, raw: json!({ "Id": id }) })
    }

    fn statement_limit(&self, _op: WriteOp) -> usize {
        BATCH_LIMIT
    }

    fn fetch_request(&self, spec: &CollectionSpec, id: &str) -> ApiRequest {
        ApiRequest::get(format!(
            "{API}/sobjects/{}/{}?fields={}",
            sobject(spec),
            encode_path_segment(id),
            field_list(spec)
        ))
    }

    fn fetch_response(
        &self,
        spec: &CollectionSpec,
        id: &str,
        response: &ApiResponse,
        _now_us: i64,
    ) -> Result<Record, ApiError> {
        let object = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
        let stamp = modstamp(&object).ok_or_else(|| unparseable(response, "record without SystemModstamp"))?;
        let record = record_from_sobject(spec, &object, stamp).ok_or_else(|| unparseable(response, "record without Id"))?;
        if record.id != id {
            return Err(unparseable(response, "reply is for another record"));
        }
        Ok(record)
    }

    /// `SELECT <fields> FROM <Type> WHERE Id IN (…)`: at most 200 ids (a
    /// batch), well within SOQL's length limit.
    fn fetch_many_request(&self, spec: &CollectionSpec, ids: &[&str]) -> Option<ApiRequest> {
        let quoted: Vec<String> = ids.iter().map(|id| format!("'{}'", id.replace('\\', "").replace('\'', ""))).collect();
        Some(query_request(&format!(
            "SELECT {} FROM {} WHERE Id IN ({})",
            field_list(spec),
            sobject(spec),
            quoted.join(",")
        )))
    }

    fn fetch_many_response(&self, spec: &CollectionSpec, response: &ApiResponse) -> Result<Vec<Record>, ApiError> {
        let (objects, _) = query_page(response)?;
        let malformed = || unparseable(response, "record without Id or SystemModstamp");
        objects
            .iter()
            .map(|object| {
                let stamp = modstamp(object).ok_or_else(malformed)?;
                record_from_sobject(spec, object, stamp).ok_or_else(malformed)
            })
            .collect()
    }

    fn error(&self, response: &ApiResponse) -> ApiError {
        let body = response.json();
        let fallback = match &body {
            Some(_) => format!("HTTP {} without an error message", response.status),
            None => format!("HTTP {} with a reply that is not JSON", response.status),
        };
        // An array of errors; the first says what went wrong.
        let first = match &body {
            Some(Value::Array(errors)) => errors.first(),
            Some(object @ Value::Object(_)) => Some(object),
            _ => None,
        };
        let mut error = api_error(first, response.status, fallback);
        error.retry_after = retry_after(response);
        error
    }

    /// The org of the identity URL `id`
    /// (`https://login.salesforce.com/id/<orgId>/<userId>`): every user of
    /// one org shares it, so grants of two users of the org compare equal.
    fn account_from_token_reply(&self, reply: &Value) -> Option<String> {
        let identity = reply.get("id")?.as_str()?;
        let path = identity.split(['?', '#']).next()?;
        let mut segments = path.trim_end_matches('/').rsplit('/');
        let (_user, org, id) = (segments.next()?, segments.next()?, segments.next()?);
        (id == "id" && org.starts_with("00D") && org.chars().all(|c| c.is_ascii_alphanumeric())).then(|| org.to_string())
    }

    fn batch_limit(&self, _op: WriteOp) -> usize {
        BATCH_LIMIT
    }

    fn batch_request(&self, spec: &CollectionSpec, op: WriteOp, rows: &[BatchRow]) -> Result<ApiRequest, SequinError> {
        let path = format!("{API}/composite/sobjects");
        if op == WriteOp::Delete {
            let ids = rows.iter().map(|r| row_id(r, op).map(encode_query_value)).collect::<Result<Vec<_>, _>>()?;
            return Ok(ApiRequest {
                method: Method::Delete,
                path: format!("{path}?ids={}&allOrNone=true", ids.join(",")),
                body: None,
                idempotency_key: None,
                headers: Vec::new(),
            });
        }
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let mut record = Map::new();
            record.insert("attributes".into(), json!({"type": sobject(spec)}));
            if op == WriteOp::Update {
                record.insert("id".into(), Value::String(row_id(row, op)?.to_string()));
            }
            record.extend(sobject_fields(spec, op, &row.row)?);
            records.push(Value::Object(record));
        }
        Ok(ApiRequest {
            method: if op == WriteOp::Insert { Method::Post } else { Method::Patch },
            path,
            body: Some(Body::Json(json!({"allOrNone": true, "records": records}))),
            idempotency_key: None,
            headers: Vec::new(),
        })
    }

    fn batch_response(
        &self,
        spec: &CollectionSpec,
        op: WriteOp,
        rows: &[BatchRow],
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Vec<Record>, BatchRefusal> {
        let refusal = |what: &str| BatchRefusal { position: 0, error: unparseable(response, what) };
        let results = response.json().and_then(|b| b.as_array().cloned()).ok_or_else(|| refusal("no result array"))?;
        if results.len() != rows.len() {
            return Err(refusal("not one result per record"));
        }
        if let Some(refused) = first_refusal(response, &results) {
            return Err(refused);
        }
        batch_records(spec, op, rows, &results, now_us).map_err(refusal)
    }

    /// The deleted endpoint refuses a start older than its 15-day window
    /// with `INVALID_REPLICATION_DATE` (the cursor always asks for an end
    /// more than a minute after the start, the refusal's other cause).
    fn cursor_expired(&self, _spec: &CollectionSpec, cursor: &Value, error: &SequinError) -> Option<String> {
        if cursor_str(cursor, "phase") != Some("incremental")
            || cursor.get("deleted_to").is_none()
            || error.api_code.as_deref() != Some("INVALID_REPLICATION_DATE")
        {
            return None;
        }
        let from = cursor_str(cursor, "deleted_from").unwrap_or("unknown");
        Some(format!(
            "Salesforce keeps deleted records for 15 days and the sync's last check ({from}) is older; starting a new backfill"
        ))
    }

    /// A 403 `REQUEST_LIMIT_EXCEEDED` (the org's daily API allowance is used
    /// up) pauses every request to the server for `REQUEST_LIMIT_PAUSE`;
    /// Salesforce sends no 429, but a 429's `Retry-After` is honoured too.
    fn rate_limit_pause(&self, response: &ApiResponse) -> Option<Duration> {
        if response.status == 403 && self.error(response).code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED") {
            return Some(REQUEST_LIMIT_PAUSE);
        }
        (response.status == 429).then(|| retry_after(response)).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(name: &str) -> &'static CollectionSpec {
        Salesforce.collection(name).unwrap()
    }

    fn contacts() -> &'static CollectionSpec {
        collection("contacts")
    }

    fn reply(status: u16, body: Value) -> ApiResponse {
        ApiResponse { status, headers: vec![], body: serde_json::to_vec(&body).unwrap() }
    }

    fn at(iso: &str) -> i64 {
        parse_datetime(iso).unwrap()
    }

    fn contact(id: &str, stamp: &str) -> Value {
        json!({"attributes": {"type": "Contact", "url": format!("/services/data/v60.0/sobjects/Contact/{id}")},
               "Id": id, "FirstName": "Ann", "LastName": "Lee", "Name": "Ann Lee", "Email": "ann@example.com",
               "Phone": null, "Title": "", "AccountId": null, "IsDeleted": false,
               "CreatedDate": "2026-01-01T00:00:00.000+0000", "LastModifiedDate": stamp, "SystemModstamp": stamp})
    }

    fn page(records: Vec<Value>, next: Option<&str>) -> ApiResponse {
        let mut body = json!({"totalSize": 4500, "done": next.is_none(), "records": records});
        if let Some(next) = next {
            body["nextRecordsUrl"] = json!(next);
        }
        reply(200, body)
    }

    fn text(name: &str, value: &str) -> (String, WriteValue) {
        (name.to_string(), WriteValue::Text(value.into()))
    }

    const CONTACT_FIELDS: &str = "Id,FirstName,LastName,Name,Email,Phone,Title,Department,AccountId,MailingCity,\
                                  LeadSource,IsDeleted,CreatedDate,LastModifiedDate,SystemModstamp";

    #[test]
    fn collections_map_columns_to_the_mocks_fields() {
        let names: Vec<&str> = Salesforce.collections().iter().map(|c| c.name).collect();
        assert_eq!(names, ["accounts", "contacts", "leads", "opportunities"]);
        assert_eq!(field_list(contacts()), CONTACT_FIELDS);
        assert_eq!(
            field_list(collection("opportunities")),
            "Id,Name,StageName,CloseDate,Amount,Probability,AccountId,Type,LeadSource,Description,\
             IsDeleted,CreatedDate,LastModifiedDate,SystemModstamp"
        );
        assert_eq!(field_name("number_of_employees"), "NumberOfEmployees");
        for spec in Salesforce.collections() {
            assert_eq!(spec.columns[0], col("id", "text", Never), "{}", spec.name);
            for system in ["id", "is_deleted", "created_date", "last_modified_date", "system_modstamp"] {
                assert_eq!(spec.column(system).unwrap().writable, Never, "{} {system}", spec.name);
            }
            assert!(WriteOp::ALL.iter().all(|op| spec.allows(*op)));
        }
        assert_eq!(contacts().column("name").unwrap().writable, Never);
        assert_eq!(collection("accounts").column("name").unwrap().writable, Always);
        assert_eq!(collection("opportunities").column("close_date").unwrap().sql_type, "date");
        assert_eq!(Salesforce.statement_limit(WriteOp::Insert), 200);
        assert!(WriteOp::ALL.iter().all(|op| Salesforce.batch_limit(*op) == 200));
        assert_eq!(Salesforce.auth_headers("tok"), vec![("Authorization".to_string(), "Bearer tok".to_string())]);
        assert!(super::super::by_name("salesforce").is_some());
    }

    #[test]
    fn times_and_dates_convert() {
        assert_eq!(at("2026-01-01T00:00:00.000+0000"), 1_767_225_600_000_000);
        assert_eq!(at("2026-01-01T00:00:00Z"), 1_767_225_600_000_000);
        assert_eq!(at("2026-01-01T02:00:00.5+02:00"), 1_767_225_600_500_000);
        assert_eq!(at("2025-12-31T23:00:00.123-0100"), 1_767_225_600_123_000);
        assert_eq!(parse_datetime("2026-01-01"), None);
        assert_eq!(parse_datetime("2026-13-01T00:00:00Z"), None);
        assert_eq!(iso_ms(1_767_225_600_123_456), "2026-01-01T00:00:00.123Z");
        assert_eq!(deleted_bound(1_767_225_659_999_999), "2026-01-01T00:00:59+00:00");

        let mut opportunity = json!({"attributes": {"type": "Opportunity"}, "Id": "0065g00000000001AAA",
            "Name": "Big", "CloseDate": "2026-12-31", "Amount": 1000.0, "SystemModstamp": "2026-01-01T00:00:00.000+0000",
            "CreatedDate": "2026-01-01T00:00:00.000+0000"});
        let record = record_from_sobject(collection("opportunities"), &opportunity, 7).unwrap();
        assert_eq!(record.columns["close_date"], json!("2026-12-31"));
        assert_eq!(record.columns["amount"], json!(1000.0));
        assert_eq!(record.columns["created_date"], json!("2026-01-01T00:00:00.000000Z"));
        assert_eq!(record.columns["system_modstamp"], json!("2026-01-01T00:00:00.000000Z"));
        assert!(record.raw.get("attributes").is_none());
        assert_eq!(record.raw["SystemModstamp"], json!("2026-01-01T00:00:00.000+0000"));
        opportunity["NumberOfEmployees"] = json!(50.0);
        let account = record_from_sobject(collection("accounts"), &opportunity, 7).unwrap();
        assert_eq!(account.columns["number_of_employees"], json!(50));
    }

    #[test]
    fn the_backfill_queries_every_field_ordered_by_systemmodstamp() {
        let spec = contacts();
        for cursor in [json!({}), json!({"phase": "backfill"})] {
            let request = Salesforce.sync_request_at(spec, &cursor, 0);
            assert_eq!(request.method, Method::Get);
            assert_eq!(
                request.path,
                format!("/services/data/v60.0/query?q=SELECT+{CONTACT_FIELDS}+FROM+Contact+ORDER+BY+SystemModstamp,+Id")
            );
        }
    }

    #[test]
    fn backfill_pages_follow_next_records_url_then_switch_to_incremental() {
        let spec = contacts();
        let started = at("2026-03-01T12:00:00.000Z") + 456;
        let next = "/services/data/v60.0/query/01gA-2000";
        let body = page(vec![contact("003A", "2026-01-01T00:00:00.000+0000"), contact("003B", "2026-03-01T12:00:05.000+0000")], Some(next));
        let first = Salesforce.sync_response(spec, &json!({"phase": "backfill"}), &body, started).unwrap();
        assert_eq!(
            first.cursor,
            json!({"phase": "backfill", "started": "2026-03-01T12:00:00.000Z", "last": "2026-03-01T12:00:05.000Z",
                   "next": next, "next_at": "2026-03-01T12:00:00.000Z"})
        );
        assert_eq!(first.phase, Phase::Backfill);
        // A record's version is its SystemModstamp.
        assert_eq!(first.records[0].version_us, at("2026-01-01T00:00:00.000Z"));
        assert_eq!(first.records[1].version_us, at("2026-03-01T12:00:05.000Z"));
        assert_eq!(first.records[0].columns["first_name"], json!("Ann"));
        assert_eq!(first.records[0].columns["title"], Value::Null);

        // The next page is the locator's path, fetched as it is.
        let later = started + 2_000_000;
        assert_eq!(Salesforce.sync_request_at(spec, &first.cursor, later).path, next);
        let last = page(vec![contact("003C", "2026-02-01T00:00:00.000+0000")], None);
        let done = Salesforce.sync_response(spec, &first.cursor, &last, later).unwrap();
        assert_eq!(done.phase, Phase::Incremental);
        assert!(done.more);
        assert_eq!(
            done.cursor,
            json!({"phase": "incremental", "since": "2026-03-01T12:00:00.000Z", "deleted_from": "2026-03-01T12:00:00.000Z"})
        );
        assert_eq!(done.records[0].version_us, at("2026-02-01T00:00:00.000Z"));
    }

    #[test]
    fn a_stale_locator_is_replaced_by_the_query_from_where_the_cursor_is() {
        let spec = contacts();
        let cursor = json!({"phase": "backfill", "started": "2026-03-01T12:00:00.000Z", "last": "2026-03-01T12:00:05.000Z",
                            "next": "/services/data/v60.0/query/01gA-2000", "next_at": "2026-03-01T12:00:00.000Z"});
        let now = at("2026-03-01T12:01:00.001Z");
        let path = Salesforce.sync_request_at(spec, &cursor, now).path;
        assert!(path.ends_with("+FROM+Contact+WHERE+SystemModstamp+%3E%3D+2026-03-01T12%3A00%3A05.000Z+ORDER+BY+SystemModstamp,+Id"), "{path}");
        let incremental = json!({"phase": "incremental", "since": "2026-03-01T12:00:40.000Z", "deleted_from": "2026-03-01T12:00:00.000Z",
                                 "next": "/services/data/v60.0/query/01gB-2000", "next_at": "2026-03-01T12:00:00.000Z"});
        let path = Salesforce.sync_request_at(spec, &incremental, now).path;
        assert!(path.contains("+WHERE+SystemModstamp+%3E+2026-03-01T12%3A00%3A10.000Z+"), "{path}");
        // A refused locator fails the page (not a backfill); its retry runs the query.
        let error = SequinError { api_code: Some("INVALID_QUERY_LOCATOR".into()), ..SequinError::new(ErrorKind::Validation, "x") };
        assert_eq!(Salesforce.cursor_expired(spec, &incremental, &error), None);
        assert_eq!(Salesforce.cursor_expired(spec, &cursor, &error), None);
    }

    #[test]
    fn incremental_reads_back_a_lookback_window_and_then_the_deletions() {
        let spec = contacts();
        let cursor = json!({"phase": "incremental", "since": "2026-03-01T12:00:40.000Z", "deleted_from": "2026-03-01T12:00:00.000Z"});
        let path = Salesforce.sync_request_at(spec, &cursor, 0).path;
        assert_eq!(
            path,
            format!("/services/data/v60.0/query?q=SELECT+{CONTACT_FIELDS}+FROM+Contact+WHERE+SystemModstamp+%3E+\
                     2026-03-01T12%3A00%3A10.000Z+ORDER+BY+SystemModstamp,+Id")
        );
        let now = at("2026-03-01T12:05:00.000Z");
        let body = page(vec![contact("003A", "2026-03-01T12:00:30.000+0000"), contact("003B", "2026-03-01T12:04:00.000+0000")], Some("/services/data/v60.0/query/01gC-2000"));
        let first = Salesforce.sync_response(spec, &cursor, &body, now).unwrap();
        assert_eq!(first.records[0].version_us, at("2026-03-01T12:00:30.000Z"));
        assert_eq!(first.cursor["since"], json!("2026-03-01T12:04:00.000Z"));
        assert_eq!(first.cursor["next"], json!("/services/data/v60.0/query/01gC-2000"));
        assert!(first.more && first.phase == Phase::Incremental);
        // An older record on a later page never moves `since` back.
        let last = page(vec![contact("003C", "2026-03-01T12:03:00.000+0000")], None);
        let done = Salesforce.sync_response(spec, &first.cursor, &last, now + 1000).unwrap();
        assert_eq!(
            done.cursor,
            json!({"phase": "incremental", "since": "2026-03-01T12:04:00.000Z", "deleted_from": "2026-03-01T12:00:00.000Z",
                   "deleted_to": "2026-03-01T12:05:00.001Z"})
        );
        assert!(done.more);

        let request = Salesforce.sync_request_at(spec, &done.cursor, 0);
        assert_eq!(
            request.path,
            "/services/data/v60.0/sobjects/Contact/deleted/?start=2026-03-01T12%3A00%3A00%2B00%3A00&end=2026-03-01T12%3A05%3A00%2B00%3A00"
        );
        let deleted = reply(200, json!({"deletedRecords": [{"id": "003A", "deletedDate": "2026-03-01T12:01:02.000+0000"}],
                                        "earliestDateAvailable": "2026-02-14T12:00:00.000+0000",
                                        "latestDateCovered": "2026-03-01T12:05:00.000+0000"}));
        let gone = Salesforce.sync_response(spec, &done.cursor, &deleted, now).unwrap();
        assert_eq!(gone.records, vec![Record::gone("003A", at("2026-03-01T12:01:02Z"))]);
        assert_eq!(
            gone.cursor,
            json!({"phase": "incremental", "since": "2026-03-01T12:04:00.000Z", "deleted_from": "2026-03-01T12:05:00.000Z"})
        );
        assert!(!gone.more && gone.phase == Phase::Incremental);

        // The end is always more than a minute after the start.
        let soon = json!({"phase": "incremental", "since": "2026-03-01T12:05:00.000Z", "deleted_from": "2026-03-01T12:05:00.000Z",
                          "deleted_to": "2026-03-01T12:05:20.000Z"});
        assert!(Salesforce.sync_request_at(spec, &soon, 0).path.ends_with("&end=2026-03-01T12%3A07%3A00%2B00%3A00"));
    }

    #[test]
    fn a_deleted_check_older_than_15_days_has_expired() {
        let spec = contacts();
        let refusal = |code: &str| SequinError { api_code: Some(code.into()), ..SequinError::new(ErrorKind::Validation, "x") };
        let deleting = json!({"phase": "incremental", "since": "2026-03-01T12:00:00.000Z", "deleted_from": "2026-02-01T00:00:00.000Z",
                              "deleted_to": "2026-03-01T12:00:00.000Z"});
        assert_eq!(
            Salesforce.cursor_expired(spec, &deleting, &refusal("INVALID_REPLICATION_DATE")).as_deref(),
            Some("Salesforce keeps deleted records for 15 days and the sync's last check (2026-02-01T00:00:00.000Z) is older; starting a new backfill")
        );
        assert_eq!(Salesforce.cursor_expired(spec, &deleting, &refusal("UNKNOWN_EXCEPTION")), None);
        let querying = json!({"phase": "incremental", "since": "2026-03-01T12:00:00.000Z", "deleted_from": "2026-02-01T00:00:00.000Z"});
        assert_eq!(Salesforce.cursor_expired(spec, &querying, &refusal("INVALID_REPLICATION_DATE")), None);
        assert_eq!(Salesforce.cursor_expired(spec, &json!({}), &refusal("INVALID_REPLICATION_DATE")), None);
    }

    #[test]
    fn the_org_comes_from_the_token_replys_identity_url() {
        let org = |id: Value| Salesforce.account_from_token_reply(&json!({"access_token": "00Dx!secret", "id": id}));
        assert_eq!(
            org(json!("https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS")).as_deref(),
            Some("00Dxx0000001gPLEAY")
        );
        assert_eq!(org(json!("http://127.0.0.1:8080/id/00D000000000001AAA/005000000000001AAA/")).as_deref(), Some("00D000000000001AAA"));
        for wrong in [json!(null), json!(42), json!("https://x/id/005xx/00Dxx"), json!("https://x/services/00Dxx/005xx"), json!("00Dxx")] {
            assert_eq!(org(wrong), None);
        }
        assert_eq!(Salesforce.account_from_token_reply(&json!({"access_token": "t"})), None);
        // No request of its own: the org is known from the token reply.
        assert_eq!(Salesforce.account_request(), None);
    }

    #[test]
    fn errors_map_salesforce_codes() {
        let error = |status: u16, code: &str, fields: Value| {
            Salesforce.error(&reply(status, json!([{"message": "m", "errorCode": code, "fields": fields}])))
        };
        let kind = |status: u16, code: &str| error(status, code, json!([])).kind;
        assert_eq!(kind(400, "DUPLICATES_DETECTED"), ErrorKind::Conflict);
        for code in [
            "REQUIRED_FIELD_MISSING",
            "INVALID_EMAIL_ADDRESS",
            "STRING_TOO_LONG",
            "FIELD_INTEGRITY_EXCEPTION",
            "INVALID_FIELD",
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "INVALID_CROSS_REFERENCE_KEY",
            "INVALID_TYPE",
            "MALFORMED_ID",
            "JSON_PARSER_ERROR",
        ] {
            assert_eq!(kind(400, code), ErrorKind::Validation, "{code}");
        }
        assert_eq!(kind(401, "INVALID_SESSION_ID"), ErrorKind::Unauthorized);
        assert_eq!(kind(403, "REQUEST_LIMIT_EXCEEDED"), ErrorKind::RateLimited);
        assert_eq!(kind(404, "NOT_FOUND"), ErrorKind::NotFound);
        assert_eq!(kind(404, "ENTITY_IS_DELETED"), ErrorKind::NotFound);
        assert_eq!(kind(500, "UNKNOWN_EXCEPTION"), ErrorKind::Upstream);
        assert_eq!(kind(405, "METHOD_NOT_ALLOWED"), ErrorKind::Upstream);

        let body = json!([{"message": "Email: invalid email address: andrea__invalid", "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}]);
        let invalid = Salesforce.error(&reply(400, body));
        assert_eq!(invalid.message, "Email: invalid email address: andrea__invalid");
        assert_eq!(invalid.code.as_deref(), Some("INVALID_EMAIL_ADDRESS"));
        assert_eq!(invalid.field.as_deref(), Some("Email"));
        let request = Salesforce.fetch_request(contacts(), "003A");
        let user_error = invalid.into_error("Salesforce", &request);
        assert_eq!(user_error.message, "[Salesforce]: Email: invalid email address: andrea__invalid");
        assert_eq!(
            user_error.detail.as_deref(),
            Some("HTTP 400 on GET /services/data/v60.0/sobjects/Contact/003A, code INVALID_EMAIL_ADDRESS, field \"Email\"")
        );
        assert_eq!(error(400, "REQUIRED_FIELD_MISSING", json!(["LastName", "Company"])).field.as_deref(), Some("LastName, Company"));
        assert_eq!(Salesforce.error(&reply(400, json!([{"message": "x", "errorCode": "INVALID_FIELD"}]))).field, None);
        let oauth = Salesforce.error(&reply(400, json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})));
        assert_eq!((oauth.kind, oauth.message.as_str()), (ErrorKind::Validation, "expired access/refresh token"));
        assert_eq!(oauth.code.as_deref(), Some("invalid_grant"));
        let html = Salesforce.error(&ApiResponse { status: 502, headers: vec![], body: b"<html>".to_vec() });
        assert_eq!((html.kind, html.message.as_str()), (ErrorKind::Upstream, "HTTP 502 with a reply that is not JSON"));
    }

    #[test]
    fn the_daily_limit_pauses_the_server() {
        let limited = reply(403, json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]));
        assert_eq!(Salesforce.rate_limit_pause(&limited), Some(Duration::from_secs(60)));
        let forbidden = reply(403, json!([{"message": "no", "errorCode": "INSUFFICIENT_ACCESS"}]));
        assert_eq!(Salesforce.rate_limit_pause(&forbidden), None);
        assert_eq!(Salesforce.rate_limit_pause(&reply(200, json!({}))), None);
        let mut faulted = reply(429, json!({}));
        faulted.headers.push(("retry-after".into(), "2".into()));
        assert_eq!(Salesforce.rate_limit_pause(&faulted), Some(Duration::from_secs(2)));
    }

    fn insert_rows() -> Vec<BatchRow> {
        vec![
            BatchRow {
                id: None,
                row: vec![text("last_name", "Lee"), ("first_name".into(), WriteValue::Null), text("email", "ann@example.com")],
                old: None,
            },
            BatchRow { id: None, row: vec![text("last_name", "Ng")], old: None },
        ]
    }

    #[test]
    fn inserts_are_one_all_or_none_collection_request() {
        let request = Salesforce.batch_request(contacts(), WriteOp::Insert, &insert_rows()).unwrap();
        assert_eq!((request.method, request.path.as_str()), (Method::Post, "/services/data/v60.0/composite/sobjects"));
        assert_eq!(
            request.body,
            Some(Body::Json(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Contact"}, "LastName": "Lee", "Email": "ann@example.com"},
                {"attributes": {"type": "Contact"}, "LastName": "Ng"},
            ]})))
        );
        let numbers = vec![BatchRow {
            id: None,
            row: vec![text("name", "Big"), text("close_date", "2026-12-31"), ("amount".into(), WriteValue::Json(json!(1500.5)))],
            old: None,
        }];
        let request = Salesforce.batch_request(collection("opportunities"), WriteOp::Insert, &numbers).unwrap();
        assert_eq!(
            request.body,
            Some(Body::Json(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Opportunity"}, "Name": "Big", "CloseDate": "2026-12-31", "Amount": 1500.5}]})))
        );
    }

    #[test]
    fn updates_send_the_id_and_the_set_columns_with_nulls_and_deletes_send_ids() {
        let rows = vec![BatchRow {
            id: Some("003A".into()),
            row: vec![text("title", "VP"), ("phone".into(), WriteValue::Null)],
            old: None,
        }];
        let request = Salesforce.batch_request(contacts(), WriteOp::Update, &rows).unwrap();
        assert_eq!((request.method, request.path.as_str()), (Method::Patch, "/services/data/v60.0/composite/sobjects"));
        assert_eq!(
            request.body,
            Some(Body::Json(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Contact"}, "id": "003A", "Title": "VP", "Phone": null}]})))
        );
        let ids = ["003A", "003B"].map(|id| BatchRow { id: Some(id.into()), row: vec![], old: None });
        let request = Salesforce.batch_request(contacts(), WriteOp::Delete, &ids).unwrap();
        assert_eq!(request.method, Method::Delete);
        assert_eq!(request.path, "/services/data/v60.0/composite/sobjects?ids=003A,003B&allOrNone=true");
        assert_eq!(request.body, None);
    }

    #[test]
    fn read_only_and_unknown_columns_are_refused_before_any_request() {
        let rows = |row: WriteRow| vec![BatchRow { id: Some("003A".into()), row, old: None }];
        let error = Salesforce.batch_request(contacts(), WriteOp::Update, &rows(vec![text("system_modstamp", "2026-01-01")])).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
        assert_eq!(error.message, "column \"system_modstamp\" of Salesforce contacts cannot be written");
        assert!(error.hint.unwrap().starts_with("Columns an UPDATE may set: first_name, last_name, email,"));
        let error = Salesforce.batch_request(contacts(), WriteOp::Insert, &rows(vec![text("name", "Ann Lee")])).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
        let error = Salesforce.batch_request(contacts(), WriteOp::Insert, &rows(vec![text("nickname", "A")])).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
        // An INSERT's unset columns (nulls) are not sent, so never refused.
        let implicit = vec![("id".to_string(), WriteValue::Null), text("last_name", "Lee")];
        assert!(Salesforce.batch_request(contacts(), WriteOp::Insert, &rows(implicit)).is_ok());
    }

    #[test]
    fn a_successful_batch_applies_what_was_sent() {
        let ok = |id: &str| json!({"id": id, "success": true, "errors": []});
        let inserted = Salesforce
            .batch_response(contacts(), WriteOp::Insert, &insert_rows(), &reply(200, json!([ok("003A"), ok("003B")])), 9)
            .unwrap();
        assert_eq!(inserted.len(), 2);
        assert_eq!((inserted[0].id.as_str(), inserted[0].version_us, inserted[0].deleted), ("003A", 0, false));
        assert_eq!(inserted[0].raw, json!({"Id": "003A", "LastName": "Lee", "Email": "ann@example.com"}));
        assert_eq!(inserted[0].columns["id"], json!("003A"));
        assert_eq!(inserted[0].columns["last_name"], json!("Lee"));
        assert_eq!(inserted[1].columns["last_name"], json!("Ng"));

        let old = contact("003A", "2026-01-01T00:00:00.000+0000");
        let mut old_raw = old.clone();
        old_raw.as_object_mut().unwrap().remove("attributes");
        let rows = vec![BatchRow {
            id: Some("003A".into()),
            row: vec![text("title", "VP"), ("email".into(), WriteValue::Null)],
            old: Some((old_raw, 42)),
        }];
        let updated = Salesforce.batch_response(contacts(), WriteOp::Update, &rows, &reply(200, json!([ok("003A")])), 9).unwrap();
        assert_eq!(updated[0].version_us, 42);
        assert_eq!(updated[0].raw["Title"], json!("VP"));
        assert_eq!(updated[0].raw["Email"], Value::Null);
        assert_eq!(updated[0].raw["LastName"], json!("Lee"));
        assert_eq!(updated[0].columns["title"], json!("VP"));
        assert_eq!(updated[0].columns["first_name"], json!("Ann"));
        assert_eq!(updated[0].columns["system_modstamp"], json!("2026-01-01T00:00:00.000000Z"));

        let ids = ["003A", "003B"].map(|id| BatchRow { id: Some(id.into()), row: vec![], old: None });
        let deleted = Salesforce.batch_response(contacts(), WriteOp::Delete, &ids, &reply(200, json!([ok("003A"), ok("003B")])), 9).unwrap();
        assert_eq!(deleted, vec![Record::gone("003A", 9), Record::gone("003B", 9)]);
        // Not one result per row: unparseable.
        let short = Salesforce.batch_response(contacts(), WriteOp::Delete, &ids, &reply(200, json!([ok("003A")])), 9).unwrap_err();
        assert_eq!(short.error.kind, ErrorKind::Upstream);
    }

    #[test]
    fn a_refused_batch_names_the_first_row_at_fault() {
        let rolled_back = json!({"success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []}]});
        let refused = |code: &str, message: &str, fields: Value| {
            json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]})
        };
        let body = json!([
            rolled_back,
            refused("DUPLICATES_DETECTED", "Use one of these records?", json!([])),
            refused("INVALID_EMAIL_ADDRESS", "Email: invalid email address: x", json!(["Email"])),
        ]);
        let rows = vec![insert_rows()[1].clone(), insert_rows()[1].clone(), insert_rows()[1].clone()];
        let refusal = Salesforce.batch_response(contacts(), WriteOp::Insert, &rows, &reply(200, body), 0).unwrap_err();
        assert_eq!(refusal.position, 1);
        assert_eq!(refusal.error.kind, ErrorKind::Conflict);
        assert_eq!(refusal.error.message, "Use one of these records?");
        assert_eq!(refusal.error.code.as_deref(), Some("DUPLICATES_DETECTED"));
        assert_eq!(refusal.error.field, None);

        let body = json!([rolled_back, refused("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", json!(["LastName"]))]);
        let refusal = Salesforce.batch_response(contacts(), WriteOp::Insert, &rows[..2], &reply(200, body), 0).unwrap_err();
        assert_eq!((refusal.position, refusal.error.kind), (1, ErrorKind::Validation));
        assert_eq!(refusal.error.field.as_deref(), Some("LastName"));
    }

    #[test]
    fn single_row_writes_are_one_row_batches_and_deletes_the_record_endpoint() {
        let spec = contacts();
        let create = Salesforce.create_request(spec, &vec![text("last_name", "Lee")]).unwrap();
        assert_eq!(create.path, "/services/data/v60.0/composite/sobjects");
        let record = Salesforce.write_response(spec, None, &reply(200, json!([{"id": "003A", "success": true, "errors": []}])), 5).unwrap();
        assert_eq!((record.id.as_str(), record.version_us, record.deleted), ("003A", 0, false));
        let update = Salesforce.update_request(spec, "003A", &vec![text("title", "VP")], None).unwrap();
        assert_eq!(update.method, Method::Patch);
        let refused = json!([{"success": false, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}]);
        assert_eq!(Salesforce.write_response(spec, Some("003A"), &reply(200, refused), 5).unwrap_err().kind, ErrorKind::NotFound);
        let delete = Salesforce.delete_request(spec, "003A");
        assert_eq!((delete.method, delete.path.as_str()), (Method::Delete, "/services/data/v60.0/sobjects/Contact/003A"));
        let gone = Salesforce.write_response(spec, Some("003A"), &ApiResponse { status: 204, headers: vec![], body: vec![] }, 5).unwrap();
        assert_eq!(gone, Record::gone("003A", 5));
    }

    #[test]
    fn several_records_are_read_back_with_one_query() {
        let spec = contacts();
        let request = Salesforce.fetch_many_request(spec, &["003A", "003B"]).unwrap();
        assert_eq!(
            request.path,
            format!("/services/data/v60.0/query?q=SELECT+{CONTACT_FIELDS}+FROM+Contact+WHERE+Id+IN+%28%27003A%27,%27003B%27%29")
        );
        let body = page(vec![contact("003B", "2026-01-02T00:00:00.000+0000"), contact("003A", "2026-01-01T00:00:00.000+0000")], None);
        let records = Salesforce.fetch_many_response(spec, &body).unwrap();
        assert_eq!(records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["003B", "003A"]);
        assert_eq!(records[1].version_us, at("2026-01-01T00:00:00.000Z"));
    }

    #[test]
    fn fetch_reads_one_record_with_the_synced_fields() {
        let request = Salesforce.fetch_request(contacts(), "003A");
        assert_eq!(request.path, format!("/services/data/v60.0/sobjects/Contact/003A?fields={CONTACT_FIELDS}"));
        let record = Salesforce.fetch_response(contacts(), "003A", &reply(200, contact("003A", "2026-01-02T00:00:00.000+0000")), 0).unwrap();
        assert_eq!(record.version_us, at("2026-01-02T00:00:00Z"));
        assert_eq!(record.columns["last_modified_date"], json!("2026-01-02T00:00:00.000000Z"));
        assert!(Salesforce.fetch_response(contacts(), "003B", &reply(200, contact("003A", "2026-01-02T00:00:00.000+0000")), 0).is_err());
    }

    #[test]
    fn a_request_reply_applies_whole_records_of_synced_types() {
        let mut whole = contact("003A", "2026-01-02T00:00:00.000+0000");
        for field in ["Department", "MailingCity", "LeadSource"] {
            whole[field] = Value::Null;
        }
        // One record (GET …/sobjects/Contact/003A) or a query's page.
        let found = records_in_reply(&Salesforce, &whole, 0);
        assert_eq!(found.len(), 1);
        let (spec, record) = &found[0];
        assert_eq!((spec.name, record.id.as_str()), ("contacts", "003A"));
        assert_eq!(record.version_us, at("2026-01-02T00:00:00Z"));
        assert_eq!(record.raw.get("attributes"), None);
        let page = json!({"totalSize": 2, "done": true, "records": [whole.clone(), contact("003B", "2026-01-02T00:00:00.000+0000")]});
        let found = records_in_reply(&Salesforce, &page, 0);
        // 003B lacks fields the table syncs: a partial record is not applied.
        assert_eq!(found.iter().map(|(_, r)| r.id.as_str()).collect::<Vec<_>>(), vec!["003A"]);
        // Other types, write replies and records without SystemModstamp neither.
        let mut user = whole.clone();
        user["attributes"]["type"] = json!("User");
        let mut unstamped = whole.clone();
        unstamped.as_object_mut().unwrap().remove("SystemModstamp");
        for reply in [user, unstamped, json!({"id": "003A", "success": true, "errors": []}), json!([{"id": "003A", "success": true}])] {
            assert!(records_in_reply(&Salesforce, &reply, 0).is_empty(), "{reply}");
        }
        // Bodies are JSON, sent as given; there is no idempotency key.
        assert_eq!(Salesforce.request_body(&json!({"LastName": "Lee"})).unwrap(), Body::Json(json!({"LastName": "Lee"})));
        assert_eq!(Salesforce.idempotency_key(Method::Post), None);
    }

    #[test]
    fn single_record_writes_name_what_they_changed() {
        let id = "003000000000001AAA";
        let request = |method: Method, path: &str| ApiRequest { method, ..ApiRequest::get(path) };
        let no_content = ApiResponse { status: 204, headers: vec![], body: vec![] };
        let touched = |method, path: &str, response: &ApiResponse| Salesforce.records_touched(&request(method, path), response, 7);
        assert_eq!(
            touched(Method::Delete, &format!("/services/data/v60.0/sobjects/Contact/{id}"), &no_content),
            vec![Touched::Gone(contacts(), Record::gone(id, 7))]
        );
        assert_eq!(
            touched(Method::Patch, &format!("/services/data/v58.0/sobjects/Contact/{id}?x=1"), &no_content),
            vec![Touched::Changed(contacts(), id.to_string())]
        );
        let created = reply(201, json!({"id": id, "success": true, "errors": []}));
        assert_eq!(
            touched(Method::Post, "/services/data/v60.0/sobjects/Contact", &created),
            vec![Touched::Changed(contacts(), id.to_string())]
        );
        // Not a synced type, a 15-character id, other routes: nothing.
        for (method, path) in [
            (Method::Delete, format!("/services/data/v60.0/sobjects/User/{id}")),
            (Method::Delete, "/services/data/v60.0/sobjects/Contact/003000000000001".to_string()),
            (Method::Get, format!("/services/data/v60.0/sobjects/Contact/{id}")),
            (Method::Patch, format!("/services/data/v60.0/sobjects/Contact/Email/{id}")),
            (Method::Delete, format!("/services/data/v60.0/composite/sobjects?ids={id}")),
            (Method::Delete, format!("/other/sobjects/Contact/{id}")),
        ] {
            assert!(touched(method, &path, &no_content).is_empty(), "{method:?} {path}");
        }
    }
}
