//! The endpoints every object type has — list, retrieve, create, update,
//! delete — written once over `Resource`, each change recorded as an event.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::list::{self, ListParams};
use super::params::Params;
use super::store::Object;
use super::{events, now, RequestInfo, Resource, StripeState};

pub fn list(state: &StripeState, r: &Resource, q: &Params) -> Result<Value, ApiError> {
    let list_params = ListParams::parse(q, r.list_params)?;
    let filter = (r.list_filter)(q)?;
    let (data, has_more) = list_params.run(state.store(r), r.object, &filter)?;
    Ok(list::envelope(&format!("/v1/{}", r.plural), data, has_more))
}

/// `list` as the JSON text of its reply, written from the stored objects'
/// text (a list without `expand`: every page of a sync).
pub fn list_text(state: &StripeState, r: &Resource, q: &Params) -> Result<String, ApiError> {
    let list_params = ListParams::parse(q, r.list_params)?;
    let filter = (r.list_filter)(q)?;
    let store = state.store(r);
    let window = list_params.window(store, r.object)?;
    let (data, has_more) = store.page_text(window, list_params.limit, &filter);
    Ok(list::envelope_text(
        &format!("/v1/{}", r.plural),
        &data,
        has_more,
    ))
}

pub fn retrieve(state: &StripeState, r: &Resource, id: &str) -> Result<Object, ApiError> {
    state
        .store(r)
        .get(id)
        .ok_or_else(|| ApiError::no_such(r.object, id, "id"))
}

/// Creates an object with the given `created` time (the API passes now).
pub fn create(
    state: &mut StripeState,
    r: &Resource,
    params: &Params,
    created: i64,
    request: &RequestInfo,
) -> Result<Object, ApiError> {
    let mut object = (r.template)(&state.store(r).next_id(), created, state.livemode);
    (r.create)(state, &mut object, params)?;
    let inserted = state.store_mut(r).insert(&object);
    debug_assert!(inserted, "generated ids are unique");
    events::record(
        state,
        &format!("{}.created", r.event_prefix),
        &object,
        None,
        request,
        now(),
    );
    if let Some(after_create) = r.after_create {
        after_create(state, &object, request);
    }
    Ok(object)
}

/// Applies params; records an event only if something changed.
pub fn update(
    state: &mut StripeState,
    r: &Resource,
    id: &str,
    params: &Params,
    request: &RequestInfo,
) -> Result<Object, ApiError> {
    let old = retrieve(state, r, id)?;
    let mut new = old.clone();
    (r.update)(state, &mut new, params)?;
    if new == old {
        return Ok(new);
    }
    // Types with an `updated` stamp (products) carry the time of the change.
    if new.contains_key("updated") {
        new.insert("updated".into(), json!(now()));
    }
    state.store_mut(r).replace(&new);
    let previous = previous_attributes(&old, &new);
    events::record(
        state,
        &format!("{}.updated", r.event_prefix),
        &new,
        Some(previous),
        request,
        now(),
    );
    Ok(new)
}

/// The usual `Resource::delete`: answers `{"id","object","deleted":true}`;
/// the object vanishes from lists and retrieve.
pub fn remove(
    state: &mut StripeState,
    r: &Resource,
    id: &str,
    request: &RequestInfo,
) -> Result<Value, ApiError> {
    let mut object = state
        .store_mut(r)
        .remove(id)
        .ok_or_else(|| ApiError::no_such(r.object, id, "id"))?;
    object.insert("deleted".into(), Value::Bool(true));
    events::record(
        state,
        &format!("{}.deleted", r.event_prefix),
        &object,
        None,
        request,
        now(),
    );
    Ok(json!({ "id": id, "object": r.object, "deleted": true }))
}

/// Every live object, sorted by id (admin view).
pub fn all_by_id(state: &StripeState, r: &Resource) -> Vec<Object> {
    let mut all = state.store(r).all();
    all.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    all
}

/// The old values of the top-level fields that changed.
pub fn previous_attributes(old: &Object, new: &Object) -> Object {
    let mut previous = Object::new();
    for (key, value) in new {
        let before = old.get(key).unwrap_or(&Value::Null);
        if before != value {
            previous.insert(key.clone(), before.clone());
        }
    }
    previous
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::customers::CUSTOMERS;
    use serde_json::json;

    fn p(v: Value) -> Params {
        v.as_object().unwrap().clone()
    }

    fn req() -> RequestInfo {
        RequestInfo {
            id: Some("req_test".into()),
            idempotency_key: None,
        }
    }

    fn event_types(state: &StripeState) -> Vec<String> {
        state
            .events
            .all()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn create_update_delete_record_events() {
        let mut s = StripeState::new("sk_test_objects");
        let c = create(
            &mut s,
            &CUSTOMERS,
            &p(json!({"email":"a@b.co"})),
            100,
            &req(),
        )
        .unwrap();
        let id = c["id"].as_str().unwrap().to_string();
        assert_eq!(c["created"], 100);

        let u = update(
            &mut s,
            &CUSTOMERS,
            &id,
            &p(json!({"name":"Ann","email":""})),
            &req(),
        )
        .unwrap();
        assert_eq!(
            (u["name"].clone(), u["email"].clone()),
            (json!("Ann"), Value::Null)
        );
        // Nothing changes: no event.
        update(&mut s, &CUSTOMERS, &id, &p(json!({"name":"Ann"})), &req()).unwrap();

        let d = remove(&mut s, &CUSTOMERS, &id, &req()).unwrap();
        assert_eq!(d, json!({"id": id, "object":"customer", "deleted": true}));
        assert_eq!(retrieve(&s, &CUSTOMERS, &id).unwrap_err().status, 404);
        assert_eq!(
            remove(&mut s, &CUSTOMERS, &id, &req()).unwrap_err().status,
            404
        );

        assert_eq!(
            event_types(&s),
            ["customer.created", "customer.updated", "customer.deleted"]
        );
        let events = s.events.all();
        assert_eq!(
            events[1]["data"]["previous_attributes"],
            json!({"email":"a@b.co","name":null})
        );
        assert_eq!(
            events[1]["request"],
            json!({"id":"req_test","idempotency_key":null})
        );
        assert_eq!(events[2]["data"]["object"]["deleted"], true);
        assert_eq!(events[2]["data"]["object"]["name"], "Ann");
        assert!(events[0]["data"].get("previous_attributes").is_none());
    }

    #[test]
    fn invalid_params_change_nothing() {
        let mut s = StripeState::new("sk_test_objects");
        let e = create(&mut s, &CUSTOMERS, &p(json!({"email":"nope"})), 1, &req()).unwrap_err();
        assert_eq!(e.code, Some("email_invalid"));
        assert!(s.store(&CUSTOMERS).is_empty());
        assert!(s.events.is_empty());
        let c = create(&mut s, &CUSTOMERS, &p(json!({})), 1, &req()).unwrap();
        let id = c["id"].as_str().unwrap();
        assert!(update(
            &mut s,
            &CUSTOMERS,
            id,
            &p(json!({"name":"x","balance":"1.5"})),
            &req()
        )
        .is_err());
        assert_eq!(retrieve(&s, &CUSTOMERS, id).unwrap(), c);
    }
}
