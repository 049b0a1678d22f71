//! `/_admin/salesforce/{Type}/fields…?account=K`: changes one org's schema
//! the way an admin in Setup would, so tests can see fields appear, vanish
//! and change access upstream. Each change dates the type's schema now
//! (describe's If-Modified-Since then answers 200); records keep their
//! SystemModstamp, as in Salesforce.
//!
//! * `POST …/fields` `{"name":"Region__c","type":"string",…}` → 201, the
//!   field's describe entry; existing records get null (or `defaultValue`).
//! * `DELETE …/fields/{Name}` → `{"deleted":true}`; custom fields only.
//! * `PATCH …/fields/{Name}` `{"createable":bool,"updateable":bool}` → the entry.

use serde_json::{json, Map, Value};

use super::admin::json_map;
use super::describe::field_json;
use super::schema::{Field, FieldType, SObject, SchemaError};
use super::{typed_values, SalesforceState};
use crate::http::{Reply, Req};
use crate::stripe::errors::ApiError;

const ADD_KEYS: [&str; 13] = [
    "name",
    "label",
    "type",
    "length",
    "precision",
    "scale",
    "createable",
    "updateable",
    "nillable",
    "picklistValues",
    "restrictedPicklist",
    "defaultValue",
    "referenceTo",
];

fn bad(e: SchemaError) -> ApiError {
    ApiError::invalid(e.0)
}

fn flag(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(format!("{key} must be true or false")).param(key)),
    }
}

fn number(body: &Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().filter(|n| *n <= max).map(Some).ok_or_else(|| {
            ApiError::invalid(format!("{key} must be an integer 0..{max}")).param(key)
        }),
    }
}

/// `[ "A", {"value":"B"} ]` → the values.
fn picklist(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let Some(items) = body.get("picklistValues") else {
        return Ok(Vec::new());
    };
    let err = || {
        ApiError::invalid("picklistValues must be a list of strings or {\"value\"} objects")
            .param("picklistValues")
    };
    items
        .as_array()
        .ok_or_else(err)?
        .iter()
        .map(|v| {
            v.as_str()
                .or_else(|| v.get("value").and_then(Value::as_str))
                .map(str::to_string)
                .ok_or_else(err)
        })
        .collect()
}

/// The field a POST body describes.
fn new_field(sf: &SalesforceState, body: &Map<String, Value>) -> Result<Field, ApiError> {
    if let Some(key) = body.keys().find(|k| !ADD_KEYS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("Unknown key: {key}")).param(key));
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::missing_param("name"))?;
    let well_formed = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !well_formed {
        return Err(ApiError::invalid(format!("Not a field name: {name}")).param("name"));
    }
    let type_name = body
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::missing_param("type"))?;
    let ftype = FieldType::parse(type_name)
        .filter(|t| *t != FieldType::Id && !t.is_compound())
        .ok_or_else(|| {
            ApiError::invalid(format!("Unsupported field type: {type_name}")).param("type")
        })?;
    let default_label = name.trim_end_matches("__c").replace('_', " ");
    let label = body
        .get("label")
        .and_then(Value::as_str)
        .unwrap_or(&default_label);
    let mut f = Field::new(name, label, ftype);
    if let Some(length) = number(body, "length", 131_072)? {
        f.length = length as usize;
    }
    if let Some(precision) = number(body, "precision", 18)? {
        f.precision = precision as u32;
    }
    if let Some(scale) = number(body, "scale", 17)? {
        f.scale = scale as u32;
    }
    f.createable = flag(body, "createable")?.unwrap_or(true);
    f.updateable = flag(body, "updateable")?.unwrap_or(true);
    f.nillable = flag(body, "nillable")?.unwrap_or(true);
    f.picklist = picklist(body)?;
    f.restricted = flag(body, "restrictedPicklist")?.unwrap_or(false);
    if ftype == FieldType::Reference {
        let target = body
            .get("referenceTo")
            .and_then(Value::as_str)
            .and_then(|t| sf.sobject(t))
            .filter(|t| t.key_prefix.is_some())
            .ok_or_else(|| {
                ApiError::invalid("A reference needs referenceTo: a type of the org with records")
                    .param("referenceTo")
            })?;
        f = f.reference(&target.name, &name.replace("__c", "__r"));
    }
    if let Some(v) = body.get("defaultValue").filter(|v| !v.is_null()) {
        let value = typed_values::parse(&f, v)
            .and_then(|value| typed_values::check(&f, &value).map(|()| value))
            .map_err(|e| {
                ApiError::invalid(format!("defaultValue: {}", e.message)).param("defaultValue")
            })?;
        f.default = Some(value);
    }
    Ok(f)
}

/// `rest` is the path after `…/{Type}/fields`.
pub fn handle(
    sf: &mut SalesforceState,
    t: &SObject,
    req: &Req,
    rest: &[&str],
    now: i64,
) -> Result<Reply, ApiError> {
    let mut changed = t.clone();
    match (req.method.as_str(), rest) {
        ("POST", []) => {
            let field = new_field(sf, &json_map(req)?)?;
            let initial = field.default.clone().unwrap_or(Value::Null);
            let entry = field_json(&field);
            let slot = changed.add_field(field, now).map_err(bad)?;
            sf.replace_type(changed);
            sf.store_mut(t).set_slot_everywhere(slot, &initial);
            Ok(Reply::json(201, &entry))
        }
        ("DELETE", [name]) => {
            let slot = changed.remove_field(name, now).map_err(bad)?;
            sf.replace_type(changed);
            sf.store_mut(t).set_slot_everywhere(slot, &Value::Null);
            Ok(Reply::json(200, &json!({ "deleted": true })))
        }
        ("PATCH", [name]) => {
            let body = json_map(req)?;
            if let Some(key) = body
                .keys()
                .find(|k| !matches!(k.as_str(), "createable" | "updateable"))
            {
                return Err(ApiError::invalid(format!("Unknown key: {key}")).param(key));
            }
            let (createable, updateable) = (flag(&body, "createable")?, flag(&body, "updateable")?);
            let entry = field_json(
                changed
                    .set_access(name, createable, updateable, now)
                    .map_err(bad)?,
            );
            sf.replace_type(changed);
            Ok(Reply::json(200, &entry))
        }
        _ => Err(ApiError::invalid(format!(
            "Unknown admin endpoint: {} {}",
            req.method, req.path
        ))
        .status(404)),
    }
}
