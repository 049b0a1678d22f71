//! The Stripe subset: customers, products, prices, subscriptions and invoices
//! (the types in `RESOURCES`), `/v1/events`, `/v1/account`, auth, idempotency. State lives
//! per account (API key); an OAuth access token stands for the account it
//! was issued for.

pub mod account;
pub mod admin;
pub mod auth;
pub mod customers;
pub mod errors;
pub mod events;
pub mod expand;
pub mod form;
pub mod idempotency;
pub mod invoices;
pub mod list;
pub mod objects;
pub mod params;
pub mod prices;
pub mod products;
pub mod store;
pub mod subscriptions;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::http::{Reply, Req};
use crate::ids;
use crate::state::{lock, App};
use errors::ApiError;
use idempotency::{Idempotency, Prior};
use params::Params;
use store::{Filter, Object, Store};

/// The version events are rendered in and responses report.
pub const API_VERSION: &str = "2020-08-27";

/// One object type: what it looks like new, how params change it, how its list
/// filters. Adding a type is one such value and one line in `RESOURCES`; the
/// endpoints, store, events and admin routes are generic.
pub struct Resource {
    /// `object` field, e.g. "customer".
    pub object: &'static str,
    /// URL segment, e.g. "customers".
    pub plural: &'static str,
    /// Id prefix, e.g. "cus".
    pub prefix: &'static str,
    /// Event types are `<event_prefix>.created` etc.: the object name, except
    /// for subscriptions ("customer.subscription").
    pub event_prefix: &'static str,
    /// A new object with every field at its default.
    pub template: fn(id: &str, created: i64, livemode: bool) -> Object,
    /// Applies create params to a new object (to a copy: an error discards
    /// it). The state is there for params naming other objects (a price's
    /// product must exist).
    pub create: fn(&StripeState, &mut Object, &Params) -> Result<(), ApiError>,
    /// Applies update params to a copy of the object.
    pub update: fn(&StripeState, &mut Object, &Params) -> Result<(), ApiError>,
    /// What else a create causes once the object is stored and its event
    /// recorded (a subscription bills its first period).
    pub after_create: Option<fn(&mut StripeState, &Object, &RequestInfo)>,
    /// `DELETE /v1/<plural>/{id}` (`objects::remove` for most types); None
    /// where Stripe has no such route (prices are archived, never deleted).
    pub delete: Option<Delete>,
    /// The list endpoint's own filter params besides limit/cursors/created.
    pub list_params: &'static [&'static str],
    pub list_filter: fn(&Params) -> Result<Filter, ApiError>,
    /// Fast bulk creation for the admin interface (count, with events, now).
    pub seed: Option<fn(&mut StripeState, u64, bool, i64)>,
}

/// Handles `DELETE /v1/<plural>/{id}`, answering the reply's body.
pub type Delete = fn(&mut StripeState, &Resource, &str, &RequestInfo) -> Result<Value, ApiError>;

pub static RESOURCES: &[&Resource] = &[
    &customers::CUSTOMERS,
    &products::PRODUCTS,
    &prices::PRICES,
    &subscriptions::SUBSCRIPTIONS,
    &invoices::INVOICES,
];

pub fn resource(plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().copied().find(|r| r.plural == plural)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What an event records as its cause (`request` in the event).
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// One account's Stripe data.
pub struct StripeState {
    pub livemode: bool,
    /// What `GET /v1/account` names the account.
    pub account_id: String,
    /// When the account was first used (unix seconds).
    pub created: i64,
    stores: HashMap<&'static str, Store>,
    pub events: Store,
    pub idempotency: Idempotency,
    /// What `GET /v1/events` answers this account (admin-set).
    pub events_access: events::Access,
    /// Set while an admin change is made without an event (`events=false`):
    /// what a feed can miss and only a full comparison finds.
    pub quiet: bool,
}

impl StripeState {
    pub fn new(key: &str) -> StripeState {
        let livemode = key.starts_with("sk_live_");
        let stores = RESOURCES
            .iter()
            .map(|r| {
                let defaults = (r.template)("", 0, livemode);
                let store = Store::new(r.prefix, ids::salt(key, r.prefix), defaults);
                (r.plural, store)
            })
            .collect();
        StripeState {
            livemode,
            account_id: account::id(key),
            created: now(),
            stores,
            events: Store::new("evt", ids::salt(key, "evt"), events::defaults(livemode)),
            idempotency: Idempotency::default(),
            events_access: events::Access::Full,
            quiet: false,
        }
    }

    pub fn store(&self, r: &Resource) -> &Store {
        &self.stores[r.plural]
    }

    pub fn store_mut(&mut self, r: &Resource) -> &mut Store {
        self.stores.get_mut(r.plural).expect("a store per resource")
    }
}

/// Answers one authenticated-or-not API request.
pub fn handle(app: &App, req: &Req, request_id: &str) -> Reply {
    let key = match auth::authenticate_with_tokens(app, &req.headers) {
        Ok(key) => key,
        Err(e) => return e.reply(None),
    };
    let account = app.account(&key);
    let mut account = lock(&account);
    if account.revoked {
        // Masks what was presented: the key, or the access token standing for it.
        let presented = auth::presented_key(&req.headers).unwrap_or(key);
        return ApiError::invalid_api_key(&auth::mask_key(&presented)).reply(None);
    }
    let state = &mut account.stripe;
    let idempotency_key = match req.method.as_str() {
        "POST" => req.header("Idempotency-Key").filter(|k| !k.is_empty()),
        _ => None,
    };
    let mut reply = match idempotency_key {
        None => respond(state, req, request_id, None),
        Some(ik) if ik.chars().count() > 255 => ApiError::invalid(
            "Invalid Idempotency-Key header: it must be at most 255 characters long.",
        )
        .reply(Some((request_id, state.livemode))),
        Some(ik) => {
            let fingerprint = idempotency::fingerprint(req);
            match state.idempotency.check(ik, fingerprint) {
                Prior::Replay(reply) => reply,
                Prior::Mismatch => {
                    ApiError::idempotency_mismatch(ik).reply(Some((request_id, state.livemode)))
                }
                Prior::None => {
                    let reply = respond(state, req, request_id, Some(ik));
                    state
                        .idempotency
                        .remember(ik, fingerprint, &reply, request_id);
                    reply
                }
            }
        }
    };
    if let Some(ik) = idempotency_key {
        reply.set_header("Idempotency-Key", ik);
    }
    reply.set_header(
        "Stripe-Version",
        req.header("Stripe-Version").unwrap_or(API_VERSION),
    );
    reply
}

fn respond(
    state: &mut StripeState,
    req: &Req,
    request_id: &str,
    idempotency_key: Option<&str>,
) -> Reply {
    let request = RequestInfo {
        id: Some(request_id.to_string()),
        idempotency_key: idempotency_key.map(str::to_string),
    };
    route(state, req, &request).unwrap_or_else(|e| e.reply(Some((request_id, state.livemode))))
}

fn route(state: &mut StripeState, req: &Req, request: &RequestInfo) -> Result<Reply, ApiError> {
    let unrecognized = || ApiError::unrecognized_url(&req.method, &req.path);
    let Some(rest) = req.path.strip_prefix("/v1/") else {
        return Err(unrecognized());
    };
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| form::percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = || form::decode(&req.query);
    // POST params may come in the query string too; the body wins.
    let body = || {
        form::decode(&format!(
            "{}&{}",
            req.query,
            String::from_utf8_lossy(&req.body)
        ))
    };
    let ok = |v: Value| Ok(Reply::json(200, &v));

    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["account"]) => ok(account::object(state)),
        ("GET", ["events"]) => {
            let query = query()?;
            events::check_access(state, Some(&query))?;
            ok(events::list(state, &query, now())?)
        }
        ("GET", ["events", id]) if !id.is_empty() => {
            events::check_access(state, None)?;
            ok(Value::Object(events::retrieve(state, id, now())?))
        }
        (method, [plural, rest @ ..]) => {
            let r = resource(plural).ok_or_else(unrecognized)?;
            let (mut reply, params) = match (method, rest) {
                ("GET", []) => {
                    let query = query()?;
                    if !query.contains_key("expand") {
                        return Ok(Reply::raw(200, objects::list_text(state, r, &query)?));
                    }
                    (objects::list(state, r, &query)?, query)
                }
                ("POST", []) => {
                    let body = body()?;
                    let object = objects::create(state, r, &body, now(), request)?;
                    (Value::Object(object), body)
                }
                ("GET", [id]) if !id.is_empty() => {
                    (Value::Object(objects::retrieve(state, r, id)?), query()?)
                }
                ("POST", [id]) if !id.is_empty() => {
                    let body = body()?;
                    let object = objects::update(state, r, id, &body, request)?;
                    (Value::Object(object), body)
                }
                ("DELETE", [id]) if !id.is_empty() => {
                    let delete = r.delete.ok_or_else(unrecognized)?;
                    (delete(state, r, id, request)?, query()?)
                }
                _ => return Err(unrecognized()),
            };
            expand::apply(state, &mut reply, &params)?;
            ok(reply)
        }
        _ => Err(unrecognized()),
    }
}

/// The route for request counts: ids replaced by `{id}`.
pub fn route_name(method: &str, path: &str) -> String {
    let known = |plural: &str| plural == "events" || resource(plural).is_some();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v1", plural, id] if known(plural) && !id.is_empty() => {
            format!("{method} /v1/{plural}/{{id}}")
        }
        _ => format!("{method} {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names() {
        assert_eq!(route_name("GET", "/v1/customers"), "GET /v1/customers");
        assert_eq!(
            route_name("POST", "/v1/customers/cus_1"),
            "POST /v1/customers/{id}"
        );
        assert_eq!(route_name("GET", "/v1/events/evt_1"), "GET /v1/events/{id}");
        assert_eq!(route_name("GET", "/v1/foo/x"), "GET /v1/foo/x");
    }
}
