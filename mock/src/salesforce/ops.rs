//! Creating, updating and deleting records, with Salesforce's validation.
//! Shared by the single-record endpoints, sObject Collections and the admin
//! interface. Each change returns an `Undo` (see store.rs).
//!
//! Two kinds of failure: a body that doesn't fit the type (unknown field,
//! wrong JSON type) fails the whole request, as Salesforce's JSON parser
//! does; the rest (`check_shape` passed) are errors about one record.

use serde_json::{Map, Value};

use super::errors::SfError;
use super::schema::{sobject, Kind, SObject};
use super::store::{Lookup, Record, Undo};
use super::{sfid, SalesforceState};
use crate::stripe::customers::valid_email;

const EMAIL_MAX: usize = 80;

fn json_token(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "VALUE_STRING",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
        Value::Null => "VALUE_NULL",
    }
}

fn cannot_deserialize(kind: &str, v: &Value) -> SfError {
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    SfError::json_parser(format!(
        "Cannot deserialize instance of {kind} from {} value {shown} or request may be missing a required field",
        json_token(v)
    ))
}

pub fn no_such_column(t: &SObject, name: &str) -> SfError {
    SfError::new(
        400,
        "INVALID_FIELD",
        format!("No such column '{name}' on sobject of type {}", t.name),
    )
}

/// Every key is a field of `t` (or `attributes`) and every value has a JSON
/// type the field can take.
pub fn check_shape(t: &SObject, body: &Map<String, Value>) -> Result<(), SfError> {
    for (key, v) in body {
        if key == "attributes" {
            continue;
        }
        let i = t.field_index(key).ok_or_else(|| no_such_column(t, key))?;
        if v.is_null() {
            continue;
        }
        let ok = match t.fields[i].kind {
            Kind::Number => v.is_number(),
            Kind::Date => v
                .as_str()
                .is_some_and(|s| s.is_empty() || super::time::parse_date(s).is_some()),
            Kind::IsDeleted => v.is_boolean(),
            _ => v.is_string(),
        };
        if !ok {
            let kind = match t.fields[i].kind {
                Kind::Number => "double",
                Kind::Date => "date",
                Kind::IsDeleted => "boolean",
                Kind::Reference(_) | Kind::Id => "reference",
                k if k.is_datetime() => "datetime",
                _ => "string",
            };
            return Err(cannot_deserialize(kind, v));
        }
    }
    Ok(())
}

/// Applies `body` to `record` (a copy) and checks the result: field by
/// field, then required fields, then the duplicate rule.
fn apply(
    state: &SalesforceState,
    t: &'static SObject,
    record: &mut Record,
    body: &Map<String, Value>,
    creating: bool,
    existing: Option<&Record>,
) -> Result<(), SfError> {
    check_shape(t, body)?;
    for (key, v) in body {
        if key == "attributes" {
            continue;
        }
        let i = t.field_index(key).expect("check_shape");
        let field = &t.fields[i];
        if field.kind == Kind::Id {
            if creating {
                return Err(SfError::record(
                    "INVALID_FIELD",
                    "cannot specify Id in an insert call",
                    &[],
                ));
            }
            continue; // the update's target, given again
        }
        if !field.kind.writable() {
            return Err(SfError::record(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!("Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", field.name),
                &[field.name],
            ));
        }
        // Salesforce stores an empty string as null.
        let value = match v {
            Value::String(s) if s.is_empty() => Value::Null,
            other => other.clone(),
        };
        let value = match (field.kind, &value) {
            (_, Value::Null) => Value::Null,
            (Kind::Text(max), Value::String(s)) => {
                if s.chars().count() > max {
                    return Err(too_long(field.label, field.name, s, max));
                }
                value
            }
            (Kind::Email, Value::String(s)) => {
                if s.chars().count() > EMAIL_MAX {
                    return Err(too_long(field.label, field.name, s, EMAIL_MAX));
                }
                if !valid_email(s) {
                    return Err(SfError::record(
                        "INVALID_EMAIL_ADDRESS",
                        format!("{}: invalid email address: {s}", field.label),
                        &[field.name],
                    ));
                }
                value
            }
            (Kind::Number, Value::Number(n)) => Value::from(n.as_f64().unwrap_or(0.0)),
            (Kind::Reference(target), Value::String(s)) => {
                let target = sobject(target).expect("references name a known type");
                let id = sfid::normalize(s)
                    .filter(|id| id.starts_with(target.key_prefix))
                    .ok_or_else(|| {
                        SfError::record(
                            "FIELD_INTEGRITY_EXCEPTION",
                            format!("{}: id value of incorrect type: {s}", field.label),
                            &[field.name],
                        )
                    })?;
                if !matches!(state.store(target).lookup(&id), Lookup::Live(_)) {
                    return Err(SfError::record(
                        "INVALID_CROSS_REFERENCE_KEY",
                        "invalid cross reference id",
                        &[],
                    ));
                }
                Value::String(id)
            }
            _ => value,
        };
        record.values[i] = value;
    }
    let missing: Vec<&str> = t
        .fields
        .iter()
        .enumerate()
        .filter(|(i, f)| f.required && record.values[*i].is_null())
        .map(|(_, f)| f.name)
        .collect();
    if !missing.is_empty() {
        return Err(SfError::record(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            &missing,
        ));
    }
    if t.unique_email {
        if let Some(email) = record.email(t) {
            if state.store(t).email_taken(&email, existing) {
                return Err(SfError::record(
                    "DUPLICATES_DETECTED",
                    "Use one of these records?",
                    &[],
                ));
            }
        }
    }
    Ok(())
}

fn too_long(label: &str, name: &str, value: &str, max: usize) -> SfError {
    SfError::record(
        "STRING_TOO_LONG",
        format!("{label}: data value too large: {value} (max length={max})"),
        &[name],
    )
}

/// A new record of `t` from `body`; returns its id.
pub fn create(
    state: &mut SalesforceState,
    t: &'static SObject,
    body: &Map<String, Value>,
    now_ms: i64,
) -> Result<(String, Undo), SfError> {
    let mut record = Record {
        id: state.store(t).next_id(),
        values: t
            .fields
            .iter()
            .map(|f| f.default.map_or(Value::Null, Value::from))
            .collect(),
        created_ms: now_ms,
        modified_ms: now_ms,
        modstamp_ms: now_ms,
    };
    apply(state, t, &mut record, body, true, None)?;
    let id = record.id.clone();
    Ok((id, state.store_mut(t).insert(record)))
}

/// Where a record stands, for an update or delete by id: the live record,
/// or the error for a malformed, deleted or unknown id (`single`: as the
/// single-record endpoints answer; else as a collection result).
fn target(
    state: &SalesforceState,
    t: &'static SObject,
    id: &str,
    single: bool,
) -> Result<std::sync::Arc<Record>, SfError> {
    let normalized = sfid::normalize(id).filter(|n| n.starts_with(t.key_prefix));
    let Some(id18) = normalized else {
        return Err(if single {
            SfError::not_found()
        } else {
            SfError::record("MALFORMED_ID", format!("malformed id {id}"), &[])
        });
    };
    match state.store(t).lookup(&id18) {
        Lookup::Live(r) => Ok(r),
        Lookup::Deleted => Err(if single {
            SfError::entity_is_deleted()
        } else {
            SfError::record("ENTITY_IS_DELETED", "entity is deleted", &[])
        }),
        Lookup::Missing => Err(if single {
            SfError::not_found()
        } else {
            SfError::record(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                &[],
            )
        }),
    }
}

/// The live record with this (15- or 18-character) id.
pub fn find(
    state: &SalesforceState,
    t: &'static SObject,
    id: &str,
) -> Option<std::sync::Arc<Record>> {
    let id18 = sfid::normalize(id)?;
    state.store(t).get(&id18)
}

/// Changes the given fields; SystemModstamp and LastModifiedDate move even
/// when nothing else does.
pub fn update(
    state: &mut SalesforceState,
    t: &'static SObject,
    id: &str,
    body: &Map<String, Value>,
    now_ms: i64,
    single: bool,
) -> Result<Undo, SfError> {
    let existing = target(state, t, id, single)?;
    let mut record = (*existing).clone();
    apply(state, t, &mut record, body, false, Some(&existing))?;
    record.modified_ms = now_ms.max(existing.modified_ms);
    record.modstamp_ms = now_ms.max(existing.modstamp_ms);
    Ok(state.store_mut(t).replace(record))
}

pub fn delete(
    state: &mut SalesforceState,
    t: &'static SObject,
    id: &str,
    now_ms: i64,
    single: bool,
) -> Result<Undo, SfError> {
    let existing = target(state, t, id, single)?;
    Ok(state
        .store_mut(t)
        .delete(&existing.id, now_ms)
        .expect("the record is live"))
}

#[cfg(test)]
mod tests {
    use super::super::schema::{ACCOUNT, CONTACT, LEAD, OPPORTUNITY};
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn code(r: Result<(String, Undo), SfError>) -> &'static str {
        r.map(|_| "OK").unwrap_or_else(|e| e.code)
    }

    #[test]
    fn validation_rules() {
        let mut s = SalesforceState::new("sk_test_v");
        let c = |s: &mut SalesforceState, v: Value| code(create(s, &CONTACT, &obj(v), 1));
        assert_eq!(
            c(&mut s, json!({"FirstName":"A"})),
            "REQUIRED_FIELD_MISSING"
        );
        let e = create(&mut s, &LEAD, &obj(json!({"FirstName":"A"})), 1).unwrap_err();
        assert_eq!(
            e.message,
            "Required fields are missing: [LastName, Company]"
        );
        assert_eq!(e.fields, Some(vec!["LastName".into(), "Company".into()]));
        let e = create(
            &mut s,
            &CONTACT,
            &obj(json!({"LastName":"A","Email":"andrea__invalid"})),
            1,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "INVALID_EMAIL_ADDRESS",
                "Email: invalid email address: andrea__invalid"
            )
        );
        assert_eq!(c(&mut s, json!({"LastName":"A","Foo":1})), "INVALID_FIELD");
        assert_eq!(c(&mut s, json!({"LastName":5})), "JSON_PARSER_ERROR");
        assert_eq!(
            c(&mut s, json!({"LastName":"A","Name":"x"})),
            "INVALID_FIELD_FOR_INSERT_UPDATE"
        );
        assert_eq!(
            c(&mut s, json!({"LastName":"A","Id":"003000000000000AAA"})),
            "INVALID_FIELD"
        );
        assert_eq!(
            c(&mut s, json!({"LastName":"x".repeat(81)})),
            "STRING_TOO_LONG"
        );
        assert_eq!(
            c(&mut s, json!({"LastName":"A","AccountId":"nope"})),
            "FIELD_INTEGRITY_EXCEPTION"
        );
        let missing_account = s.store(&ACCOUNT).next_id();
        assert_eq!(
            c(&mut s, json!({"LastName":"A","AccountId":missing_account})),
            "INVALID_CROSS_REFERENCE_KEY"
        );
        let (acct, _) = create(&mut s, &ACCOUNT, &obj(json!({"Name":"Acme"})), 1).unwrap();
        assert_eq!(
            c(
                &mut s,
                json!({"LastName":"A","AccountId":&acct[..15],"Email":"a@x.io"})
            ),
            "OK"
        );
        // Stored with the 18-character id; an email may be used once (any case).
        let all = s.store(&CONTACT).all();
        assert_eq!(
            all[0].values[CONTACT.field_index("AccountId").unwrap()],
            json!(acct)
        );
        assert_eq!(
            c(&mut s, json!({"LastName":"B","Email":"A@X.io"})),
            "DUPLICATES_DETECTED"
        );
        // Leads are checked among leads only.
        assert_eq!(
            code(create(
                &mut s,
                &LEAD,
                &obj(json!({"LastName":"B","Company":"C","Email":"a@x.io"})),
                1
            )),
            "OK"
        );
        assert_eq!(
            code(create(
                &mut s,
                &OPPORTUNITY,
                &obj(json!({"Name":"O","StageName":"Prospecting","CloseDate":"2026-02-30"})),
                1
            )),
            "JSON_PARSER_ERROR"
        );
        let (opp, _) = create(
            &mut s,
            &OPPORTUNITY,
            &obj(
                json!({"Name":"O","StageName":"Prospecting","CloseDate":"2026-02-28","Amount":100}),
            ),
            1,
        )
        .unwrap();
        assert_eq!(
            find(&s, &OPPORTUNITY, &opp).unwrap().values
                [OPPORTUNITY.field_index("Amount").unwrap()],
            json!(100.0)
        );
    }

    #[test]
    fn updates_and_deletes() {
        let mut s = SalesforceState::new("sk_test_u");
        let (id, _) = create(
            &mut s,
            &CONTACT,
            &obj(json!({"LastName":"A","Email":"a@x.io"})),
            10,
        )
        .unwrap();
        create(
            &mut s,
            &CONTACT,
            &obj(json!({"LastName":"B","Email":"b@x.io"})),
            10,
        )
        .unwrap();
        // Keeping one's own email is no duplicate; taking another's is.
        update(
            &mut s,
            &CONTACT,
            &id,
            &obj(json!({"Email":"A@x.io","Title":"CEO"})),
            20,
            true,
        )
        .unwrap();
        let e = update(
            &mut s,
            &CONTACT,
            &id,
            &obj(json!({"Email":"b@x.io"})),
            30,
            true,
        )
        .unwrap_err();
        assert_eq!(e.code, "DUPLICATES_DETECTED");
        let e = update(
            &mut s,
            &CONTACT,
            &id,
            &obj(json!({"LastName":null})),
            30,
            true,
        )
        .unwrap_err();
        assert_eq!(e.code, "REQUIRED_FIELD_MISSING");
        let r = find(&s, &CONTACT, &id).unwrap();
        assert_eq!((r.created_ms, r.modstamp_ms), (10, 20));
        assert_eq!(
            r.get(&CONTACT, CONTACT.field_index("Name").unwrap()),
            json!("A")
        );
        delete(&mut s, &CONTACT, &id, 40, true).unwrap();
        assert_eq!(
            delete(&mut s, &CONTACT, &id, 41, true).unwrap_err().code,
            "ENTITY_IS_DELETED"
        );
        assert_eq!(
            delete(&mut s, &CONTACT, &id, 41, false).unwrap_err().code,
            "ENTITY_IS_DELETED"
        );
        let unknown = s.store(&CONTACT).next_id();
        assert_eq!(
            update(&mut s, &CONTACT, &unknown, &Map::new(), 1, true)
                .unwrap_err()
                .code,
            "NOT_FOUND"
        );
        assert_eq!(
            delete(&mut s, &CONTACT, &unknown, 1, false)
                .unwrap_err()
                .code,
            "INVALID_CROSS_REFERENCE_KEY"
        );
        assert_eq!(
            delete(&mut s, &CONTACT, "xyz", 1, false).unwrap_err().code,
            "MALFORMED_ID"
        );
        // The deleted contact's email is free again.
        create(
            &mut s,
            &CONTACT,
            &obj(json!({"LastName":"C","Email":"a@x.io"})),
            50,
        )
        .unwrap();
    }
}
