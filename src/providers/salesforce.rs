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
//! * `{}` and then `{"phase":"backfill","step":"settle"}` → two cheap
//!   `SELECT Id FROM <Type> LIMIT 1` requests, whose replies are not applied.
//!   The engine sets the backfill's start time when it saves the first page
//!   and sends a request before the page before it is saved: after these two,
//!   the backfill's query is sent after that start time, which the records'
//!   versions must not precede (see `record_version` below);
//! * `{"phase":"backfill"}` → `SELECT <fields> FROM <Type> ORDER BY
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
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') || b[13] != b':' || b[16] != b':' {
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
                4 => (digits(&zone[..2])?, digits(&zone[2..])?),
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
    let code = text("errorCode").or_else(|| text("statusCode"));
    let fields = error
        .and_then(|e| e.get("fields"))
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .filter(|f| !f.is_empty());
    ApiError {
        kind: kind_for_code(code.as_deref(), status),
        status,
        message: text("message").unwrap_or(fallback),
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
        let anchor = || query_request(&format!("SELECT Id FROM {} LIMIT 1", sobject(spec)));
        match (cursor_str(cursor, "phase"), cursor_str(cursor, "step")) {
            (None, _) | (Some("backfill"), Some("settle")) => anchor(),
            (Some("backfill"), _) => match fresh_next(cursor, now_us) {
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

/// The version of a record the backfill read: its SystemModstamp, but never
/// earlier than the backfill's query. The query's pages show the records as
/// they were when it ran (`started`), so that is true of each of them; and
/// the engine marks deleted, when the backfill ends, every row whose version
/// is older than the backfill's start, which a record unchanged for a year
/// would be.
fn record_version(stamp: i64, started: i64) -> i64 {
    stamp.max(started)
}

impl Provider for Salesforce {
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
        match (cursor_str(cursor, "phase"), cursor_str(cursor, "step")) {
            (None, _) | (Some("backfill"), Some("settle")) => {
                query_page(response)?;
                let cursor = match cursor_str(cursor, "phase") {
                    None => json!({"phase": "backfill", "step": "settle"}),
                    Some(_) => json!({"phase": "backfill"}),
                };
                Ok(SyncPage { records: vec![], cursor, phase: Phase::Backfill, more: true })
            }
            (Some("backfill"), _) => {
                let (objects, next) = query_page(response)?;
                let started = cursor_us(cursor, "started").unwrap_or_else(|| floor_ms(now_us));
                let mut last = cursor_us(cursor, "last");
                let mut records = Vec::with_capacity(objects.len());
                for object in &objects {
                    let stamp = modstamp(object).ok_or_else(malformed)?;
                    last = Some(last.map_or(stamp, |l| l.max(stamp)));
                    records.push(record_from_sobject(spec, object, record_version(stamp, started)).ok_or_else(malformed)?);
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
