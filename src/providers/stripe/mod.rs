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
//!
//! Stripe keeps events 30 days: an incremental cursor whose event is gone
//! can never be continued (`cursor_expired`), and the collection is
//! backfilled again.

use super::Writable::{Always, Never, OnInsert};
use super::*;
use crate::time::iso8601_from_us;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Stripe;

const PAGE_SIZE: u32 = 100;
/// Stripe has no batch endpoint: a statement's rows go one request each,
/// at most this many (DESIGN §5).
const STATEMENT_LIMIT: usize = 100;

/// Stripe's times are unix seconds, kept as timestamptz.
const fn col(name: &'static str, sql_type: &'static str, writable: Writable) -> CompiledField {
    let api_type = match sql_type.as_bytes() {
        b"timestamptz" => "timestamp",
        _ => sql_type,
    };
    CompiledField { name, api_type, sql_type, writable }
}

/// What an event does to the record its object describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// The object is the record's new state.
    Upsert,
    /// The object was deleted.
    Delete,
}

/// A Stripe collection: where it lives and which events describe it.
struct StripeCollection {
    spec: CompiledCollection,
    /// The `object` field of its objects, e.g. "customer".
    object: &'static str,
    /// Top-level fields holding another object's id, or that object where a
    /// request expands it (`expand[]=customer`): the spec's `anyOf` of a
    /// string and an object. Records keep the id.
    references: &'static [&'static str],
    path: &'static str,
    /// Query params the backfill's list adds, ending in `&`.
    list_query: &'static str,
    /// Event types are `<event_prefix>.<action>`.
    event_prefix: &'static str,
    /// The actions sync follows (Stripe takes at most 20 types) and what
    /// each one does; an event of any other type is never applied.
    events: &'static [(&'static str, Effect)],
}

const CREATED_UPDATED_DELETED: &[(&str, Effect)] =
    &[("created", Effect::Upsert), ("updated", Effect::Upsert), ("deleted", Effect::Delete)];

const COLLECTIONS: &[StripeCollection] = &[
    StripeCollection {
        spec: CompiledCollection {
            name: "customers",
            fields: &[
                col("id", "text", Never),
                col("email", "text", Always),
                col("name", "text", Always),
                col("description", "text", Always),
                col("phone", "text", Always),
                col("balance", "bigint", Always),
                col("currency", "text", Never),
                col("delinquent", "boolean", Never),
                col("metadata", "jsonb", Always),
                col("address", "jsonb", Always),
                col("created", "timestamptz", Never),
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        object: "customer",
        references: &["default_source", "test_clock"],
        path: "/v1/customers",
        list_query: "",
        event_prefix: "customer",
        events: CREATED_UPDATED_DELETED,
    },
    StripeCollection {
        spec: CompiledCollection {
            name: "products",
            fields: &[
                col("id", "text", Never),
                col("name", "text", Always),
                col("description", "text", Always),
                col("active", "boolean", Always),
                col("unit_label", "text", Always),
                col("url", "text", Always),
                col("images", "jsonb", Always),
                col("metadata", "jsonb", Always),
                col("created", "timestamptz", Never),
                col("updated", "timestamptz", Never),
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        object: "product",
        references: &["tax_code"],
        path: "/v1/products",
        list_query: "",
        event_prefix: "product",
        events: CREATED_UPDATED_DELETED,
    },
    StripeCollection {
        spec: CompiledCollection {
            name: "prices",
            fields: &[
                col("id", "text", Never),
                col("product", "text", OnInsert),
                col("active", "boolean", Always),
                col("currency", "text", OnInsert),
                col("unit_amount", "bigint", OnInsert),
                col("nickname", "text", Always),
                col("recurring", "jsonb", OnInsert),
                col("type", "text", Never),
                col("metadata", "jsonb", Always),
                col("created", "timestamptz", Never),
            ],
            // Stripe has no DELETE for prices.
            writes: &[WriteOp::Insert, WriteOp::Update],
            writes_hint: Some("Stripe never deletes a price: archive it with UPDATE … SET active = false."),
        },
        object: "price",
        references: &["product"],
        path: "/v1/prices",
        list_query: "",
        event_prefix: "price",
        // price.deleted exists though the API cannot delete a price (the Dashboard can).
        events: CREATED_UPDATED_DELETED,
    },
    StripeCollection {
        spec: CompiledCollection {
            name: "subscriptions",
            fields: &[
                col("id", "text", Never),
                col("customer", "text", OnInsert),
                col("status", "text", Never),
                // Written as Stripe's create param, `[{"price": "price_…", "quantity": 1}]`;
                // read as Stripe's list object of subscription items.
                col("items", "jsonb", OnInsert),
                col("cancel_at_period_end", "boolean", Always),
                col("current_period_start", "timestamptz", Never),
                col("current_period_end", "timestamptz", Never),
                col("cancel_at", "timestamptz", Never),
                col("canceled_at", "timestamptz", Never),
                col("ended_at", "timestamptz", Never),
                col("latest_invoice", "text", Never),
                col("metadata", "jsonb", Always),
                col("start_date", "timestamptz", Never),
                col("created", "timestamptz", Never),
            ],
            // DELETE cancels the subscription (see `events`).
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        object: "subscription",
        references: &[
            "customer",
            "default_payment_method",
            "default_source",
            "latest_invoice",
            "pending_setup_intent",
            "schedule",
            "test_clock",
        ],
        path: "/v1/subscriptions",
        // Canceled subscriptions stay in Stripe, and so stay rows; the
        // default list leaves them out.
        list_query: "status=all&",
        event_prefix: "customer.subscription",
        // customer.subscription.deleted is a cancellation: its object is the
        // subscription, still retrievable, with status "canceled", the same
        // object a DELETE answers. So it is applied as the record's new
        // state, not as a deletion.
        events: &[
            ("created", Effect::Upsert),
            ("updated", Effect::Upsert),
            ("deleted", Effect::Upsert),
            ("pending_update_applied", Effect::Upsert),
            ("pending_update_expired", Effect::Upsert),
            ("trial_will_end", Effect::Upsert),
        ],
    },
    StripeCollection {
        spec: CompiledCollection {
            name: "invoices",
            fields: &[
                col("id", "text", Never),
                col("customer", "text", Never),
                col("subscription", "text", Never),
                col("status", "text", Never),
                col("number", "text", Never),
                col("currency", "text", Never),
                col("amount_due", "bigint", Never),
                col("amount_paid", "bigint", Never),
                col("amount_remaining", "bigint", Never),
                col("total", "bigint", Never),
                col("paid", "boolean", Never),
                col("billing_reason", "text", Never),
                col("description", "text", Never),
                col("lines", "jsonb", Never),
                col("metadata", "jsonb", Never),
                col("period_start", "timestamptz", Never),
                col("period_end", "timestamptz", Never),
                col("due_date", "timestamptz", Never),
                col("created", "timestamptz", Never),
            ],
            writes: &[],
            writes_hint: Some(
                "Stripe makes invoices as subscriptions bill; the table follows them within one poll interval.",
            ),
        },
        object: "invoice",
        references: &[
            "charge",
            "customer",
            "default_payment_method",
            "default_source",
            "on_behalf_of",
            "payment_intent",
            "quote",
            "subscription",
            "test_clock",
        ],
        path: "/v1/invoices",
        list_query: "",
        event_prefix: "invoice",
        // An invoice moves on through events of its own (finalized, paid, …)
        // that may come without an invoice.updated: each carries its new state.
        events: &[
            ("created", Effect::Upsert),
            ("updated", Effect::Upsert),
            ("finalized", Effect::Upsert),
            ("sent", Effect::Upsert),
            ("paid", Effect::Upsert),
            ("payment_succeeded", Effect::Upsert),
            ("payment_failed", Effect::Upsert),
            ("payment_action_required", Effect::Upsert),
            ("marked_uncollectible", Effect::Upsert),
            ("voided", Effect::Upsert),
            ("deleted", Effect::Delete),
        ],
    },
];

/// Each collection's spec as IMPORT creates its table: what a reply's
/// records are read with before a table's own spec fills their columns.
static IMPORTED: once_cell::sync::Lazy<Vec<CollectionSpec>> =
    once_cell::sync::Lazy::new(|| COLLECTIONS.iter().map(|c| crate::schema::imported_spec(&c.spec.schema())).collect());

fn stripe_collection(spec: &CollectionSpec) -> &'static StripeCollection {
    COLLECTIONS.iter().find(|c| c.spec.name == spec.name).expect("a Stripe spec is bound to a compiled collection")
}

fn imported(collection: &StripeCollection) -> &'static CollectionSpec {
    IMPORTED.iter().find(|s| s.name == collection.spec.name).expect("every compiled collection is imported")
}

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
fn second_of(us: i64) -> i64 {
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

fn record_from_object(spec: &CollectionSpec, object: &Value, version_us: i64, deleted: bool) -> Option<Record> {
    let object = &*with_references_collapsed(spec, object);
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
    Some(Record { id, version_us, deleted, columns, raw: object.clone() })
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

/// Refuses, before any request, a column this statement may not set.
fn check_writable(collection: &CollectionSpec, op: WriteOp, name: &str) -> Result<(), SequinError> {
    let column = collection.column(name);
    if column.is_some_and(|c| c.writable_by(op)) {
        return Ok(());
    }
    let writable = collection.columns.iter().filter(|c| c.writable_by(op)).map(|c| c.name.as_str()).collect::<Vec<_>>();
    let error = match column.map(|c| c.writable) {
        Some(OnInsert) => SequinError::new(
            ErrorKind::ReadOnlyColumn,
            format!("column \"{name}\" of Stripe {} can only be set by INSERT", collection.name),
        )
        .with_detail("Stripe fixes it when the record is created."),
        _ => SequinError::new(
            ErrorKind::ReadOnlyColumn,
            format!("column \"{name}\" of Stripe {} cannot be written", collection.name),
        ),
    };
    Err(error.with_hint(format!("Columns an {} may set: {}.", op.as_sql(), writable.join(", "))))
}

/// A create has nothing to unset: nulls inside a JSON value are left out
/// (a `recurring` copied from another price carries `"aggregate_usage": null`).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The form of a create (`old` None) or an update (`old` the record's
/// current API object, or null).
fn form_body(
    collection: &CollectionSpec,
    row: &WriteRow,
    old: Option<&Value>,
) -> Result<Vec<(String, String)>, SequinError> {
    let op = if old.is_some() { WriteOp::Update } else { WriteOp::Insert };
    let mut form = Vec::new();
    for (column, value) in row {
        check_writable(collection, op, column)?;
        let name = &collection.column(column).expect("check_writable found it").field;
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
                let empty = match json {
                    Value::Object(map) => map.is_empty(),
                    Value::Array(items) => items.is_empty(),
                    _ => false,
                };
                match (empty, op) {
                    // An empty hash or list encodes as nothing: unset it instead.
                    (true, WriteOp::Update) => form.push((name.clone(), String::new())),
                    (true, _) => {}
                    (false, WriteOp::Update) => encode_form(name, json, &mut form),
                    (false, _) => encode_form(name, &without_nulls(json), &mut form),
                }
            }
        }
    }
    Ok(form)
}

impl Provider for Stripe {
    fn columns_from_raw(&self, collection: &CollectionSpec, raw: &Value) -> Map<String, Value> {
        record_from_object(collection, raw, 0, false).map(|r| r.columns).unwrap_or_default()
    }

    /// Stripe names each object's type in `object`; a deleted one is
    /// `{"id", "object", "deleted": true}`. An event's payload is the state
    /// of its time, not now's.
    fn reply_object(&self, object: &Value, now_us: i64) -> ReplyObject {
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

    /// Stripe takes form-encoded parameters, nested in brackets:
    /// `{"metadata": {"k": "v"}, "items": [{"price": "p"}]}` is
    /// `metadata[k]=v&items[0][price]=p`; null is an empty value (which
    /// unsets).
    fn request_body(&self, body: &Value) -> Result<Body, SequinError> {
        let Value::Object(params) = body else {
            return Err(SequinError::new(ErrorKind::InvalidArgument, "a Stripe request body must be a JSON object of parameters")
                .with_hint("For example '{\"email\": \"ada@example.com\", \"metadata\": {\"plan\": \"pro\"}}'."));
        };
        let mut form = Vec::new();
        for (name, value) in params {
            encode_form(name, value, &mut form);
        }
        Ok(Body::Form(form))
    }

    /// Stripe de-duplicates POSTs by their `Idempotency-Key` (GET and DELETE
    /// are idempotent already).
    fn idempotency_key(&self, method: Method) -> Option<String> {
        (method == Method::Post).then(idempotency_key)
    }

    fn name(&self) -> &'static str {
        "stripe"
    }

    fn label(&self) -> &'static str {
        "Stripe"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.stripe.com"
    }

    fn compiled_collections(&self) -> Vec<CollectionSchema> {
        COLLECTIONS.iter().map(|c| c.spec.schema()).collect()
    }

    fn auth_headers(&self, api_key: &str) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Bearer {api_key}"))]
    }

    fn sync_request(&self, spec: &CollectionSpec, cursor: &Value) -> ApiRequest {
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

    fn sync_response(
        &self,
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
                    data.iter().map(|o| record_from_object(spec, o, version, false)).collect::<Option<Vec<_>>>();
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

    fn create_request(&self, spec: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError> {
        let collection = stripe_collection(spec);
        let row: WriteRow = row.iter().filter(|(_, v)| *v != WriteValue::Null).cloned().collect();
        Ok(ApiRequest {
            method: Method::Post,
            path: collection.path.to_string(),
            body: Some(Body::Form(form_body(spec, &row, None)?)),
            idempotency_key: Some(idempotency_key()),
            headers: Vec::new(),
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
            headers: Vec::new(),
        })
    }

    fn delete_request(&self, spec: &CollectionSpec, id: &str) -> ApiRequest {
        let collection = stripe_collection(spec);
        ApiRequest {
            method: Method::Delete,
            path: format!("{}/{}", collection.path, encode_path_segment(id)),
            body: None,
            idempotency_key: None,
            headers: Vec::new(),
        }
    }

    /// A delete's reply is `{"id", "deleted": true}`, except a subscription's:
    /// canceling answers the canceled subscription, which is not deleted.
    fn write_response(
        &self,
        spec: &CollectionSpec,
        id: Option<&str>,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError> {
        let object = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
        let deleted = object.get("deleted").and_then(Value::as_bool).unwrap_or(false);
        let record = record_from_object(spec, &object, second_of(now_us), deleted)
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

    fn listing_cursor(&self, _spec: &CollectionSpec) -> Value {
        json!({"phase": "backfill"})
    }

    /// `/v1/events` refused: a restricted key without the Events permission
    /// (403), an imitation of Stripe without events (404) or without the
    /// `types[]` filter (400). A cursor event that is gone (`resource_missing`)
    /// is an expired cursor instead. The backfill then lists without an
    /// anchor in the feed.
    fn feed_refused(&self, _spec: &CollectionSpec, cursor: &Value, error: &SequinError) -> Option<Value> {
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

    /// An incremental cursor names an event (`after`, or `scan` while looking
    /// for the oldest one); when Stripe no longer has it, the events request
    /// fails with `resource_missing` (Stripe keeps events 30 days) and the
    /// cursor can never be continued.
    fn cursor_expired(&self, _spec: &CollectionSpec, cursor: &Value, error: &SequinError) -> Option<String> {
        if cursor_str(cursor, "phase") != Some("incremental") || error.api_code.as_deref() != Some("resource_missing") {
            return None;
        }
        // The id came from the API: quoted like its messages.
        let event = super::cut_api_text(cursor_str(cursor, "after").or_else(|| cursor_str(cursor, "scan"))?);
        Some(format!(
            "Stripe keeps events for 30 days and the sync cursor's event {event} is gone; starting a new backfill"
        ))
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

    /// The account of the key, or of the account an OAuth token stands for.
    fn account_request(&self) -> Option<ApiRequest> {
        Some(ApiRequest::get("/v1/account"))
    }

    /// `{"id":"acct_…","object":"account",…}`.
    fn parse_account(&self, response: &ApiResponse) -> Result<String, ApiError> {
        let body = response.json().ok_or_else(|| unparseable(response, "account reply is not JSON"))?;
        if body.get("object").and_then(Value::as_str) != Some("account") {
            return Err(unparseable(response, "not an account object"));
        }
        body.get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| unparseable(response, "account without id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customers() -> &'static CollectionSpec {
        collection("customers")
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
    fn the_account_comes_from_get_v1_account() {
        let request = Stripe.account_request().unwrap();
        assert_eq!((request.method, request.path.as_str()), (Method::Get, "/v1/account"));
        let account = json!({"id": "acct_1Nv0FGQ9RKHgCVdK", "object": "account", "type": "standard", "charges_enabled": true});
        assert_eq!(Stripe.parse_account(&reply(200, account)).unwrap(), "acct_1Nv0FGQ9RKHgCVdK");
        for wrong in [json!({"id": "cus_1", "object": "customer"}), json!({"object": "account"}), json!({"id": "", "object": "account"})] {
            assert_eq!(Stripe.parse_account(&reply(200, wrong)).unwrap_err().kind, ErrorKind::Upstream);
        }
        let not_json = ApiResponse { status: 200, headers: vec![], body: b"<html>".to_vec() };
        assert!(Stripe.parse_account(&not_json).unwrap_err().message.contains("not JSON"));
        // Stripe's OAuth token reply is not where the account is learned.
        assert_eq!(Stripe.account_from_token_reply(&json!({"access_token": "oat_x", "id": "https://x/id/00D/005"})), None);
    }

    #[test]
    fn delete_reply_marks_the_record_deleted() {
        let body = json!({"id": "cus_1", "object": "customer", "deleted": true});
        let record = Stripe.write_response(customers(), Some("cus_1"), &reply(200, body), 3_200_000).unwrap();
        assert!(record.deleted);
        assert_eq!(record.version_us, 3_000_000);
        assert!(Stripe.write_response(customers(), Some("cus_2"), &reply(200, customer("cus_1")), 0).is_err());
    }

    /// The spec of the table IMPORT creates.
    fn collection(name: &str) -> &'static CollectionSpec {
        imported(COLLECTIONS.iter().find(|c| c.spec.name == name).unwrap())
    }

    fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
        json!({"id": id, "type": kind, "created": created, "data": {"object": object}})
    }

    /// The records an incremental page of `events` (newest first) applies.
    fn apply_events(name: &str, events: Vec<Value>) -> Vec<Record> {
        let cursor = json!({"phase": "incremental", "after": "evt_0"});
        let body = json!({"has_more": false, "data": events});
        Stripe.sync_response(collection(name), &cursor, &reply(200, body), 0).unwrap().records
    }

    fn subscription(id: &str, status: &str) -> Value {
        json!({"id": id, "object": "subscription", "customer": "cus_1", "status": status,
               "created": 1_700_000_000, "current_period_start": 1_700_000_000,
               "current_period_end": 1_702_592_000, "canceled_at": null, "metadata": {},
               "items": {"object": "list", "data": [{"id": "si_1", "created": 1_700_000_000,
                         "price": {"id": "price_1", "unit_amount": 1500}, "quantity": 2}]}})
    }

    #[test]
    fn every_collection_has_a_text_id_first_and_at_most_20_event_types() {
        let names: Vec<String> = Stripe.compiled_collections().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["customers", "products", "prices", "subscriptions", "invoices"]);
        for c in COLLECTIONS {
            assert_eq!(c.spec.fields[0], col("id", "text", Never), "{}", c.spec.name);
            assert!(c.events.len() <= 20, "{}", c.spec.name);
            let created = collection(c.spec.name).column("created").unwrap();
            assert_eq!((created.sql_type.as_str(), created.api_type.as_str()), ("timestamptz", "timestamp"));
        }
    }

    #[test]
    fn each_collection_follows_its_own_event_types() {
        let first = |name: &str| Stripe.sync_request(collection(name), &json!({})).path;
        assert_eq!(
            first("products"),
            "/v1/events?limit=1&types[]=product.created&types[]=product.updated&types[]=product.deleted"
        );
        assert_eq!(
            first("subscriptions"),
            "/v1/events?limit=1&types[]=customer.subscription.created&types[]=customer.subscription.updated\
             &types[]=customer.subscription.deleted&types[]=customer.subscription.pending_update_applied\
             &types[]=customer.subscription.pending_update_expired&types[]=customer.subscription.trial_will_end"
        );
        assert!(first("invoices").contains("&types[]=invoice.finalized&types[]=invoice.sent&types[]=invoice.paid&"));
        let after = json!({"phase": "incremental", "after": "evt_5"});
        assert!(Stripe
            .sync_request(collection("prices"), &after)
            .path
            .starts_with("/v1/events?limit=100&ending_before=evt_5&types[]=price.created&"));
    }

    #[test]
    fn backfills_list_each_collection_and_every_subscription_status() {
        let cursor = json!({"phase": "backfill", "anchor": "evt_9", "since": 5});
        let path = |name: &str, cursor: &Value| Stripe.sync_request(collection(name), cursor).path;
        assert_eq!(path("products", &cursor), "/v1/products?limit=100");
        assert_eq!(path("prices", &cursor), "/v1/prices?limit=100");
        assert_eq!(path("invoices", &cursor), "/v1/invoices?limit=100");
        // Canceled subscriptions stay rows, so the backfill must see them too.
        assert_eq!(path("subscriptions", &cursor), "/v1/subscriptions?status=all&limit=100");
        let mut next = cursor.clone();
        next["starting_after"] = json!("sub_7");
        assert_eq!(path("subscriptions", &next), "/v1/subscriptions?status=all&limit=100&starting_after=sub_7");
    }

    #[test]
    fn subscription_events_are_never_taken_for_customers() {
        let events = vec![
            event("evt_2", "customer.subscription.updated", 11, subscription("sub_1", "active")),
            event("evt_1", "customer.subscription.created", 10, subscription("sub_1", "active")),
        ];
        assert!(apply_events("customers", events.clone()).is_empty());
        let records = apply_events("subscriptions", events);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].version_us, 11_000_000);
        // Nor a customer's event for a subscription.
        let customer_event = event("evt_3", "customer.updated", 12, customer("cus_1"));
        assert!(apply_events("subscriptions", vec![customer_event]).is_empty());
    }

    #[test]
    fn a_canceled_subscription_is_a_row_with_status_canceled() {
        let mut canceled = subscription("sub_1", "canceled");
        canceled["canceled_at"] = json!(1_700_000_100);
        let records = apply_events(
            "subscriptions",
            vec![event("evt_2", "customer.subscription.deleted", 12, canceled.clone())],
        );
        assert_eq!(records.len(), 1);
        assert!(!records[0].deleted);
        assert_eq!(records[0].columns["status"], json!("canceled"));
        assert_eq!(records[0].columns["canceled_at"], json!("2023-11-14T22:15:00.000000Z"));

        // DELETE answers the same object: the same record.
        let spec = collection("subscriptions");
        let request = Stripe.delete_request(spec, "sub_1");
        assert_eq!((request.method, request.path.as_str()), (Method::Delete, "/v1/subscriptions/sub_1"));
        let record = Stripe.write_response(spec, Some("sub_1"), &reply(200, canceled), 12_300_000).unwrap();
        assert!(!record.deleted);
        assert_eq!(record.columns["status"], json!("canceled"));
        // A product's delete reply is a deletion.
        let gone = json!({"id": "prod_1", "object": "product", "deleted": true});
        assert!(Stripe.write_response(collection("products"), Some("prod_1"), &reply(200, gone), 0).unwrap().deleted);
    }

    #[test]
    fn timestamps_become_timestamptz_for_every_declared_column() {
        let records = apply_events(
            "subscriptions",
            vec![event("evt_1", "customer.subscription.created", 10, subscription("sub_1", "active"))],
        );
        let columns = &records[0].columns;
        assert_eq!(columns["created"], json!("2023-11-14T22:13:20.000000Z"));
        assert_eq!(columns["current_period_start"], json!("2023-11-14T22:13:20.000000Z"));
        assert_eq!(columns["current_period_end"], json!("2023-12-14T22:13:20.000000Z"));
        assert_eq!(columns["canceled_at"], Value::Null);
        // Nested times stay as Stripe sent them, in the jsonb column and in raw.
        assert_eq!(columns["items"]["data"][0]["created"], json!(1_700_000_000));
        assert_eq!(records[0].raw["current_period_end"], json!(1_702_592_000));

        let product = json!({"id": "prod_1", "object": "product", "name": "Gold", "created": 1_700_000_000, "updated": 1_700_000_060});
        let records = apply_events("products", vec![event("evt_1", "product.updated", 10, product)]);
        assert_eq!(records[0].columns["updated"], json!("2023-11-14T22:14:20.000000Z"));
    }

    #[test]
    fn invoices_follow_finalized_and_paid_events() {
        let invoice = |status: &str| {
            json!({"id": "in_1", "object": "invoice", "status": status, "amount_due": 3000,
                   "created": 1_700_000_000, "period_start": 1_700_000_000, "period_end": 1_700_000_000, "due_date": null})
        };
        let records = apply_events(
            "invoices",
            vec![
                event("evt_5", "invoice.upcoming", 10, invoice("draft")),
                event("evt_4", "invoice.payment_succeeded", 10, invoice("paid")),
                event("evt_3", "invoice.paid", 10, invoice("paid")),
                event("evt_2", "invoice.finalized", 10, invoice("open")),
                event("evt_1", "invoice.created", 10, invoice("draft")),
            ],
        );
        let statuses: Vec<&Value> = records.iter().map(|r| &r.columns["status"]).collect();
        assert_eq!(statuses, [&json!("draft"), &json!("open"), &json!("paid"), &json!("paid")]);
        assert!(records.iter().all(|r| !r.deleted));
        assert_eq!(records[0].columns["period_end"], json!("2023-11-14T22:13:20.000000Z"));
        let deleted = apply_events("invoices", vec![event("evt_6", "invoice.deleted", 11, invoice("draft"))]);
        assert!(deleted[0].deleted);
    }

    #[test]
    fn which_statements_each_collection_accepts() {
        let ops = |name: &str| WriteOp::ALL.iter().filter(|op| collection(name).allows(**op)).count();
        assert_eq!((ops("customers"), ops("products"), ops("subscriptions")), (3, 3, 3));
        assert!(collection("prices").allows(WriteOp::Update) && !collection("prices").allows(WriteOp::Delete));
        assert!(collection("prices").writes_hint.as_deref().unwrap().contains("SET active = false"));
        assert_eq!(ops("invoices"), 0);
        assert!(collection("invoices").writes_hint.is_some());
        assert!(collection("invoices").columns.iter().all(|c| c.writable == Never));
    }

    #[test]
    fn a_price_is_created_with_its_amount_which_no_update_may_change() {
        let prices = collection("prices");
        let row = vec![
            ("product".to_string(), WriteValue::Text("prod_1".into())),
            ("currency".to_string(), WriteValue::Text("usd".into())),
            ("unit_amount".to_string(), WriteValue::Json(json!(1500))),
            ("active".to_string(), WriteValue::Json(json!(true))),
            ("nickname".to_string(), WriteValue::Null),
            ("recurring".to_string(), WriteValue::Json(json!({"interval": "month", "aggregate_usage": null}))),
        ];
        let request = Stripe.create_request(prices, &row).unwrap();
        assert_eq!(request.path, "/v1/prices");
        assert_eq!(
            request.body,
            Some(Body::Form(vec![
                ("product".into(), "prod_1".into()),
                ("currency".into(), "usd".into()),
                ("unit_amount".into(), "1500".into()),
                ("active".into(), "true".into()),
                ("recurring[interval]".into(), "month".into()),
            ]))
        );

        let update = vec![("unit_amount".to_string(), WriteValue::Json(json!(2000)))];
        let error = Stripe.update_request(prices, "price_1", &update, None).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
        assert_eq!(error.message, "column \"unit_amount\" of Stripe prices can only be set by INSERT");
        assert_eq!(error.hint.as_deref(), Some("Columns an UPDATE may set: active, nickname, metadata."));
        let rename = vec![("nickname".to_string(), WriteValue::Text("Monthly".into()))];
        let request = Stripe.update_request(prices, "price_1", &rename, None).unwrap();
        assert_eq!(request.path, "/v1/prices/price_1");
        assert_eq!(request.body, Some(Body::Form(vec![("nickname".into(), "Monthly".into())])));
        let error = Stripe.create_request(prices, &vec![("type".to_string(), WriteValue::Text("x".into()))]).unwrap_err();
        assert_eq!(error.message, "column \"type\" of Stripe prices cannot be written");
    }

    #[test]
    fn a_subscription_is_created_from_its_items() {
        let row = vec![
            ("customer".to_string(), WriteValue::Text("cus_1".into())),
            ("items".to_string(), WriteValue::Json(json!([{"price": "price_1", "quantity": 2}]))),
            ("metadata".to_string(), WriteValue::Json(json!({"plan": "pro"}))),
        ];
        let request = Stripe.create_request(collection("subscriptions"), &row).unwrap();
        assert_eq!((request.method, request.path.as_str()), (Method::Post, "/v1/subscriptions"));
        assert_eq!(
            request.body,
            Some(Body::Form(vec![
                ("customer".into(), "cus_1".into()),
                ("items[0][price]".into(), "price_1".into()),
                ("items[0][quantity]".into(), "2".into()),
                ("metadata[plan]".into(), "pro".into()),
            ]))
        );
        let update = vec![("cancel_at_period_end".to_string(), WriteValue::Json(json!(true)))];
        let request = Stripe.update_request(collection("subscriptions"), "sub_1", &update, None).unwrap();
        assert_eq!(request.body, Some(Body::Form(vec![("cancel_at_period_end".into(), "true".into())])));
        let items = vec![("items".to_string(), WriteValue::Json(json!([])))];
        let error = Stripe.update_request(collection("subscriptions"), "sub_1", &items, None).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
    }

    #[test]
    fn an_empty_list_unsets_on_update_and_is_left_out_on_create() {
        let row = vec![("images".to_string(), WriteValue::Json(json!([])))];
        let products = collection("products");
        let update = Stripe.update_request(products, "prod_1", &row, Some(&json!({"images": ["a"]}))).unwrap();
        assert_eq!(update.body, Some(Body::Form(vec![("images".into(), "".into())])));
        let mut create_row = row.clone();
        create_row.push(("name".to_string(), WriteValue::Text("Gold".into())));
        let create = Stripe.create_request(products, &create_row).unwrap();
        assert_eq!(create.body, Some(Body::Form(vec![("name".into(), "Gold".into())])));
    }

    #[test]
    fn an_incremental_cursor_whose_event_is_gone_has_expired() {
        let refusal = |code: &str| {
            let error = ApiError {
                kind: ErrorKind::Validation,
                status: 400,
                message: "No such event: 'evt_1'".into(),
                code: Some(code.into()),
                field: Some("ending_before".into()),
                request_id: None,
                retry_after: None,
            };
            error.into_error("Stripe", &ApiRequest::get("/v1/events"))
        };
        let missing = refusal("resource_missing");
        let spec = collection("subscriptions");
        let after = json!({"phase": "incremental", "after": "evt_1", "since": 5});
        assert_eq!(
            Stripe.cursor_expired(spec, &after, &missing).as_deref(),
            Some("Stripe keeps events for 30 days and the sync cursor's event evt_1 is gone; starting a new backfill")
        );
        let scanning = json!({"phase": "incremental", "after": null, "since": 5, "scan": "evt_2"});
        assert!(Stripe.cursor_expired(spec, &scanning, &missing).unwrap().contains("evt_2"));
        // Not an events cursor, no event named, or another refusal: not expired.
        let backfill = json!({"phase": "backfill", "anchor": "evt_1", "starting_after": "sub_1"});
        assert_eq!(Stripe.cursor_expired(spec, &backfill, &missing), None);
        assert_eq!(Stripe.cursor_expired(spec, &json!({"phase": "incremental", "since": 5}), &missing), None);
        assert_eq!(Stripe.cursor_expired(spec, &json!({}), &missing), None);
        assert_eq!(Stripe.cursor_expired(spec, &after, &refusal("parameter_invalid_integer")), None);
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

    #[test]
    fn a_request_reply_applies_every_object_of_a_synced_type_nested_or_not() {
        let price = json!({"id": "price_1", "object": "price", "unit_amount": 1500, "created": 1_700_000_000});
        let invoice = json!({"id": "in_1", "object": "invoice", "status": "paid", "created": 1_700_000_000,
                             "subscription": "sub_1",
                             "lines": {"object": "list", "data": [{"id": "il_1", "object": "line_item", "price": price.clone()}]}});
        let mut sub = subscription("sub_1", "active");
        sub["latest_invoice"] = invoice;
        sub["items"]["data"][0]["price"] = price.clone();
        sub["customer"] = customer("cus_1");
        let found = records_in_reply(&Stripe, &sub, 12_345_678);
        let names: Vec<(&str, &str)> = found.iter().map(|(s, r)| (s.as_str(), r.id.as_str())).collect();
        // In order of appearance (serde_json's maps are sorted by key), each once.
        assert_eq!(names, vec![("subscriptions", "sub_1"), ("customers", "cus_1"), ("prices", "price_1"), ("invoices", "in_1")]);
        assert!(found.iter().all(|(_, r)| r.version_us == 12_000_000 && !r.deleted));
        // The subscription keeps ids where the request expanded objects.
        assert_eq!((&found[0].1.columns["customer"], &found[0].1.raw["latest_invoice"]), (&json!("cus_1"), &json!("in_1")));
        assert_eq!(found[0].1.columns["created"], json!("2023-11-14T22:13:20.000000Z"));

        // A list; a deletion.
        let list = json!({"object": "list", "data": [customer("cus_1"), customer("cus_2")], "has_more": false});
        assert_eq!(records_in_reply(&Stripe, &list, 0).len(), 2);
        let gone = records_in_reply(&Stripe, &json!({"id": "cus_1", "object": "customer", "deleted": true}), 0);
        assert!(gone[0].1.deleted);
        // Events are history: what they carry is not the current state.
        let mut past = event("evt_1", "customer.updated", 10, customer("cus_1"));
        past["object"] = json!("event");
        let events = json!({"object": "list", "data": [past]});
        assert!(records_in_reply(&Stripe, &events, 0).is_empty());
        // Types no table syncs, objects without an id, scalars.
        for other in [json!({"id": "re_1", "object": "refund"}), json!({"object": "customer"}), json!("cus_1"), json!(null)] {
            assert!(records_in_reply(&Stripe, &other, 0).is_empty(), "{other}");
        }
    }

    #[test]
    fn a_request_body_is_form_encoded_with_brackets() {
        let body = json!({"email": "a@b.co", "metadata": {"plan": "pro", "old": null}, "items": [{"price": "p", "quantity": 2}],
                          "expand": ["latest_invoice"], "balance": -5, "tax_exempt": false});
        assert_eq!(
            Stripe.request_body(&body).unwrap(),
            Body::Form(vec![
                ("balance".into(), "-5".into()),
                ("email".into(), "a@b.co".into()),
                ("expand[0]".into(), "latest_invoice".into()),
                ("items[0][price]".into(), "p".into()),
                ("items[0][quantity]".into(), "2".into()),
                ("metadata[old]".into(), "".into()),
                ("metadata[plan]".into(), "pro".into()),
                ("tax_exempt".into(), "false".into()),
            ])
        );
        for not_an_object in [json!([1]), json!("email=a"), json!(3)] {
            assert_eq!(Stripe.request_body(&not_an_object).unwrap_err().kind, ErrorKind::InvalidArgument);
        }
        assert!(Stripe.idempotency_key(Method::Post).is_some());
        assert_ne!(Stripe.idempotency_key(Method::Post), Stripe.idempotency_key(Method::Post));
        for method in [Method::Get, Method::Delete, Method::Patch, Method::Put] {
            assert_eq!(Stripe.idempotency_key(method), None);
        }
    }
}
