//! Salesforce's writes: sObject Collections (all or none, 200 records),
//! the single-record DELETE, and the records they apply locally.

use super::sync::{parse_datetime, record_from_sobject};
use crate::error::{ErrorKind, SequinError};
use crate::providers::*;
use serde_json::{Map, Value};

/// A column's value as its field takes it: a multipicklist's values joined
/// by `;`, a datetime in ISO 8601 (Postgres prints `2026-01-01 10:00:00+00`).
fn field_value(column: &ColumnSpec, value: &WriteValue) -> Value {
    match (column.api_type.as_str(), value) {
        (_, WriteValue::Null) => Value::Null,
        ("multipicklist", WriteValue::Json(Value::Array(items))) => {
            Value::String(items.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect::<Vec<_>>().join(";"))
        }
        ("multipicklist", WriteValue::Text(text)) => Value::String(text.clone()),
        ("datetime", WriteValue::Text(text)) => match parse_datetime(text) {
            Some(us) => Value::String(super::sync::iso_ms(us)),
            None => Value::String(text.clone()),
        },
        (_, WriteValue::Json(json)) => json.clone(),
        (_, WriteValue::Text(text)) => Value::String(text.clone()),
    }
}

/// Refuses, before any request, a column this statement may not set: the
/// describe says whether its field is createable or updateable.
fn check_writable(collection: &CollectionSpec, op: WriteOp, name: &str) -> Result<(), SequinError> {
    let column = collection.column(name);
    if column.is_some_and(|c| c.writable_by(op)) {
        return Ok(());
    }
    let writable = collection.columns.iter().filter(|c| c.writable_by(op)).map(|c| c.name.as_str()).collect::<Vec<_>>();
    let (message, detail) = match column {
        Some(c) => (
            format!("column \"{name}\" of Salesforce {} cannot be set by {}", collection.name, op.as_sql()),
            format!("Salesforce says field {} is not {} (describe).", c.field, if op == WriteOp::Insert { "createable" } else { "updateable" }),
        ),
        None => (
            format!("column \"{name}\" of Salesforce {} cannot be written", collection.name),
            format!("Salesforce {} has no field for it (any more): see sync_status.schema_drift.", collection.name),
        ),
    };
    Err(SequinError::new(ErrorKind::ReadOnlyColumn, message)
        .with_detail(detail)
        .with_hint(format!("Columns an {} may set: {}.", op.as_sql(), writable.join(", "))))
}

/// The fields a row sets, by Salesforce name. A create leaves out nulls
/// (the columns the INSERT did not set, and Salesforce's defaults apply); an
/// update sends them, which clears the field.
pub(super) fn sobject_fields(collection: &CollectionSpec, op: WriteOp, row: &WriteRow) -> Result<Map<String, Value>, SequinError> {
    let mut fields = Map::new();
    for (name, value) in row {
        if op == WriteOp::Insert && *value == WriteValue::Null {
            continue;
        }
        check_writable(collection, op, name)?;
        let column = collection.column(name).expect("check_writable found it");
        fields.insert(column.field.clone(), field_value(column, value));
    }
    Ok(fields)
}

pub(super) fn row_id(row: &BatchRow, op: WriteOp) -> Result<&str, SequinError> {
    row.id.as_deref().ok_or_else(|| SequinError::internal(format!("a Salesforce {} row without an id", op.as_sql())))
}


/// The records a successful batch applies locally.
pub(super) fn batch_records(
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