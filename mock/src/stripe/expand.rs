//! `expand[]`: a field holding the id of an object of one of the imitated
//! types is replaced by that object, as Stripe expands it. A path walks
//! nested fields with dots and a list's items through `data`
//! (`latest_invoice`, `items.data.price.product`, `data.customer` on a list
//! endpoint), expanding the ids on its way (`latest_invoice.customer`). A
//! deleted object expands to `{"id","object","deleted":true}`.
//! A field that is not there, or holds no such id, cannot be expanded: 400.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::params::{self, Params};
use super::{StripeState, RESOURCES};

/// Expands the paths the request's `expand` param names in `reply`.
pub fn apply(state: &StripeState, reply: &mut Value, params: &Params) -> Result<(), ApiError> {
    let Some(expand) = params.get("expand") else {
        return Ok(());
    };
    for path in params::list(expand, "expand")? {
        let Some(path) = path.as_str() else {
            return Err(ApiError::invalid("Invalid array").param("expand"));
        };
        let segments: Vec<&str> = path.split('.').collect();
        expand_at(state, reply, &segments, path)?;
    }
    Ok(())
}

fn cannot_expand(path: &str) -> ApiError {
    ApiError::invalid(format!("This property cannot be expanded ({path})."))
}

fn expand_at(state: &StripeState, node: &mut Value, path: &[&str], full: &str) -> Result<(), ApiError> {
    let Some((field, rest)) = path.split_first() else {
        return Ok(());
    };
    match node {
        // The items of a list (reached through `data`), each in turn.
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| expand_at(state, item, path, full)),
        Value::Object(map) => {
            let child = map.get_mut(*field).ok_or_else(|| cannot_expand(full))?;
            if let Value::String(id) = child {
                // `latest_invoice.customer` expands latest_invoice on the way.
                *child = object_of(state, id).ok_or_else(|| cannot_expand(full))?;
            }
            match (child, rest.is_empty()) {
                (child, false) => expand_at(state, child, rest, full),
                // Nothing to expand, or expanded (now, or named twice).
                (Value::Null | Value::Object(_), true) => Ok(()),
                _ => Err(cannot_expand(full)),
            }
        }
        // A field on the way that is not set (a null customer).
        Value::Null => Ok(()),
        _ => Err(cannot_expand(full)),
    }
}

/// The object an id names, by its prefix: live, or as Stripe shows a
/// deleted one.
fn object_of(state: &StripeState, id: &str) -> Option<Value> {
    let resource = RESOURCES
        .iter()
        .find(|r| id.strip_prefix(r.prefix).is_some_and(|rest| rest.starts_with('_')))?;
    let store = state.store(resource);
    match store.get(id) {
        Some(object) => Some(Value::Object(object)),
        None => store
            .order_key_of(id)
            .map(|_| json!({"id": id, "object": resource.object, "deleted": true})),
    }
}
