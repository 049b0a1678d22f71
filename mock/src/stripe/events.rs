//! Events: one per create/update/delete, listed newest first by (created,
//! sequence) with the same pagination as objects, and kept 30 days as
//! Stripe keeps them: older ones are forgotten when events are next read,
//! so listing, retrieving and paging from them fail as for unknown ids.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::list::{self, ListParams};
use super::params::{self, Params};
use super::store::{Filter, Object};
use super::{RequestInfo, StripeState, API_VERSION};

const MAX_TYPES: usize = 20;
/// Stripe's retention: events older than 30 days are gone.
pub const RETENTION_SECS: i64 = 30 * 86_400;

/// The fields all events share (kept out of each stored event).
pub fn defaults(livemode: bool) -> Object {
    let v = json!({
        "object": "event",
        "api_version": API_VERSION,
        "livemode": livemode,
        "pending_webhooks": 0,
    });
    v.as_object().expect("an object").clone()
}

/// What the events endpoint allows an account, as Stripe imitations and
/// restricted keys do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Full,
    /// A Stripe imitation that does not know the `types[]` filter (400).
    NoTypesFilter,
    /// A restricted key without the Events permission (403).
    Forbidden,
}

impl Access {
    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "full" => Some(Access::Full),
            "no_types_filter" => Some(Access::NoTypesFilter),
            "forbidden" => Some(Access::Forbidden),
            _ => None,
        }
    }
}

/// Refuses an events request the account's access does not allow.
pub fn check_access(state: &StripeState, query: Option<&Params>) -> Result<(), ApiError> {
    match state.events_access {
        Access::Full => Ok(()),
        Access::NoTypesFilter if query.is_some_and(|q| q.contains_key("types")) => {
            Err(ApiError::unknown_param("types"))
        }
        Access::NoTypesFilter => Ok(()),
        Access::Forbidden => Err(ApiError::invalid(format!(
            "The provided key does not have the required permissions for this endpoint on account '{}'. Having the 'rak_event_read' permission would allow this request to continue.",
            state.account_id
        ))
        .status(403)),
    }
}

/// Records `type` for `object` (its state after the change; for deletes, as it
/// was plus `"deleted": true`).
pub fn record(
    state: &mut StripeState,
    kind: &str,
    object: &Object,
    previous_attributes: Option<Object>,
    request: &RequestInfo,
    created: i64,
) {
    if state.quiet {
        return;
    }
    let mut data = json!({ "object": object });
    if let Some(previous) = previous_attributes {
        data["previous_attributes"] = Value::Object(previous);
    }
    let event = json!({
        "id": state.events.next_id(),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": state.livemode,
        "pending_webhooks": 0,
        "request": { "id": request.id, "idempotency_key": request.idempotency_key },
        "type": kind,
    });
    state.events.insert(event.as_object().expect("an object"));
}

pub fn retrieve(state: &mut StripeState, id: &str, now: i64) -> Result<Object, ApiError> {
    forget_expired(state, now);
    state
        .events
        .get(id)
        .ok_or_else(|| ApiError::no_such("event", id, "id"))
}

/// `GET /v1/events`: `type` (with `*` wildcards) or `types[]` (≤20), plus
/// the common list params.
pub fn list(state: &mut StripeState, q: &Params, now: i64) -> Result<Value, ApiError> {
    forget_expired(state, now);
    let list_params = ListParams::parse(q, &["type", "types", "delivery_success"])?;
    let filter = filter(q)?;
    let (data, has_more) = list_params.run(&state.events, "event", &filter)?;
    Ok(list::envelope("/v1/events", data, has_more))
}

fn filter(q: &Params) -> Result<Filter, ApiError> {
    let pattern = match q.get("type") {
        Some(v) => params::string(v, "type", 5000)?,
        None => None,
    };
    let types = match q.get("types") {
        None => None,
        Some(v) => {
            let items = params::list(v, "types")?;
            if items.len() > MAX_TYPES {
                return Err(ApiError::invalid(format!(
                    "Invalid array: types must have at most {MAX_TYPES} elements"
                ))
                .param("types"));
            }
            let mut names = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                if let Some(name) = params::string(item, &format!("types[{i}]"), 5000)? {
                    names.push(name);
                }
            }
            Some(names)
        }
    };
    // All our events are delivered (no webhooks): none is pending or failed.
    let undelivered_only = match q.get("delivery_success") {
        Some(v) if v == "false" => true,
        Some(v) if v == "true" || v == "" => false,
        Some(v) => {
            return Err(ApiError::invalid(format!("Invalid boolean: {v}")).param("delivery_success"))
        }
        None => false,
    };
    if pattern.is_some() && types.is_some() {
        return Err(
            ApiError::invalid("You may pass either `type` or `types`, but not both.")
                .param("types"),
        );
    }

    let mut filter = Filter::default();
    if undelivered_only {
        filter.predicate = Some(Box::new(|_| false));
    } else if let Some(pattern) = pattern {
        if !pattern.contains('*') {
            filter.needle = Some(format!("\"type\":{}", Value::from(pattern.as_str())));
        }
        filter.predicate = Some(Box::new(move |e| {
            e["type"]
                .as_str()
                .is_some_and(|t| wildcard_match(&pattern, t))
        }));
    } else if let Some(names) = types {
        filter.predicate = Some(Box::new(move |e| {
            e["type"]
                .as_str()
                .is_some_and(|t| names.iter().any(|n| n == t))
        }));
    }
    Ok(filter)
}

/// `*` matches any run of characters (e.g. `customer.*`).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Drops events created before `before`; returns how many.
pub fn expire_before(state: &mut StripeState, before: i64) -> usize {
    state.events.forget_created_before(before)
}

/// Drops every event there is, as if 30 days had passed; returns how many.
pub fn expire_all(state: &mut StripeState) -> usize {
    state.events.forget_created_before(i64::MAX)
}

/// Applies the retention as of `now`.
pub fn forget_expired(state: &mut StripeState, now: i64) {
    expire_before(state, now - RETENTION_SECS);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state_with_events(spec: &[(&str, i64)]) -> StripeState {
        let mut s = StripeState::new("sk_test_events");
        for (i, (kind, created)) in spec.iter().enumerate() {
            let object = json!({"id": format!("cus_{i}"), "object": "customer"});
            record(
                &mut s,
                kind,
                object.as_object().unwrap(),
                None,
                &RequestInfo::default(),
                *created,
            );
        }
        s
    }

    /// Long after every test event's `created`, but within 30 days of them.
    const NOW: i64 = 100_000;

    fn page(s: &mut StripeState, q: Value) -> (Vec<String>, bool) {
        let v = list(s, q.as_object().unwrap(), NOW).unwrap();
        let ids = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"]["object"]["id"].as_str().unwrap().to_string())
            .collect();
        (ids, v["has_more"].as_bool().unwrap())
    }

    fn event_id(s: &StripeState, object_index: usize) -> String {
        s.events
            .all()
            .iter()
            .find(|e| e["data"]["object"]["id"] == format!("cus_{object_index}"))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn newest_first_with_same_second_ties_in_creation_order() {
        let mut s = state_with_events(&[
            ("customer.created", 10),
            ("customer.created", 10),
            ("customer.updated", 11),
            ("customer.deleted", 10),
        ]);
        // created: 0→10, 1→10, 2→11, 3→10: order newest first is 2, 3, 1, 0.
        assert_eq!(
            page(&mut s, json!({})).0,
            ["cus_2", "cus_3", "cus_1", "cus_0"]
        );
    }

    #[test]
    fn ending_before_walks_forward_in_time_page_by_page() {
        let spec: Vec<(&str, i64)> = (0..25)
            .map(|i| ("customer.created", 1000 + i / 3))
            .collect();
        let mut s = state_with_events(&spec);
        // Start from the oldest event, then keep asking for the page just newer.
        let oldest = event_id(&s, 0);
        let mut cursor = oldest;
        let mut seen = vec!["cus_0".to_string()];
        loop {
            let (ids, has_more) = page(&mut s, json!({"ending_before": cursor, "limit": "4"}));
            assert!(ids.len() <= 4);
            // Newest first within the page; walking forward means reading it backwards.
            for id in ids.iter().rev() {
                seen.push(id.clone());
            }
            if !has_more {
                break;
            }
            let newest_in_page = ids[0].trim_start_matches("cus_").parse::<usize>().unwrap();
            cursor = event_id(&s, newest_in_page);
        }
        let expected: Vec<String> = (0..25).map(|i| format!("cus_{i}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn starting_after_walks_back_and_has_more_is_exact() {
        let spec: Vec<(&str, i64)> = (0..6).map(|i| ("customer.created", 50 + i)).collect();
        let mut s = state_with_events(&spec);
        let (p1, more1) = page(&mut s, json!({"limit": "3"}));
        assert_eq!(
            (p1.clone(), more1),
            (vec!["cus_5".into(), "cus_4".into(), "cus_3".into()], true)
        );
        let (e2, e3) = (event_id(&s, 2), event_id(&s, 3));
        let (p2, more2) = page(&mut s, json!({"limit": "3", "starting_after": e3}));
        assert_eq!(
            (p2, more2),
            (vec!["cus_2".into(), "cus_1".into(), "cus_0".into()], false)
        );
        let (p3, more3) = page(&mut s, json!({"limit": "3", "ending_before": e2}));
        assert_eq!(
            (p3, more3),
            (vec!["cus_5".into(), "cus_4".into(), "cus_3".into()], false)
        );
        let (p4, more4) = page(&mut s, json!({"limit": "2", "ending_before": e2}));
        assert_eq!((p4, more4), (vec!["cus_4".into(), "cus_3".into()], true));
    }

    #[test]
    fn created_and_type_filters() {
        let mut s = state_with_events(&[
            ("customer.created", 1),
            ("customer.updated", 2),
            ("invoice.paid", 3),
            ("customer.deleted", 4),
        ]);
        assert_eq!(
            page(&mut s, json!({"created": {"gt": "1", "lt": "4"}})).0,
            ["cus_2", "cus_1"]
        );
        assert_eq!(
            page(&mut s, json!({"type": "customer.*"})).0,
            ["cus_3", "cus_1", "cus_0"]
        );
        assert_eq!(page(&mut s, json!({"type": "invoice.paid"})).0, ["cus_2"]);
        assert_eq!(
            page(
                &mut s,
                json!({"types": ["customer.created", "customer.deleted"]})
            )
            .0,
            ["cus_3", "cus_0"]
        );
        assert_eq!(
            page(&mut s, json!({"types": {"0": "customer.updated"}})).0,
            ["cus_1"]
        );
        let too_many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(list(&mut s, json!({"types": too_many}).as_object().unwrap(), NOW).is_err());
        assert!(list(
            &mut s,
            json!({"type": "a", "types": ["b"]}).as_object().unwrap(),
            NOW
        )
        .is_err());
    }

    #[test]
    fn unknown_cursor_and_expired_events() {
        let mut s = state_with_events(&[("customer.created", 1), ("customer.created", 100)]);
        let old = event_id(&s, 0);
        let e = list(
            &mut s,
            json!({"starting_after": "evt_nope"}).as_object().unwrap(),
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code, e.param.as_deref()),
            (400, Some("resource_missing"), Some("starting_after"))
        );
        assert_eq!(e.message, "No such event: 'evt_nope'");
        assert_eq!(expire_before(&mut s, 50), 1);
        let q = json!({ "ending_before": old });
        let e = list(&mut s, q.as_object().unwrap(), NOW).unwrap_err();
        assert_eq!(
            (e.status, e.code, e.param.as_deref()),
            (400, Some("resource_missing"), Some("ending_before"))
        );
        assert_eq!(e.message, format!("No such event: '{old}'"));
        assert_eq!(retrieve(&mut s, &old, NOW).unwrap_err().status, 404);
        assert_eq!(page(&mut s, json!({})).0, ["cus_1"]);
        assert_eq!(expire_all(&mut s), 1);
        assert_eq!(page(&mut s, json!({})).0, Vec::<String>::new());
    }

    #[test]
    fn events_older_than_30_days_are_gone() {
        let day = 86_400;
        let now = 100 * day;
        let mut s = state_with_events(&[
            ("customer.created", now - 31 * day),
            ("customer.updated", now - 30 * day),
            ("customer.updated", now - day),
        ]);
        let (oldest, second) = (event_id(&s, 0), event_id(&s, 1));
        assert_eq!(
            retrieve(&mut s, &second, now).unwrap()["id"],
            second.as_str()
        );
        let v = list(&mut s, json!({}).as_object().unwrap(), now).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(retrieve(&mut s, &oldest, now).unwrap_err().status, 404);
        let q = json!({ "starting_after": oldest });
        let e = list(&mut s, q.as_object().unwrap(), now).unwrap_err();
        assert_eq!((e.status, e.code), (400, Some("resource_missing")));
        // A second later the next one has turned 30 days old too.
        let v = list(&mut s, json!({}).as_object().unwrap(), now + 1).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        assert!(s.events.order_key_of(&second).is_none());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("customer.*", "customer.updated"));
        assert!(wildcard_match("*.updated", "customer.updated"));
        assert!(wildcard_match("*", "x"));
        assert!(!wildcard_match("customer.*", "invoice.paid"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*a", "a"));
    }
}
