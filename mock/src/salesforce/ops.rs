//! Creating, updating and deleting records, with Salesforce's validation.
//! Shared by the single-record endpoints, sObject Collections and the admin
//! interface. Each change returns an `Undo` (see store.rs).
//!
//! Two kinds of failure: a body that doesn't fit the type (unknown field,
//! wrong JSON type) fails the whole request, as Salesforce's JSON parser
//! does; the rest (`check_shape` passed) are errors about one record.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::errors::SfError;
use super::schema::{FieldType, SObject};
use super::store::{Lookup, Record, Undo};
use super::{sfid, typed_values, SalesforceState};

pub fn no_such_column(t: &SObject, name: &str) -> SfError {
    SfError::new(
        400,
        "INVALID_FIELD",
        format!("No such column '{name}' on sobject of type {}", t.name),
    )
}

/// Every key is a field of `t` (or `attributes`) and every value parses as
/// its field's type.
pub fn check_shape(t: &SObject, body: &Map<String, Value>) -> Result<(), SfError> {
    for (key, v) in body {
        if key == "attributes" {
            continue;
        }
        let i = t.field_index(key).ok_or_else(|| no_such_column(t, key))?;
        typed_values::parse(&t.fields[i], v)?;
    }
    Ok(())
}

fn not_writable(name: &str) -> SfError {
    SfError::record(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        format!("Unable to create/update fields: {name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
        &[name],
    )
}

/// A reference's value: the 18-character id of a live record of its type.
fn reference(
    state: &SalesforceState,
    label: &str,
    name: &str,
    target: &str,
    s: &str,
) -> Result<Value, SfError> {
    let target = state.sobject(target);
    let id = sfid::normalize(s)
        .filter(|id| {
            target
                .as_ref()
                .and_then(|t| t.key_prefix.as_deref())
                .is_some_and(|p| id.starts_with(p))
        })
        .ok_or_else(|| {
            SfError::record(
                "FIELD_INTEGRITY_EXCEPTION",
                format!("{label}: id value of incorrect type: {s}"),
                &[name],
            )
        })?;
    let target = target.expect("the id matched its prefix");
    if !matches!(state.store(&target).lookup(&id), Lookup::Live(_)) {
        return Err(SfError::record(
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
            &[],
        ));
    }
    Ok(Value::String(id))
}

/// Applies `body` to `record` (a copy) and checks the result: field by
/// field, then required fields, then the duplicate rule.
fn apply(
    state: &SalesforceState,
    t: &SObject,
    record: &mut Record,
    body: &Map<String, Value>,
    creating: bool,
    existing: Option<&Record>,
) -> Result<(), SfError> {
    check_shape(t, body)?;
    record
        .values
        .resize(t.slots().max(record.values.len()), Value::Null);
    for (key, v) in body {
        if key == "attributes" {
            continue;
        }
        let field = &t.fields[t.field_index(key).expect("check_shape")];
        if field.ftype == FieldType::Id {
            if creating {
                return Err(SfError::record(
                    "INVALID_FIELD",
                    "cannot specify Id in an insert call",
                    &[],
                ));
            }
            continue; // the update's target, given again
        }
        let allowed = if creating {
            field.createable
        } else {
            field.updateable
        };
        let slot = match field.slot() {
            Some(slot) if allowed => slot,
            _ => return Err(not_writable(&field.name)),
        };
        let mut value = typed_values::parse(field, v)?;
        if let Value::String(s) = &value {
            typed_values::check(field, &value)?;
            if let Some(target) = &field.reference_to {
                value = reference(state, &field.label, &field.name, target, s)?;
            }
        }
        record.values[slot] = value;
    }
    let missing: Vec<&str> = t
        .fields
        .iter()
        .filter(|f| !f.nillable && f.slot().is_some_and(|slot| record.values[slot].is_null()))
        .map(|f| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(SfError::record(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            &missing,
        ));
    }
    if let Some(email) = record.email(t.unique_email_slot()) {
        if state.store(t).email_taken(&email, existing) {
            return Err(SfError::record(
                "DUPLICATES_DETECTED",
                "Use one of these records?",
                &[],
            ));
        }
    }
    Ok(())
}

/// A new record's values: the fields' defaults, null elsewhere.
pub fn initial_values(t: &SObject) -> Vec<Value> {
    let mut values = vec![Value::Null; t.slots()];
    for f in &t.fields {
        if let (Some(slot), Some(v)) = (f.slot(), &f.default) {
            values[slot] = v.clone();
        }
    }
    values
}

fn not_supported(t: &SObject, operation: &str) -> SfError {
    SfError::record(
        "INVALID_TYPE_FOR_OPERATION",
        format!("entity type {} does not support {operation}", t.name),
        &[],
    )
}

/// A new record of `t` from `body`; returns its id.
pub fn create(
    state: &mut SalesforceState,
    t: &SObject,
    body: &Map<String, Value>,
    now_ms: i64,
) -> Result<(String, Undo), SfError> {
    if !t.writable {
        return Err(not_supported(t, "insert"));
    }
    let mut record = Record {
        id: state.store(t).next_id(),
        values: initial_values(t),
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
    t: &SObject,
    id: &str,
    single: bool,
) -> Result<Arc<Record>, SfError> {
    let normalized =
        sfid::normalize(id).filter(|n| t.key_prefix.as_deref().is_some_and(|p| n.starts_with(p)));
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
pub fn find(state: &SalesforceState, t: &SObject, id: &str) -> Option<Arc<Record>> {
    let id18 = sfid::normalize(id)?;
    state.store(t).get(&id18)
}

/// Changes the given fields; SystemModstamp and LastModifiedDate move even
/// when nothing else does.
pub fn update(
    state: &mut SalesforceState,
    t: &SObject,
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
    t: &SObject,
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
    /// A type of the default org (types compare by name, so any org's will do).
    fn ty(name: &str) -> Arc<SObject> {
        SalesforceState::new("sk_test_types").sobject(name).unwrap()
    }
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
        let c = |s: &mut SalesforceState, v: Value| code(create(s, &ty("Contact"), &obj(v), 1));
        assert_eq!(
            c(&mut s, json!({"FirstName":"A"})),
            "REQUIRED_FIELD_MISSING"
        );
        let e = create(&mut s, &ty("Lead"), &obj(json!({"FirstName":"A"})), 1).unwrap_err();
        assert_eq!(
            e.message,
            "Required fields are missing: [LastName, Company]"
        );
        assert_eq!(e.fields, Some(vec!["LastName".into(), "Company".into()]));
        let e = create(
            &mut s,
            &ty("Contact"),
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
        let missing_account = s.store(&ty("Account")).next_id();
        assert_eq!(
            c(&mut s, json!({"LastName":"A","AccountId":missing_account})),
            "INVALID_CROSS_REFERENCE_KEY"
        );
        let (acct, _) = create(&mut s, &ty("Account"), &obj(json!({"Name":"Acme"})), 1).unwrap();
        assert_eq!(
            c(
                &mut s,
                json!({"LastName":"A","AccountId":&acct[..15],"Email":"a@x.io"})
            ),
            "OK"
        );
        // Stored with the 18-character id; an email may be used once (any case).
        let all = s.store(&ty("Contact")).all();
        let contact = ty("Contact");
        let account_id = contact.field_index("AccountId").unwrap();
        assert_eq!(all[0].get(&contact, account_id, "v60.0"), json!(acct));
        assert_eq!(
            c(&mut s, json!({"LastName":"B","Email":"A@X.io"})),
            "DUPLICATES_DETECTED"
        );
        // Leads are checked among leads only.
        assert_eq!(
            code(create(
                &mut s,
                &ty("Lead"),
                &obj(json!({"LastName":"B","Company":"C","Email":"a@x.io"})),
                1
            )),
            "OK"
        );
        assert_eq!(
            code(create(
                &mut s,
                &ty("Opportunity"),
                &obj(json!({"Name":"O","StageName":"Prospecting","CloseDate":"2026-02-30"})),
                1
            )),
            "JSON_PARSER_ERROR"
        );
        let (opp, _) = create(
            &mut s,
            &ty("Opportunity"),
            &obj(
                json!({"Name":"O","StageName":"Prospecting","CloseDate":"2026-02-28","Amount":100}),
            ),
            1,
        )
        .unwrap();
        let opportunity = ty("Opportunity");
        let amount = opportunity.field_index("Amount").unwrap();
        assert_eq!(
            find(&s, &opportunity, &opp)
                .unwrap()
                .get(&opportunity, amount, "v60.0"),
            json!(100.0)
        );
    }

    #[test]
    fn updates_and_deletes() {
        let mut s = SalesforceState::new("sk_test_u");
        let (id, _) = create(
            &mut s,
            &ty("Contact"),
            &obj(json!({"LastName":"A","Email":"a@x.io"})),
            10,
        )
        .unwrap();
        create(
            &mut s,
            &ty("Contact"),
            &obj(json!({"LastName":"B","Email":"b@x.io"})),
            10,
        )
        .unwrap();
        // Keeping one's own email is no duplicate; taking another's is.
        update(
            &mut s,
            &ty("Contact"),
            &id,
            &obj(json!({"Email":"A@x.io","Title":"CEO"})),
            20,
            true,
        )
        .unwrap();
        let e = update(
            &mut s,
            &ty("Contact"),
            &id,
            &obj(json!({"Email":"b@x.io"})),
            30,
            true,
        )
        .unwrap_err();
        assert_eq!(e.code, "DUPLICATES_DETECTED");
        let e = update(
            &mut s,
            &ty("Contact"),
            &id,
            &obj(json!({"LastName":null})),
            30,
            true,
        )
        .unwrap_err();
        assert_eq!(e.code, "REQUIRED_FIELD_MISSING");
        let r = find(&s, &ty("Contact"), &id).unwrap();
        assert_eq!((r.created_ms, r.modstamp_ms), (10, 20));
        assert_eq!(
            r.get(
                &ty("Contact"),
                ty("Contact").field_index("Name").unwrap(),
                "v60.0"
            ),
            json!("A")
        );
        delete(&mut s, &ty("Contact"), &id, 40, true).unwrap();
        assert_eq!(
            delete(&mut s, &ty("Contact"), &id, 41, true)
                .unwrap_err()
                .code,
            "ENTITY_IS_DELETED"
        );
        assert_eq!(
            delete(&mut s, &ty("Contact"), &id, 41, false)
                .unwrap_err()
                .code,
            "ENTITY_IS_DELETED"
        );
        let unknown = s.store(&ty("Contact")).next_id();
        assert_eq!(
            update(&mut s, &ty("Contact"), &unknown, &Map::new(), 1, true)
                .unwrap_err()
                .code,
            "NOT_FOUND"
        );
        assert_eq!(
            delete(&mut s, &ty("Contact"), &unknown, 1, false)
                .unwrap_err()
                .code,
            "INVALID_CROSS_REFERENCE_KEY"
        );
        assert_eq!(
            delete(&mut s, &ty("Contact"), "xyz", 1, false)
                .unwrap_err()
                .code,
            "MALFORMED_ID"
        );
        // The deleted contact's email is free again.
        create(
            &mut s,
            &ty("Contact"),
            &obj(json!({"LastName":"C","Email":"a@x.io"})),
            50,
        )
        .unwrap();
    }
}
