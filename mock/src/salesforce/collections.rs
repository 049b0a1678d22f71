//! sObject Collections: `POST|PATCH …/composite/sobjects`
//! `{"allOrNone":bool,"records":[{"attributes":{"type":"Contact"},…}]}` and
//! `DELETE …/composite/sobjects?ids=a,b&allOrNone=true`. At most 200
//! records. The answer is 200 with one result per record, in order:
//! `{"id","success":true,"errors":[]}` or `{"success":false,"errors":[{"statusCode","message","fields"}]}`
//! (failed creates have no id). Records are applied in order; with
//! allOrNone, one failure takes every change back and the records that
//! would have succeeded say `ALL_OR_NONE_OPERATION_ROLLED_BACK`.
//!
//! A body that doesn't parse (unknown type or field, wrong JSON type) fails
//! the whole request with 400 and an error array, as Salesforce's parser does.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::errors::SfError;
use super::schema::SObject;
use super::store::Undo;
use super::{json_object, ops, sfid, SalesforceState};
use crate::http::{Reply, Req};
use crate::stripe::form;

pub const MAX_RECORDS: usize = 200;

fn too_many() -> SfError {
    SfError::new(
        400,
        "EXCEEDED_ID_LIMIT",
        "record limit reached. cannot submit more than 200 records into this call",
    )
}

enum Action {
    Create(Arc<SObject>, Map<String, Value>),
    Update(Arc<SObject>, String, Map<String, Value>),
    Delete(String),
    /// Fails without trying (e.g. an update without an id).
    Fail(Option<String>, SfError),
}

/// A collection's records with their types.
type Records = Vec<(Arc<SObject>, Map<String, Value>)>;

/// `{"allOrNone","records"}` → (allOrNone, records).
fn parse_body(sf: &SalesforceState, req: &Req) -> Result<(bool, Records), SfError> {
    let body = json_object(req)?;
    let all_or_none = match body.get("allOrNone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(SfError::json_parser(format!(
                "Cannot deserialize instance of boolean from value {other}"
            )))
        }
    };
    let records = match body.get("records") {
        Some(Value::Array(a)) => a,
        _ => {
            return Err(SfError::json_parser(
                "Cannot deserialize instance of SObject[] from missing value: records",
            ))
        }
    };
    if records.len() > MAX_RECORDS {
        return Err(too_many());
    }
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let Value::Object(r) = r else {
            return Err(SfError::json_parser(
                "Cannot deserialize instance of SObject from a value that is not an object",
            ));
        };
        let type_name = r
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str);
        let t = match type_name {
            None => {
                return Err(SfError::new(
                    400,
                    "INVALID_TYPE",
                    "Must send a concrete entity type.",
                ))
            }
            Some(name) => sf.sobject(name).ok_or_else(|| {
                SfError::new(
                    400,
                    "INVALID_TYPE",
                    format!("sObject type '{name}' is not supported."),
                )
            })?,
        };
        ops::check_shape(&t, r)?;
        out.push((t, r.clone()));
    }
    Ok((all_or_none, out))
}

/// Applies the actions in order; with allOrNone, all or nothing.
fn process(
    sf: &mut SalesforceState,
    all_or_none: bool,
    actions: Vec<Action>,
    now: i64,
    creating: bool,
) -> Vec<Value> {
    let mut outcomes: Vec<(Option<String>, Result<(), SfError>)> =
        Vec::with_capacity(actions.len());
    let mut undo: Vec<(Arc<SObject>, Undo)> = Vec::new();
    for action in actions {
        let outcome = match action {
            Action::Create(t, body) => match ops::create(sf, &t, &body, now) {
                Ok((id, u)) => {
                    undo.push((t, u));
                    (Some(id), Ok(()))
                }
                Err(e) => (None, Err(e)),
            },
            Action::Update(t, id, body) => {
                let r = ops::update(sf, &t, &id, &body, now, false).map(|u| undo.push((t, u)));
                (Some(id), r)
            }
            Action::Delete(id) => {
                let r = match sfid::normalize(&id).and_then(|n| sf.sobject_of_id(&n)) {
                    None => Err(SfError::record(
                        "MALFORMED_ID",
                        format!("malformed id {id}"),
                        &[],
                    )),
                    Some(t) => ops::delete(sf, &t, &id, now, false).map(|u| undo.push((t, u))),
                };
                (Some(id), r)
            }
            Action::Fail(id, e) => (id, Err(e)),
        };
        outcomes.push(outcome);
    }
    let rolled_back = all_or_none && outcomes.iter().any(|(_, r)| r.is_err());
    if rolled_back {
        for (t, u) in undo.into_iter().rev() {
            sf.store_mut(&t).undo(u);
        }
    }
    outcomes
        .into_iter()
        .map(|(id, result)| {
            let error = match result {
                Err(e) => Some(e),
                Ok(()) if rolled_back => Some(SfError::rolled_back()),
                Ok(()) => None,
            };
            // A create that didn't happen has no id.
            let id = if creating && error.is_some() {
                None
            } else {
                id
            };
            let mut v = json!({
                "success": error.is_none(),
                "errors": error.iter().map(SfError::result_error).collect::<Vec<_>>(),
            });
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            v
        })
        .collect()
}

pub fn create(sf: &mut SalesforceState, req: &Req, now: i64) -> Result<Reply, SfError> {
    let (all_or_none, records) = parse_body(sf, req)?;
    let actions = records
        .into_iter()
        .map(|(t, r)| Action::Create(t, r))
        .collect();
    Ok(Reply::json(
        200,
        &Value::Array(process(sf, all_or_none, actions, now, true)),
    ))
}

pub fn update(sf: &mut SalesforceState, req: &Req, now: i64) -> Result<Reply, SfError> {
    let (all_or_none, records) = parse_body(sf, req)?;
    let actions = records
        .into_iter()
        .map(|(t, r)| {
            let id = r
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("id"))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string);
            match id {
                Some(id) => Action::Update(t, id, r),
                None => Action::Fail(
                    None,
                    SfError::record(
                        "MISSING_ARGUMENT",
                        "Id not specified in an update call",
                        &[],
                    ),
                ),
            }
        })
        .collect();
    Ok(Reply::json(
        200,
        &Value::Array(process(sf, all_or_none, actions, now, false)),
    ))
}

pub fn delete(sf: &mut SalesforceState, req: &Req, now: i64) -> Result<Reply, SfError> {
    let params = form::pairs(&req.query);
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let ids: Vec<String> = param("ids")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Err(SfError::new(
            400,
            "MISSING_ARGUMENT",
            "Missing required parameter: ids",
        ));
    }
    if ids.len() > MAX_RECORDS {
        return Err(too_many());
    }
    let all_or_none = param("allOrNone").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let actions = ids.into_iter().map(Action::Delete).collect();
    Ok(Reply::json(
        200,
        &Value::Array(process(sf, all_or_none, actions, now, false)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, query: &str, body: Value) -> Req {
        Req {
            method: method.into(),
            query: query.into(),
            body: body.to_string().into(),
            ..Req::default()
        }
    }

    fn results(r: Result<Reply, SfError>) -> Vec<Value> {
        let reply = r.unwrap();
        assert_eq!(reply.status, 200);
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn contact(last: &str, email: &str) -> Value {
        json!({"attributes":{"type":"Contact"},"LastName":last,"Email":email})
    }

    #[test]
    fn all_or_none_takes_everything_back() {
        let mut sf = SalesforceState::new("sk_test_c");
        let contact_type = sf.sobject("Contact").unwrap();
        let mut records: Vec<Value> = (0..200)
            .map(|i| contact(&format!("C{i}"), &format!("c{i}@x.io")))
            .collect();
        records[57] = contact("Bad", "andrea__invalid");
        let before = sf.store(&contact_type).next_id();
        let out = results(create(
            &mut sf,
            &req(
                "POST",
                "",
                json!({"allOrNone":true,"records":records.clone()}),
            ),
            1,
        ));
        assert_eq!(out.len(), 200);
        assert_eq!(out[57]["errors"][0]["statusCode"], "INVALID_EMAIL_ADDRESS");
        assert_eq!(
            out[0],
            json!({"success":false,"errors":[SfError::rolled_back().result_error()]})
        );
        assert_eq!(
            out[199]["errors"][0]["statusCode"],
            "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        );
        assert!(sf.store(&contact_type).is_empty());
        assert_eq!(
            sf.store(&contact_type).next_id(),
            before,
            "ids are given back too"
        );

        // Without allOrNone the valid ones are applied.
        let out = results(create(
            &mut sf,
            &req("POST", "", json!({"records":records})),
            1,
        ));
        assert_eq!(sf.store(&contact_type).len(), 199);
        assert_eq!(out[0]["success"], true);
        assert!(out[0]["id"].as_str().unwrap().starts_with("003"));
        assert!(out[57].get("id").is_none());

        // Within one request, a later duplicate of an earlier record fails.
        let out = results(create(
            &mut sf,
            &req(
                "POST",
                "",
                json!({"allOrNone":false,"records":[contact("D","d@x.io"),contact("E","d@x.io")]}),
            ),
            1,
        ));
        assert_eq!(
            (
                out[0]["success"].clone(),
                out[1]["errors"][0]["statusCode"].clone()
            ),
            (json!(true), json!("DUPLICATES_DETECTED"))
        );
    }

    #[test]
    fn updates_deletes_and_limits() {
        let mut sf = SalesforceState::new("sk_test_u");
        let account = sf.sobject("Account").unwrap();
        let contact_type = sf.sobject("Contact").unwrap();
        let mk = |sf: &mut SalesforceState, name: &str| {
            ops::create(sf, &account, json!({"Name": name}).as_object().unwrap(), 1)
                .unwrap()
                .0
        };
        let (a, b) = (mk(&mut sf, "A"), mk(&mut sf, "B"));
        let body = json!({"allOrNone":true,"records":[
            {"attributes":{"type":"Account"},"id":a,"Name":"A2"},
            {"attributes":{"type":"Account"},"id":b,"Name":null}]});
        let out = results(update(&mut sf, &req("PATCH", "", body), 2));
        assert_eq!(
            out[0],
            json!({"id":a,"success":false,"errors":[SfError::rolled_back().result_error()]})
        );
        assert_eq!(out[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
        let name = account.field_index("Name").unwrap();
        assert_eq!(
            sf.store(&account)
                .get(&a)
                .unwrap()
                .get(&account, name, "v60.0"),
            "A"
        );
        assert_eq!(sf.store(&account).get(&a).unwrap().modstamp_ms, 1);
        let body = json!({"records":[{"attributes":{"type":"Account"},"Name":"no id"}]});
        let out = results(update(&mut sf, &req("PATCH", "", body), 2));
        assert_eq!(out[0]["errors"][0]["statusCode"], "MISSING_ARGUMENT");

        let out = results(delete(
            &mut sf,
            &req(
                "DELETE",
                &format!("ids={a},bogus&allOrNone=true"),
                Value::Null,
            ),
            3,
        ));
        assert_eq!(out[1]["errors"][0]["statusCode"], "MALFORMED_ID");
        assert_eq!(
            out[0]["errors"][0]["statusCode"],
            "ALL_OR_NONE_OPERATION_ROLLED_BACK"
        );
        assert_eq!(sf.store(&account).len(), 2);
        let out = results(delete(
            &mut sf,
            &req("DELETE", &format!("ids={a},{b}"), Value::Null),
            3,
        ));
        assert_eq!(
            out,
            vec![
                json!({"id":a,"success":true,"errors":[]}),
                json!({"id":b,"success":true,"errors":[]})
            ]
        );
        assert!(sf.store(&account).is_empty());

        let many: Vec<Value> = (0..201)
            .map(|i| contact(&format!("C{i}"), &format!("c{i}@x.io")))
            .collect();
        let e = create(&mut sf, &req("POST", "", json!({"records":many})), 1).unwrap_err();
        assert_eq!((e.status, e.code), (400, "EXCEEDED_ID_LIMIT"));
        let e = create(
            &mut sf,
            &req(
                "POST",
                "",
                json!({"records":[{"attributes":{"type":"Contact"},"LastName":"x","Foo":1}]}),
            ),
            1,
        )
        .unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD");
        let e = create(
            &mut sf,
            &req("POST", "", json!({"records":[{"LastName":"x"}]})),
            1,
        )
        .unwrap_err();
        assert_eq!(e.code, "INVALID_TYPE");
        assert!(sf.store(&contact_type).is_empty());
    }
}
