//! Stripe REST v1: form-encoded writes, newest-first lists paged with
//! `starting_after`, and `/v1/events` as the change feed.
//!
//! Sync cursor (stored as JSON on the collection):
//! * `{}` → first ask for the newest event, the anchor that incremental sync
//!   will continue from, so no change made during the backfill is missed;
//! * `{"phase":"backfill","anchor":…,"since":…,"starting_after":…}` → list pages;
//! * `{"phase":"incremental","after":"evt_…"}` → events newer than `after`,
//!   walked forward in time with `ending_before`;
//! * `{"phase":"incremental","after":null,"since":ts,"scan":…}` → no anchor
//!   event yet: find the oldest event since `since` by paging backwards.

use super::*;
use crate::time::iso8601_from_us;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Stripe;

const PAGE_SIZE: u32 = 100;
/// Stripe has no batch endpoint: a statement's rows go one request each,
/// at most this many (DESIGN §5).
const STATEMENT_LIMIT: usize = 100;

const fn col(name: &'static str, sql_type: &'static str, writable: bool) -> ColumnSpec {
    ColumnSpec { name, sql_type, writable }
}

/// A Stripe collection: where it lives and which events describe it.
struct StripeCollection {
    spec: CollectionSpec,
    path: &'static str,
    event_prefix: &'static str,
}

const COLLECTIONS: &[StripeCollection] = &[StripeCollection {
    spec: CollectionSpec {
        name: "customers",
        columns: &[
            col("id", "text", false),
            col("email", "text", true),
            col("name", "text", true),
            col("description", "text", true),
            col("phone", "text", true),
            col("balance", "bigint", true),
            col("currency", "text", false),
            col("delinquent", "boolean", false),
            col("metadata", "jsonb", true),
            col("address", "jsonb", true),
            col("created", "timestamptz", false),
        ],
    },
    path: "/v1/customers",
    event_prefix: "customer",
}];

static SPECS: once_cell::sync::Lazy<Vec<CollectionSpec>> =
    once_cell::sync::Lazy::new(|| COLLECTIONS.iter().map(|c| c.spec).collect());

fn stripe_collection(spec: &CollectionSpec) -> &'static StripeCollection {
    COLLECTIONS.iter().find(|c| c.spec.name == spec.name).expect("collection spec comes from COLLECTIONS")
}

fn event_types(collection: &StripeCollection) -> String {
    ["created", "updated", "deleted"]
        .iter()
        .map(|t| format!("types[]={}.{t}", collection.event_prefix))
        .collect::<Vec<_>>()
        .join("&")
}

/// Stripe has no version stamp: an object's version is the second it was
/// observed, so that a later event of the same second may still replace it.
fn second_of(us: i64) -> i64 {
    us - us.rem_euclid(1_000_000)
}

fn record_from_object(object: &Value, version_us: i64, deleted: bool) -> Option<Record> {
    let id = object.get("id")?.as_str()?.to_string();
    let mut columns = object.as_object()?.clone();
    // Standard fields of the shadow table win over API fields of the same name.
    columns.remove("deleted");
    if let Some(created) = object.get("created").and_then(Value::as_i64) {
        columns.insert("created".into(), Value::String(iso8601_from_us(created * 1_000_000)));
    }
    Some(Record { id, version_us, deleted, columns, raw: object.clone() })
}

fn record_from_event(collection: &StripeCollection, event: &Value) -> Option<Record> {
    let kind = event.get("type")?.as_str()?;
    let action = kind.strip_prefix(collection.event_prefix)?.strip_prefix('.')?;
    let created = event.get("created")?.as_i64()?;
    let object = event.get("data")?.get("object")?;
    record_from_object(object, created * 1_000_000, action == "deleted")
}

fn list_data(response: &ApiResponse) -> Result<(Vec<Value>, bool), ApiError> {
    let body = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let data = body.get("data").and_then(Value::as_array).ok_or_else(|| unparseable(response, "no data array"))?;
    let has_more = body.get("has_more").and_then(Value::as_bool).unwrap_or(false);
    Ok((data.clone(), has_more))
}

fn cursor_str<'a>(cursor: &'a Value, key: &str) -> Option<&'a str> {
    cursor.get(key).and_then(Value::as_str)
}

/// A key unique to this request, so a retried POST never applies twice.
fn idempotency_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("sequin-{}-{}-{n}", std::process::id(), crate::time::now_us())
}

/// Appends `value` under `key` in Stripe's bracket-nested form encoding.
fn encode_form(key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => out.push((key.to_string(), String::new())),
        Value::Bool(b) => out.push((key.to_string(), b.to_string())),
        Value::Number(n) => out.push((key.to_string(), n.to_string())),
        Value::String(s) => out.push((key.to_string(), s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                encode_form(&format!("{key}[{i}]"), item, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                encode_form(&format!("{key}[{k}]"), v, out);
            }
        }
    }
}

fn form_body(
    collection: &CollectionSpec,
    row: &WriteRow,
    old: Option<&Value>,
) -> Result<Vec<(String, String)>, SequinError> {
    let mut form = Vec::new();
    for (name, value) in row {
        if collection.column(name).map(|c| c.writable) != Some(true) {
            return Err(SequinError::new(
                ErrorKind::ReadOnlyColumn,
                format!("column \"{name}\" of Stripe {} cannot be written", collection.name),
            )
            .with_hint(format!(
                "Writable columns: {}.",
                collection.columns.iter().filter(|c| c.writable).map(|c| c.name).collect::<Vec<_>>().join(", ")
            )));
        }
        match value {
            WriteValue::Null => form.push((name.clone(), String::new())),
            WriteValue::Text(text) => form.push((name.clone(), text.clone())),
            WriteValue::Json(json) => {
                // Stripe merges hashes on update: unset the keys the new value drops.
                if let (Some(Value::Object(old_map)), Value::Object(new_map)) =
                    (old.and_then(|o| o.get(name.as_str())), json)
                {
                    for key in old_map.keys().filter(|k| !new_map.contains_key(*k)) {
                        form.push((format!("{name}[{key}]"), String::new()));
                    }
                }
                if json.as_object().is_some_and(|m| m.is_empty()) {
                    if old.is_some() {
                        form.push((name.clone(), String::new()));
                    }
                } else {
                    encode_form(name, json, &mut form);
                }
            }
        }
    }
    Ok(form)
}

impl Provider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn label(&self) -> &'static str {
        "Stripe"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.stripe.com"
    }

    fn collections(&self) -> &'static [CollectionSpec] {
        &SPECS
    }

    fn auth_headers(&self, api_key: &str) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Bearer {api_key}"))]
    }

    fn sync_request(&self, spec: &CollectionSpec, cursor: &Value) -> ApiRequest {
        let collection = stripe_collection(spec);
        let types = event_types(collection);
        match cursor_str(cursor, "phase") {
            None => ApiRequest::get(format!("/v1/events?limit=1&{types}")),
            Some("backfill") => match cursor_str(cursor, "starting_after") {
                Some(after) => ApiRequest::get(format!("{}?limit={PAGE_SIZE}&starting_after={after}", collection.path)),
                None => ApiRequest::get(format!("{}?limit={PAGE_SIZE}", collection.path)),
            },
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

    fn sync_response(
        &self,
        spec: &CollectionSpec,
        cursor: &Value,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<SyncPage, ApiError> {
        let collection = stripe_collection(spec);
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
                    data.iter().map(|o| record_from_object(o, version, false)).collect::<Option<Vec<_>>>();
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
                    newest_first.iter().rev().filter_map(|e| record_from_event(collection, e)).collect()
                } else if has_more {
                    // Still looking for the oldest event since `since`.
                    next["scan"] = newest_first.last().and_then(|e| e.get("id")).cloned().ok_or_else(malformed)?;
                    vec![]
                } else if let Some(oldest) = newest_first.last() {
                    // The oldest event is applied alone; the rest follow it
                    // forward in time from the next request on.
                    next["after"] = oldest.get("id").cloned().ok_or_else(malformed)?;
                    next.as_object_mut().map(|m| m.remove("scan"));
                    record_from_event(collection, oldest).into_iter().collect()
                } else {
                    vec![]
                };
                let more = has_more || (cursor_str(cursor, "after").is_none() && next["after"].is_string());
                Ok(SyncPage { records, cursor: next, phase: Phase::Incremental, more })
            }
        }
    }

    fn create_request(&self, spec: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError> {
        let collection = stripe_collection(spec);
        let row: WriteRow = row.iter().filter(|(_, v)| *v != WriteValue::Null).cloned().collect();
        Ok(ApiRequest {
            method: Method::Post,
            path: collection.path.to_string(),
            body: Some(Body::Form(form_body(spec, &row, None)?)),
            idempotency_key: Some(idempotency_key()),
        })
    }

    fn update_request(
        &self,
        spec: &CollectionSpec,
        id: &str,
        row: &WriteRow,
        old_raw: Option<&Value>,
    ) -> Result<ApiRequest, SequinError> {
        let collection = stripe_collection(spec);
        Ok(ApiRequest {
            method: Method::Post,
            path: format!("{}/{}", collection.path, encode_path_segment(id)),
            body: Some(Body::Form(form_body(spec, row, Some(old_raw.unwrap_or(&Value::Null)))?)),
            idempotency_key: Some(idempotency_key()),
        })
    }

    fn delete_request(&self, spec: &CollectionSpec, id: &str) -> ApiRequest {
        let collection = stripe_collection(spec);
        ApiRequest {
            method: Method::Delete,
            path: format!("{}/{}", collection.path, encode_path_segment(id)),
            body: None,
            idempotency_key: None,
        }
    }

    fn write_response(
        &self,
        _spec: &CollectionSpec,
        id: Option<&str>,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError> {
        let object = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
        let deleted = object.get("deleted").and_then(Value::as_bool).unwrap_or(false);
        let record = record_from_object(&object, second_of(now_us), deleted)
            .ok_or_else(|| unparseable(response, "object without id"))?;
        match id {
            Some(expected) if expected != record.id => Err(unparseable(response, "reply is for another object")),
            _ => Ok(record),
        }
    }

    fn statement_limit(&self, _op: WriteOp) -> usize {
        STATEMENT_LIMIT
    }

    fn fetch_request(&self, spec: &CollectionSpec, id: &str) -> ApiRequest {
        let collection = stripe_collection(spec);
        ApiRequest::get(format!("{}/{}", collection.path, encode_path_segment(id)))
    }

    fn fetch_response(
        &self,
        spec: &CollectionSpec,
        id: &str,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError> {
        // A deleted customer is still retrievable, as {"id", "deleted": true}.
        self.write_response(spec, Some(id), response, now_us)
    }

    fn error(&self, response: &ApiResponse) -> ApiError {
        let body = response.json();
        let error = body.as_ref().and_then(|b| b.get("error"));
        let text = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str).map(str::to_string);
        let kind = match text("type").as_deref() {
            Some("idempotency_error") => ErrorKind::Conflict,
            _ => kind_for_status(response.status),
        };
        let message = text("message").unwrap_or_else(|| match body {
            Some(_) => format!("HTTP {} without an error message", response.status),
            None => format!("HTTP {} with a reply that is not JSON", response.status),
        });
        ApiError {
            kind,
            status: response.status,
            message,
            code: text("code"),
            field: text("param"),
            request_id: response.header("request-id").map(str::to_string),
            retry_after: retry_after(response),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn customers() -> &'static CollectionSpec {
        Stripe.collection("customers").unwrap()
    }

    fn reply(status: u16, body: Value) -> ApiResponse {
        ApiResponse {
            status,
            headers: vec![("request-id".into(), "req_123".into())],
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    fn customer(id: &str) -> Value {
        json!({"id": id, "object": "customer", "email": "a@b.co", "created": 1_700_000_000, "metadata": {"k": "v"}})
    }

    #[test]
    fn first_request_anchors_on_the_newest_event() {
        let request = Stripe.sync_request(customers(), &json!({}));
        assert_eq!(
            request.path,
            "/v1/events?limit=1&types[]=customer.created&types[]=customer.updated&types[]=customer.deleted"
        );
        let page = Stripe
            .sync_response(customers(), &json!({}), &reply(200, json!({"data": [{"id": "evt_9"}], "has_more": true})), 5_000_000)
            .unwrap();
        assert_eq!(page.cursor, json!({"phase": "backfill", "anchor": "evt_9", "since": 5}));
        assert_eq!(page.phase, Phase::Backfill);
        assert!(page.records.is_empty() && page.more);
    }

    #[test]
    fn backfill_pages_then_switches_to_events_after_the_anchor() {
        let cursor = json!({"phase": "backfill", "anchor": "evt_9", "since": 5});
        assert_eq!(Stripe.sync_request(customers(), &cursor).path, "/v1/customers?limit=100");
        let body = json!({"data": [customer("cus_2"), customer("cus_1")], "has_more": true});
        let page = Stripe.sync_response(customers(), &cursor, &reply(200, body), 7_500_000).unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].version_us, 7_000_000);
        assert_eq!(page.records[0].columns["created"], json!("2023-11-14T22:13:20.000000Z"));
        assert_eq!(page.cursor["starting_after"], json!("cus_1"));
        assert_eq!(Stripe.sync_request(customers(), &page.cursor).path, "/v1/customers?limit=100&starting_after=cus_1");

        let last = json!({"data": [customer("cus_0")], "has_more": false});
        let page = Stripe.sync_response(customers(), &page.cursor, &reply(200, last), 8_000_000).unwrap();
        assert_eq!(page.phase, Phase::Incremental);
        assert_eq!(page.cursor, json!({"phase": "incremental", "after": "evt_9", "since": 5}));
        assert!(Stripe.sync_request(customers(), &page.cursor).path.starts_with("/v1/events?limit=100&ending_before=evt_9&"));
    }

    #[test]
    fn events_apply_oldest_first_and_move_the_cursor_to_the_newest() {
        let cursor = json!({"phase": "incremental", "after": "evt_1"});
        let mut deleted = customer("cus_1");
        deleted["deleted"] = json!(true);
        let body = json!({"has_more": false, "data": [
            {"id": "evt_3", "type": "customer.deleted", "created": 12, "data": {"object": deleted}},
            {"id": "evt_2", "type": "customer.updated", "created": 11, "data": {"object": customer("cus_1")}},
        ]});
        let page = Stripe.sync_response(customers(), &cursor, &reply(200, body), 0).unwrap();
        assert_eq!(page.records.len(), 2);
        assert!(!page.records[0].deleted && page.records[1].deleted);
        assert_eq!(page.records[1].version_us, 12_000_000);
        assert!(!page.records[1].columns.contains_key("deleted"));
        assert_eq!(page.cursor["after"], json!("evt_3"));
        assert!(!page.more);
    }

    #[test]
    fn without_an_anchor_the_oldest_event_is_found_first() {
        let cursor = json!({"phase": "incremental", "after": null, "since": 5});
        assert!(Stripe.sync_request(customers(), &cursor).path.contains("created[gte]=5"));
        let event = |id: &str| json!({"id": id, "type": "customer.created", "created": 6, "data": {"object": customer("cus_1")}});
        let page = Stripe
            .sync_response(customers(), &cursor, &reply(200, json!({"has_more": true, "data": [event("evt_9"), event("evt_8")]})), 0)
            .unwrap();
        assert!(page.records.is_empty());
        assert_eq!(page.cursor["scan"], json!("evt_8"));
        assert!(Stripe.sync_request(customers(), &page.cursor).path.ends_with("&starting_after=evt_8"));
        let page = Stripe
            .sync_response(customers(), &page.cursor, &reply(200, json!({"has_more": false, "data": [event("evt_7")]})), 0)
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.cursor["after"], json!("evt_7"));
        assert!(page.more);
    }

    #[test]
    fn create_is_form_encoded_with_nested_metadata_and_an_idempotency_key() {
        let row = vec![
            ("email".to_string(), WriteValue::Text("ada@example.com".into())),
            ("name".to_string(), WriteValue::Null),
            ("metadata".to_string(), WriteValue::Json(json!({"order": "42", "tier": {"a": 1}}))),
        ];
        let request = Stripe.create_request(customers(), &row).unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.path, "/v1/customers");
        assert!(request.idempotency_key.is_some());
        assert_eq!(
            request.body,
            Some(Body::Form(vec![
                ("email".into(), "ada@example.com".into()),
                ("metadata[order]".into(), "42".into()),
                ("metadata[tier][a]".into(), "1".into()),
            ]))
        );
    }

    #[test]
    fn update_unsets_nulls_and_dropped_metadata_keys() {
        let row = vec![
            ("email".to_string(), WriteValue::Null),
            ("metadata".to_string(), WriteValue::Json(json!({"b": "2"}))),
        ];
        let old = json!({"metadata": {"a": "1", "b": "1"}});
        let request = Stripe.update_request(customers(), "cus_1", &row, Some(&old)).unwrap();
        assert_eq!(request.path, "/v1/customers/cus_1");
        assert_eq!(
            request.body,
            Some(Body::Form(vec![
                ("email".into(), "".into()),
                ("metadata[a]".into(), "".into()),
                ("metadata[b]".into(), "2".into()),
            ]))
        );
    }

    #[test]
    fn read_only_columns_are_refused_before_any_request() {
        let row = vec![("created".to_string(), WriteValue::Text("2020-01-01".into()))];
        let error = Stripe.create_request(customers(), &row).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
        assert!(error.hint.unwrap().contains("email"));
    }

    #[test]
    fn errors_carry_message_field_and_request_id() {
        let body = json!({"error": {"type": "invalid_request_error", "code": "email_invalid", "message": "Invalid email address: x", "param": "email"}});
        let error = Stripe.error(&reply(400, body));
        assert_eq!(error.kind, ErrorKind::Validation);
        assert_eq!(error.message, "Invalid email address: x");
        assert_eq!(error.field.as_deref(), Some("email"));
        assert_eq!(error.request_id.as_deref(), Some("req_123"));
        let request = Stripe.create_request(customers(), &vec![]).unwrap();
        let user_error = error.into_error("Stripe", &request);
        assert_eq!(user_error.message, "[Stripe]: Invalid email address: x");
        assert_eq!(
            user_error.detail.unwrap(),
            "HTTP 400 on POST /v1/customers, code email_invalid, field \"email\", request id req_123"
        );

        let unparseable = Stripe.error(&ApiResponse { status: 502, headers: vec![], body: b"<html>".to_vec() });
        assert_eq!(unparseable.kind, ErrorKind::Upstream);
        let limited = Stripe.error(&ApiResponse {
            status: 429,
            headers: vec![("retry-after".into(), "2".into())],
            body: b"{}".to_vec(),
        });
        assert_eq!(limited.kind, ErrorKind::RateLimited);
        assert_eq!(limited.retry_after, Some(Duration::from_secs(2)));
    }

    #[test]
    fn delete_reply_marks_the_record_deleted() {
        let body = json!({"id": "cus_1", "object": "customer", "deleted": true});
        let record = Stripe.write_response(customers(), Some("cus_1"), &reply(200, body), 3_200_000).unwrap();
        assert!(record.deleted);
        assert_eq!(record.version_us, 3_000_000);
        assert!(Stripe.write_response(customers(), Some("cus_2"), &reply(200, customer("cus_1")), 0).is_err());
    }

    #[test]
    fn a_429_with_retry_after_pauses_the_server() {
        let mut limited = reply(429, json!({"error": {"message": "Too many requests"}}));
        limited.headers.push(("retry-after".into(), "2".into()));
        assert_eq!(Stripe.rate_limit_pause(&limited), Some(Duration::from_secs(2)));
        let mut failed = reply(500, json!({}));
        failed.headers.push(("retry-after".into(), "2".into()));
        assert_eq!(Stripe.rate_limit_pause(&failed), None);
    }
}
