//! Single records: `POST …/sobjects/{Type}` → 201 `{"id","success":true,"errors":[]}`,
//! `GET …/sobjects/{Type}/{id}[?fields=A,B]`, `PATCH` and `DELETE` → 204.
//! Errors are 400 (404 for a missing or deleted record) with the array body.

use serde_json::json;

use super::errors::SfError;
use super::schema::SObject;
use super::store::{Lookup, Record};
use super::{json_object, ops, sfid, SalesforceState};
use crate::http::{Reply, Req};
use crate::stripe::form;

/// `{"attributes":{"type","url"},<field>:<value>,…}` with the fields in the
/// order given.
pub fn render(t: &SObject, r: &Record, fields: &[usize], version: &str) -> String {
    let mut out = format!(
        "{{\"attributes\":{{\"type\":\"{}\",\"url\":\"/services/data/{version}/sobjects/{}/{}\"}}",
        t.name, t.name, r.id
    );
    for &i in fields {
        out.push_str(&format!(
            ",\"{}\":{}",
            t.fields[i].name,
            serde_json::to_string(&r.get(t, i, version)).expect("JSON values serialize")
        ));
    }
    out.push('}');
    out
}

/// Every field, in the type's order.
pub fn all_fields(t: &SObject) -> Vec<usize> {
    (0..t.fields.len()).collect()
}

pub fn create(
    sf: &mut SalesforceState,
    t: &SObject,
    req: &Req,
    now: i64,
) -> Result<Reply, SfError> {
    let body = json_object(req)?;
    let (id, _) = ops::create(sf, t, &body, now)?;
    Ok(Reply::json(
        201,
        &json!({"id": id, "success": true, "errors": []}),
    ))
}

pub fn retrieve(
    sf: &SalesforceState,
    t: &SObject,
    id: &str,
    req: &Req,
    version: &str,
) -> Result<Reply, SfError> {
    let fields = match form::pairs(&req.query)
        .into_iter()
        .find(|(k, _)| k == "fields")
    {
        None => all_fields(t),
        Some((_, list)) => list
            .split(',')
            .map(|name| {
                t.field_index(name.trim())
                    .ok_or_else(|| ops::no_such_column(t, name.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let id18 = sfid::normalize(id).ok_or_else(SfError::not_found)?;
    match sf.store(t).lookup(&id18) {
        Lookup::Live(r) => Ok(Reply::raw(200, render(t, &r, &fields, version))),
        _ => Err(SfError::not_found()),
    }
}

pub fn update(
    sf: &mut SalesforceState,
    t: &SObject,
    id: &str,
    req: &Req,
    now: i64,
) -> Result<Reply, SfError> {
    let body = json_object(req)?;
    ops::update(sf, t, id, &body, now, true)?;
    Ok(Reply::raw(204, ""))
}

pub fn delete(sf: &mut SalesforceState, t: &SObject, id: &str, now: i64) -> Result<Reply, SfError> {
    ops::delete(sf, t, id, now, true)?;
    Ok(Reply::raw(204, ""))
}
