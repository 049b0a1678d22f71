//! Stripe's sync: newest-first list pages with `starting_after`, then
//! `/v1/events` (see the cursor in `mod.rs`), and the records the objects
//! and events carry.

use super::schema::{imported, stripe_collection, Effect, StripeCollection, COLLECTIONS};
use crate::providers::*;
use crate::time::iso8601_from_us;
use serde_json::{json, Map, Value};

const PAGE_SIZE: u32 = 100;

fn event_types(collection: &StripeCollection) -> String {
    collection
        .events
        .iter()
        .map(|(action, _)| format!("types[]={}.{action}", collection.event_prefix))
        .collect::<Vec<_>>()
        .join("&")
}

/// Stripe has no version stamp: an object's version is the second it was
/// observed, so that a later event of the same second may still replace it.
pub(super) fn second_of(us: i64) -> i64 {
    us - us.rem_euclid(1_000_000)
}

/// The object with its expanded references back to their ids
/// (`"customer": {"id": "cus_1", …}` → `"customer": "cus_1"`), as the sync
/// sees it. (An expansion deeper inside, `items.data.price.product`, stays.)
/// Borrowed as it is when nothing is expanded (every sync reply).
fn with_references_collapsed<'a>(spec: &CollectionSpec, object: &'a Value) -> std::borrow::Cow<'a, Value> {
    let references = stripe_collection(spec).references;
    let expanded = |field: &&str| object.get(*field).is_some_and(Value::is_object);
    if !references.iter().any(expanded) {
        return std::borrow::Cow::Borrowed(object);
    }
    let mut object = object.clone();
    for field in references {
        if let Some(value) = object.get_mut(*field) {
            if let Some(id) = value.get("id").and_then(Value::as_str) {
                *value = Value::String(id.to_string());
            }
        }
    }
    std::borrow::Cow::Owned(object)
}

pub(super) fn record_from_object(spec: &CollectionSpec, object: &Value, version_us: i64, deleted: bool) -> Option<Record> {
    let object = with_references_collapsed(spec, object).into_owned();
    owned_record(spec, object, version_us, deleted)
}

/// A listed object as the record of version `version_us`.
pub(super) fn owned_record_at(spec: &CollectionSpec, object: Value, version_us: i64) -> Option<Record> {
    owned_record(spec, object, version_us, false)
}

/// `record_from_object` for an object the caller gives up (a list page's):
/// it becomes the record's `raw` without a copy.
fn owned_record(spec: &CollectionSpec, object: Value, version_us: i64, deleted: bool) -> Option<Record> {
    let object = match with_references_collapsed(spec, &object) {
        std::borrow::Cow::Borrowed(_) => object,
        std::borrow::Cow::Owned(collapsed) => collapsed,
    };
    let id = object.get("id")?.as_str()?.to_string();
    let fields = object.as_object()?;
    let mut columns = Map::new();
    for column in &spec.columns {
        let Some(value) = fields.get(&column.field) else { continue };
        // Stripe's times are unix seconds (a field it lists as a timestamp,
        // or one a timestamp column names). Saturating: the API's number,
        // however large, never panics.
        let is_time = column.api_type == "timestamp" || column.sql_type.starts_with("timestamp");
        let value = match (is_time, value.as_i64()) {
            (true, Some(seconds)) => Value::String(iso8601_from_us(seconds.saturating_mul(1_000_000))),
            _ => value.clone(),
        };
        columns.insert(column.name.clone(), value);
    }
    Some(Record { id, version_us, deleted, columns, raw: object })
}

/// The record an event describes, for the exact event types the collection
/// follows only: `customer.subscription.created` is never a customer's.
fn record_from_event(spec: &CollectionSpec, event: &Value) -> Option<Record> {
    let collection = stripe_collection(spec);
    let kind = event.get("type")?.as_str()?;
    let action = kind.strip_prefix(collection.event_prefix)?.strip_prefix('.')?;
    let (_, effect) = collection.events.iter().find(|(a, _)| *a == action)?;
    let created = event.get("created")?.as_i64()?;
    let object = event.get("data")?.get("object")?;
    record_from_object(spec, object, created.saturating_mul(1_000_000), *effect == Effect::Delete)
}

pub(super) fn list_data(response: &ApiResponse) -> Result<(Vec<Value>, bool), ApiError> {
    let mut body = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let has_more = body.get("has_more").and_then(Value::as_bool).unwrap_or(false);
    match body.get_mut("data").map(Value::take) {
        Some(Value::Array(data)) => Ok((data, has_more)),
        _ => Err(unparseable(response, "no data array")),
    }
}

fn cursor_str<'a>(cursor: &'a Value, key: &str) -> Option<&'a str> {
    cursor.get(key).and_then(Value::as_str)
}

pub(super) fn reply_object(object: &Value, now_us: i64) -> ReplyObject {
    let kind = object.get("object").and_then(Value::as_str);
    if kind == Some("event") {
        return ReplyObject::History;
    }
    let Some(collection) = COLLECTIONS.iter().find(|c| Some(c.object) == kind) else {
        return ReplyObject::Other;
    };
    let deleted = object.get("deleted").and_then(Value::as_bool).unwrap_or(false);
    match record_from_object(imported(collection), object, second_of(now_us), deleted) {
        Some(record) => ReplyObject::Record(collection.spec.name.to_string(), record),
        None => ReplyObject::Other,
    }
}

pub(super) fn sync_request(spec: &CollectionSpec, cursor: &Value) -> ApiRequest {
    let collection = stripe_collection(spec);
    let types = event_types(collection);
    match cursor_str(cursor, "phase") {
        None => ApiRequest::get(format!("/v1/events?limit=1&{types}")),
        Some("backfill") => {
            let list = format!("{}?{}limit={PAGE_SIZE}", collection.path, collection.list_query);
            match cursor_str(cursor, "starting_after") {
                Some(after) => ApiRequest::get(format!("{list}&starting_after={after}")),
                None => ApiRequest::get(list),
            }
        }
        _ => match (cursor_str(cursor, "after"), cursor_str(cursor, "scan")) {
            (Some(after), _) => {
                ApiRequest::get(format!("/v1/events?limit={PAGE_SIZE}&ending_before={after}&{types}"))
            }
            (None, scan) => {
                let since = cursor.get("since").and_then(Value::as_i64).unwrap_or(0);
                let page = scan.map(|s| format!("&starting_after={s}")).unwrap_or_default();
                ApiRequest::get(format!("/v1/events?limit={PAGE_SIZE}&created[gte]={since}&{types}{page}"))
            }
        },
    }
}

pub(super) fn sync_response(
    spec: &CollectionSpec,
    cursor: &Value,
    response: &ApiResponse,
    now_us: i64,
) -> Result<SyncPage, ApiError> {
    let (data, has_more) = list_data(response)?;
    let malformed = || unparseable(response, "object without id");
    match cursor_str(cursor, "phase") {
        None => {
            let anchor = data.first().and_then(|e| e.get("id")).cloned().unwrap_or(Value::Null);
            Ok(SyncPage {
                records: vec![],
                cursor: json!({"phase": "backfill", "anchor": anchor, "since": now_us / 1_000_000}),
                phase: Phase::Backfill,
                more: true,
            })
        }
        Some("backfill") => {
            let version = second_of(now_us);
            let records =
                data.into_iter().map(|o| owned_record(spec, o, version, false)).collect::<Option<Vec<_>>>();
            let records = records.ok_or_else(malformed)?;
            let cursor = match (has_more, records.last()) {
                (true, Some(last)) => {
                    let mut next = cursor.clone();
                    next["starting_after"] = Value::String(last.id.clone());
                    next
                }
                _ => json!({"phase": "incremental", "after": cursor["anchor"], "since": cursor["since"]}),
            };
            let phase = if cursor["phase"] == "backfill" { Phase::Backfill } else { Phase::Incremental };
            Ok(SyncPage { records, cursor, phase, more: true })
        }
        _ => {
            let newest_first: Vec<&Value> = data.iter().collect();
            let mut next = cursor.clone();
            let records = if cursor_str(cursor, "after").is_some() {
                if let Some(newest) = newest_first.first().and_then(|e| e.get("id")) {
                    next["after"] = newest.clone();
                }
                newest_first.iter().rev().filter_map(|e| record_from_event(spec, e)).collect()
            } else if has_more {
                // Still looking for the oldest event since `since`.
                next["scan"] = newest_first.last().and_then(|e| e.get("id")).cloned().ok_or_else(malformed)?;
                vec![]
            } else if let Some(oldest) = newest_first.last() {
                // The oldest event is applied alone; the rest follow it
                // forward in time from the next request on.
                next["after"] = oldest.get("id").cloned().ok_or_else(malformed)?;
                next.as_object_mut().map(|m| m.remove("scan"));
                record_from_event(spec, oldest).into_iter().collect()
            } else {
                vec![]
            };
            let more = has_more || (cursor_str(cursor, "after").is_none() && next["after"].is_string());
            Ok(SyncPage { records, cursor: next, phase: Phase::Incremental, more })
        }
    }
}

pub(super) fn fetch_request(spec: &CollectionSpec, id: &str) -> ApiRequest {
    let collection = stripe_collection(spec);
    ApiRequest::get(format!("{}/{}", collection.path, encode_path_segment(id)))
}

pub(super) fn feed_refused(cursor: &Value, error: &SequinError) -> Option<Value> {
    let phase = cursor_str(cursor, "phase");
    if phase.is_some_and(|p| p != "incremental")
        || !matches!(error.http_status, Some(400 | 403 | 404))
        || error.api_code.as_deref() == Some("resource_missing")
    {
        return None;
    }
    match phase {
        None => Some(json!({"phase": "backfill", "anchor": null, "since": crate::time::now_us() / 1_000_000})),
        Some(_) => Some(cursor.clone()),
    }
}

pub(super) fn cursor_expired(cursor: &Value, error: &SequinError) -> Option<String> {
    if cursor_str(cursor, "phase") != Some("incremental") || error.api_code.as_deref() != Some("resource_missing") {
        return None;
    }
    // The id came from the API: quoted like its messages.
    let event = cut_api_text(cursor_str(cursor, "after").or_else(|| cursor_str(cursor, "scan"))?);
    Some(format!(
        "Stripe keeps events for 30 days and the sync cursor's event {event} is gone; starting a new backfill"
    ))
}
