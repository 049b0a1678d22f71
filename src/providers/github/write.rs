//! GitHub's writes: one request per row (no batch endpoint), JSON bodies;
//! DELETE of an issue closes it (the REST API deletes no issues).

use super::schema::{kind, Kind};
use super::sync::{record_from_item, repository};
use crate::error::{ErrorKind, SequinError};
use crate::providers::*;
use serde_json::{json, Map, Value};

/// Refuses, before any request, a column this statement may not set.
fn check_writable(collection: &CollectionSpec, op: WriteOp, name: &str) -> Result<(), SequinError> {
    let column = collection.column(name);
    if column.is_some_and(|c| c.writable_by(op)) {
        return Ok(());
    }
    let writable = collection.columns.iter().filter(|c| c.writable_by(op)).map(|c| c.name.as_str()).collect::<Vec<_>>();
    let detail = match column.map(|c| c.writable) {
        Some(Writable::OnUpdate) => "GitHub takes it on update only (a new issue is open).",
        Some(Writable::OnInsert) => "GitHub fixes it when the record is created.",
        _ => "GitHub sets it.",
    };
    Err(SequinError::new(
        ErrorKind::ReadOnlyColumn,
        format!("column \"{name}\" of GitHub {} cannot be set by {}", collection.name, op.as_sql()),
    )
    .with_detail(detail)
    .with_hint(format!("Columns an {} may set: {}.", op.as_sql(), writable.join(", "))))
}

/// The JSON body of a row: each column under its field; `labels` and
/// `assignees` as lists of names, `milestone` as its number.
fn json_body(collection: &CollectionSpec, op: WriteOp, row: &WriteRow) -> Result<Map<String, Value>, SequinError> {
    let mut body = Map::new();
    for (name, value) in row {
        if op == WriteOp::Insert && *value == WriteValue::Null {
            continue;
        }
        check_writable(collection, op, name)?;
        let column = collection.column(name).expect("check_writable found it");
        let value = match value {
            WriteValue::Null => match column.field.as_str() {
                // GitHub clears a list with an empty one.
                "labels" | "assignees" => json!([]),
                _ => Value::Null,
            },
            WriteValue::Text(text) => Value::String(text.clone()),
            WriteValue::Json(json) => json.clone(),
        };
        body.insert(column.field.clone(), value);
    }
    Ok(body)
}

fn request(method: Method, path: String, body: Option<Map<String, Value>>) -> ApiRequest {
    ApiRequest { method, path, body: body.map(|b| Body::Json(Value::Object(b))), idempotency_key: None, headers: Vec::new() }
}

/// The number or name a record is addressed by, from its last synced state.
fn key_of(raw: Option<&Value>, field: &str, id: &str, collection: &CollectionSpec) -> Result<String, SequinError> {
    raw.and_then(|r| r.get(field))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .ok_or_else(|| {
            SequinError::new(ErrorKind::NotFound, format!("GitHub {} {id} is not in the table yet", collection.name))
                .with_detail(format!("Its {field} addresses it in GitHub's API; the sync brings it."))
        })
}

pub(super) fn create_request(collection: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError> {
    let repo = repository(collection);
    let mut body = json_body(collection, WriteOp::Insert, row)?;
    let path = match kind(collection) {
        Kind::Issues => format!("/repos/{repo}/issues"),
        Kind::Comments => {
            let number = body.remove("issue_number").filter(|n| !n.is_null()).ok_or_else(|| {
                SequinError::new(ErrorKind::Validation, "a GitHub issue comment needs issue_number")
                    .with_detail("No request was sent.")
                    .with_hint("INSERT INTO … (issue_number, body) VALUES (<the issue's number>, '…').")
            })?;
            format!("/repos/{repo}/issues/{}/comments", encode_path_segment(&number.to_string().trim_matches('"').to_string()))
        }
        Kind::Labels => format!("/repos/{repo}/labels"),
        Kind::PullRequests => return Err(SequinError::internal("pull requests are read-only")),
    };
    Ok(request(Method::Post, path, Some(body)))
}

pub(super) fn update_request(
    collection: &CollectionSpec,
    id: &str,
    row: &WriteRow,
    old_raw: Option<&Value>,
) -> Result<ApiRequest, SequinError> {
    let repo = repository(collection);
    let mut body = json_body(collection, WriteOp::Update, row)?;
    let path = match kind(collection) {
        Kind::Issues => format!("/repos/{repo}/issues/{}", encode_path_segment(&key_of(old_raw, "number", id, collection)?)),
        Kind::Comments => format!("/repos/{repo}/issues/comments/{}", encode_path_segment(id)),
        Kind::Labels => {
            // A label is addressed by its name; a new name is `new_name`.
            if let Some(name) = body.remove("name") {
                body.insert("new_name".into(), name);
            }
            format!("/repos/{repo}/labels/{}", encode_path_segment(&key_of(old_raw, "name", id, collection)?))
        }
        Kind::PullRequests => return Err(SequinError::internal("pull requests are read-only")),
    };
    Ok(request(Method::Patch, path, Some(body)))
}

/// DELETE of an issue closes it, with the table's `close_reason`
/// (`completed` unless it says `not_planned`); of a comment or a label,
/// deletes it.
pub(super) fn delete_request(collection: &CollectionSpec, id: &str, raw: Option<&Value>) -> ApiRequest {
    let repo = repository(collection);
    let key = |field: &str| key_of(raw, field, id, collection).unwrap_or_default();
    match kind(collection) {
        Kind::Issues | Kind::PullRequests => {
            let reason = collection.setting("close_reason").unwrap_or("completed");
            let mut body = Map::new();
            body.insert("state".into(), json!("closed"));
            body.insert("state_reason".into(), json!(reason));
            request(Method::Patch, format!("/repos/{repo}/issues/{}", encode_path_segment(&key("number"))), Some(body))
        }
        Kind::Comments => request(Method::Delete, format!("/repos/{repo}/issues/comments/{}", encode_path_segment(id)), None),
        Kind::Labels => request(Method::Delete, format!("/repos/{repo}/labels/{}", encode_path_segment(&key("name"))), None),
    }
}

/// A write's reply: the record as GitHub holds it now (a closed issue
/// stays), or gone (204 to a DELETE).
pub(super) fn write_response(collection: &CollectionSpec, id: Option<&str>, response: &ApiResponse, now_us: i64) -> Result<Record, ApiError> {
    if let (Some(id), 204) = (id, response.status) {
        return Ok(Record::gone(id, now_us));
    }
    let item = response.json().ok_or_else(|| unparseable(response, "not JSON"))?;
    let record = record_from_item(collection, &item, now_us).ok_or_else(|| unparseable(response, "an item without id"))?;
    match id {
        Some(expected) if expected != record.id => Err(unparseable(response, "reply is for another record")),
        _ => Ok(record),
    }
}
