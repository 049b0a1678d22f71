//! Stripe's writes: bracket-nested form parameters, one request a row
//! (Stripe has no batch endpoint), and an idempotency key on every POST.

use super::schema::stripe_collection;
use super::sync::{record_from_object, second_of};
use crate::error::{ErrorKind, SequinError};
use crate::providers::Writable::OnInsert;
use crate::providers::*;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

/// A key unique to this request, so a retried POST never applies twice.
pub(super) fn idempotency_key() -> String {
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

pub(super) fn request_body(body: &Value) -> Result<Body, SequinError> {
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

pub(super) fn create_request(spec: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError> {
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

pub(super) fn update_request(
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

pub(super) fn delete_request(spec: &CollectionSpec, id: &str) -> ApiRequest {
    let collection = stripe_collection(spec);
    ApiRequest {
        method: Method::Delete,
        path: format!("{}/{}", collection.path, encode_path_segment(id)),
        body: None,
        idempotency_key: None,
        headers: Vec::new(),
    }
}

pub(super) fn write_response(
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
