//! sObject Collections retrieve: `POST …/composite/sobjects/{Type}`
//! `{"ids":[…],"fields":[…]}` or `GET …/composite/sobjects/{Type}?ids=a,b&fields=X,Y`
//! → 200 with one entry per id, in the order given: the record with
//! `attributes`, Id and the fields asked for, or null when the id names no
//! live record of the type. At most 2,000 ids.

use serde_json::Value;

use super::errors::SfError;
use super::records::render;
use super::schema::{SObject, Source};
use super::{json_object, ops, sfid, SalesforceState};
use crate::http::{Reply, Req};
use crate::stripe::form;

pub const MAX_IDS: usize = 2000;

fn missing(name: &str) -> SfError {
    SfError::new(
        400,
        "MISSING_ARGUMENT",
        format!("Missing required parameter: {name}"),
    )
}

/// A list given as a JSON array of strings (POST) or comma-separated (GET).
fn list(req: &Req, name: &str) -> Result<Vec<String>, SfError> {
    let items: Vec<String> = if req.method == "POST" {
        match json_object(req)?.remove(name) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        SfError::json_parser(format!(
                            "Cannot deserialize instance of String from {v} in {name}"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            None | Some(Value::Null) => Vec::new(),
            Some(other) => {
                return Err(SfError::json_parser(format!(
                    "Cannot deserialize instance of String[] from {other}"
                )))
            }
        }
    } else {
        form::pairs(&req.query)
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    };
    let items: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Err(missing(name));
    }
    Ok(items)
}

pub fn records(
    sf: &SalesforceState,
    t: &SObject,
    req: &Req,
    version: &str,
) -> Result<Reply, SfError> {
    let ids = list(req, "ids")?;
    if ids.len() > MAX_IDS {
        return Err(SfError::new(
            400,
            "EXCEEDED_ID_LIMIT",
            format!(
                "record limit reached. cannot submit more than {MAX_IDS} records into this call"
            ),
        ));
    }
    let id_field = t.index_of(&Source::Id).expect("every type has an Id");
    let mut fields = vec![id_field];
    for name in list(req, "fields")? {
        let i = t
            .field_index(&name)
            .ok_or_else(|| ops::no_such_column(t, &name))?;
        if !fields.contains(&i) {
            fields.push(i);
        }
    }
    let store = sf.store(t);
    let entries: Vec<String> = ids
        .iter()
        .map(|id| {
            let record = sfid::normalize(id)
                .filter(|n| t.key_prefix.as_deref().is_some_and(|p| n.starts_with(p)))
                .and_then(|n| store.get(&n));
            match record {
                Some(r) => render(t, &r, &fields, version),
                None => "null".to_string(),
            }
        })
        .collect();
    Ok(Reply::raw(200, format!("[{}]", entries.join(","))))
}
