//! GitHub's sync: the repository's lists ordered by `updated_at` with
//! `since`, paged by the `Link` header, polled with `If-None-Match` (a 304
//! costs no rate limit), and the records the items are (see the cursor in
//! `mod.rs`).

use super::schema::{kind, Kind};
use crate::providers::*;
use serde_json::{json, Map, Value};

const PAGE_SIZE: u32 = 100;

/// The server's repository, `owner/name` (checked when the server is made).
pub(super) fn repository(spec: &CollectionSpec) -> String {
    spec.setting("repository").unwrap_or_default().split('/').map(encode_path_segment).collect::<Vec<_>>().join("/")
}

/// A list of the collection, oldest change first, changed at or after
/// `since` (ISO 8601) when given.
fn list_path(spec: &CollectionSpec, since: Option<&str>) -> String {
    let repo = repository(spec);
    let since = since.map(|s| format!("&since={}", encode_query_value(s))).unwrap_or_default();
    match kind(spec) {
        Kind::Issues | Kind::PullRequests => {
            format!("/repos/{repo}/issues?state=all&sort=updated&direction=asc&per_page={PAGE_SIZE}{since}")
        }
        Kind::Comments => format!("/repos/{repo}/issues/comments?sort=updated&direction=asc&per_page={PAGE_SIZE}{since}"),
        // Labels have no `since` (nor a change time): the whole list, which
        // a 304 answers while nothing changed.
        Kind::Labels => format!("/repos/{repo}/labels?per_page={PAGE_SIZE}"),
    }
}

/// The `rel="next"` URL of a `Link` header, as a path on the API's host.
pub(super) fn next_link(response: &ApiResponse) -> Option<String> {
    let header = response.header("link")?;
    header.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\""));
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| path_of(url)).flatten()
    })
}

/// `https://api.github.com/repositories/1/issues?page=2` →
/// `/repositories/1/issues?page=2`.
fn path_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let start = rest.find('/')?;
    Some(rest[start..].to_string())
}

pub(super) fn parse_time(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_microsecond())
}

/// GitHub's precision: seconds, `2026-01-01T00:00:00Z`.
fn iso_seconds(us: i64) -> String {
    let full = crate::time::iso8601_from_us(us);
    format!("{}Z", &full[..full.len().min(19)])
}

fn second_of(us: i64) -> i64 {
    us - us.rem_euclid(1_000_000)
}

/// A column's value out of an item: most are the field of the column's
/// name; some are read out of nested objects.
fn field_value(spec: &CollectionSpec, item: &Value, field: &str) -> Option<Value> {
    let names = |list: Option<&Value>, key: &str| -> Value {
        let items = list.and_then(Value::as_array).cloned().unwrap_or_default();
        Value::Array(items.iter().filter_map(|i| i.get(key).or(Some(i)).and_then(Value::as_str).map(Value::from)).collect())
    };
    Some(match field {
        "labels" => names(item.get("labels"), "name"),
        "assignees" => names(item.get("assignees"), "login"),
        "milestone" => item.get("milestone").and_then(|m| m.get("number")).cloned().unwrap_or(Value::Null),
        "author" => item.get("user").and_then(|u| u.get("login")).cloned().unwrap_or(Value::Null),
        "repository" => Value::String(spec.setting("repository").unwrap_or_default().to_string()),
        "issue_number" => item
            .get("issue_url")
            .and_then(Value::as_str)
            .and_then(|url| url.rsplit('/').next())
            .and_then(|n| n.parse::<i64>().ok())
            .map_or(Value::Null, Value::from),
        "merged_at" => item.get("pull_request").and_then(|p| p.get("merged_at")).cloned().unwrap_or(Value::Null),
        other => return item.get(other).cloned(),
    })
}

/// The record an item is; `now_us` versions what carries no `updated_at`
/// (labels).
pub(super) fn record_from_item(spec: &CollectionSpec, item: &Value, now_us: i64) -> Option<Record> {
    let id = match item.get("id")? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let version_us = match item.get("updated_at").and_then(Value::as_str) {
        Some(text) => parse_time(text)?,
        None => second_of(now_us),
    };
    let mut columns = Map::new();
    for column in &spec.columns {
        if let Some(value) = field_value(spec, item, &column.field) {
            columns.insert(column.name.clone(), value);
        }
    }
    Some(Record { id, version_us, deleted: false, columns, raw: item.clone() })
}

/// The list's items this collection keeps (issues and pull requests share
/// a list).
fn keeps(spec: &CollectionSpec, item: &Value) -> bool {
    let is_pull_request = item.get("pull_request").is_some_and(|p| !p.is_null());
    match kind(spec) {
        Kind::Issues => !is_pull_request,
        Kind::PullRequests => is_pull_request,
        Kind::Comments | Kind::Labels => true,
    }
}

fn cursor_str<'a>(cursor: &'a Value, key: &str) -> Option<&'a str> {
    cursor.get(key).and_then(Value::as_str)
}

pub(super) fn sync_request(spec: &CollectionSpec, cursor: &Value) -> ApiRequest {
    if let Some(next) = cursor_str(cursor, "next") {
        return ApiRequest::get(next);
    }
    match cursor_str(cursor, "phase") {
        Some("incremental") => {
            let mut request = ApiRequest::get(list_path(spec, cursor_str(cursor, "since")));
            if let Some(etag) = cursor_str(cursor, "etag") {
                request.headers.push(("If-None-Match".into(), etag.to_string()));
            }
            request
        }
        _ => ApiRequest::get(list_path(spec, None)),
    }
}

pub(super) fn sync_response(spec: &CollectionSpec, cursor: &Value, response: &ApiResponse, now_us: i64) -> Result<SyncPage, ApiError> {
    let incremental = cursor_str(cursor, "phase") == Some("incremental");
    if response.status == 304 {
        // Nothing changed since the list was last read.
        return Ok(SyncPage { records: Vec::new(), cursor: cursor.clone(), phase: Phase::Incremental, more: false });
    }
    let body = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let items = body.as_array().ok_or_else(|| unparseable(response, "not a list"))?;
    let mut records = Vec::with_capacity(items.len());
    let mut newest = cursor_str(cursor, "newest").and_then(parse_time);
    for item in items {
        if let Some(stamp) = item.get("updated_at").and_then(Value::as_str).and_then(parse_time) {
            newest = Some(newest.map_or(stamp, |n| n.max(stamp)));
        }
        if keeps(spec, item) {
            records.push(record_from_item(spec, item, now_us).ok_or_else(|| unparseable(response, "an item without id or time"))?);
        }
    }
    let next = next_link(response);
    let started = cursor_str(cursor, "started").and_then(parse_time).unwrap_or_else(|| second_of(now_us));
    let since = cursor_str(cursor, "since").map(str::to_string);
    let mut page_cursor = match incremental {
        true => json!({"phase": "incremental"}),
        false => json!({"phase": "backfill", "started": iso_seconds(started)}),
    };
    if let Some(newest) = newest {
        page_cursor["newest"] = Value::String(iso_seconds(newest));
    }
    if let Some(next) = next {
        page_cursor["next"] = Value::String(next);
        if let Some(since) = &since {
            page_cursor["since"] = Value::String(since.clone());
        }
        let phase = if incremental { Phase::Incremental } else { Phase::Backfill };
        return Ok(SyncPage { records, cursor: page_cursor, phase, more: true });
    }
    // The list is read to its end.
    let labels = kind(spec) == Kind::Labels;
    let next_since = match (incremental, labels) {
        (_, true) => None,
        // Changes made while the backfill paged are read again.
        (false, false) => Some(iso_seconds(started)),
        (true, false) => match (&since, newest) {
            (Some(since), Some(newest)) => Some(iso_seconds(newest.max(parse_time(since).unwrap_or(newest)))),
            (since, None) => since.clone(),
            (None, Some(newest)) => Some(iso_seconds(newest)),
        },
    };
    let mut done = json!({"phase": "incremental"});
    if let Some(since) = &next_since {
        done["since"] = Value::String(since.clone());
    }
    // The reply's ETag answers this very request (a first page with this
    // `since`) from now on: the next poll sends it.
    let first_page = cursor.get("next").is_none();
    if incremental && first_page && next_since == since {
        if let Some(etag) = response.header("etag") {
            done["etag"] = Value::String(etag.to_string());
        }
    }
    Ok(SyncPage { records, cursor: done, phase: Phase::Incremental, more: !incremental })
}

/// One issue, comment or label by its own URL (`raw`: as last synced, for
/// the number or name that addresses it).
pub(super) fn fetch_request(spec: &CollectionSpec, id: &str, raw: Option<&Value>) -> ApiRequest {
    let repo = repository(spec);
    let key = |name: &str| raw.and_then(|r| r.get(name)).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    match kind(spec) {
        Kind::Issues | Kind::PullRequests => {
            ApiRequest::get(format!("/repos/{repo}/issues/{}", encode_path_segment(&key("number").unwrap_or_default())))
        }
        Kind::Comments => ApiRequest::get(format!("/repos/{repo}/issues/comments/{}", encode_path_segment(id))),
        Kind::Labels => ApiRequest::get(format!("/repos/{repo}/labels/{}", encode_path_segment(&key("name").unwrap_or_default()))),
    }
}

/// A fetched record; an issue that now lives in another repository
/// (transferred, when the redirect was followed elsewhere) is gone from this
/// one.
pub(super) fn fetch_response(spec: &CollectionSpec, id: &str, response: &ApiResponse, now_us: i64) -> Result<Record, ApiError> {
    let item = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let record = record_from_item(spec, &item, now_us).ok_or_else(|| unparseable(response, "an item without id"))?;
    if record.id != id {
        return Err(unparseable(response, "reply is for another record"));
    }
    Ok(record)
}
