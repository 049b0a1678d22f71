//! `/_admin/stripe/…`: seed objects, create/update/delete them "from outside"
//! (as another API user would: same validation, same events, or with
//! `events=false` none), read the store, and set what the events endpoint
//! allows the account.

use serde_json::{json, Value};

use super::errors::ApiError;
use super::params::{self, Params};
use super::{events, form, now, objects, resource, RequestInfo};
use crate::http::{Reply, Req};
use crate::state::{lock, App};

/// Seeding more than this in one call is almost certainly a mistake.
const MAX_SEED: u64 = 10_000_000;

/// `segments` is the path after `/_admin/stripe/`; `query` the admin query params.
pub fn handle(
    app: &App,
    req: &Req,
    segments: &[&str],
    account: &str,
    query: &Params,
) -> Result<Reply, ApiError> {
    let account = app.account(account);
    let mut account = lock(&account);
    let state = &mut account.stripe;
    let request = RequestInfo {
        id: Some(app.request_ids.next()),
        idempotency_key: None,
    };
    let not_found = || {
        ApiError::invalid(format!(
            "Unknown admin endpoint: {} {}",
            req.method, req.path
        ))
        .status(404)
    };
    let ok = |v: Value| Ok(Reply::json(200, &v));

    match (req.method.as_str(), segments) {
        ("GET", ["events"]) => {
            events::forget_expired(state, now());
            ok(json!({ "data": state.events.all() }))
        }
        // Without `before`: every event there is now, as 30 days later.
        ("POST", ["events", "expire"]) => {
            let expired = match query.get("before") {
                Some(v) => events::expire_before(state, params::integer(v, "before")?),
                None => events::expire_all(state),
            };
            ok(json!({ "expired": expired }))
        }
        // `mode`: full, no_types_filter (400 on `types[]`) or forbidden (403).
        ("POST", ["events", "access"]) => {
            let mode = query.get("mode").and_then(Value::as_str).unwrap_or("");
            state.events_access = events::Access::parse(mode).ok_or_else(|| {
                ApiError::invalid("mode must be full, no_types_filter or forbidden").param("mode")
            })?;
            ok(json!({ "events_access": mode }))
        }
        (method, [plural, rest @ ..]) => {
            let r = resource(plural).ok_or_else(not_found)?;
            // `events=false` on a change: made without an event.
            let quiet = matches!(query.get("events").and_then(Value::as_str), Some("false" | "0"));
            match (method, rest) {
                ("POST", ["seed"]) => {
                    let seed = r.seed.ok_or_else(not_found)?;
                    let count = required_integer(query, "count")?;
                    if !(0..=MAX_SEED as i64).contains(&count) {
                        return Err(ApiError::invalid(format!("count must be 0..{MAX_SEED}"))
                            .param("count"));
                    }
                    let with_events = match query.get("events").and_then(Value::as_str) {
                        None | Some("false") | Some("0") | Some("") => false,
                        Some("true") | Some("1") => true,
                        Some(other) => {
                            return Err(ApiError::invalid(format!("Invalid boolean: {other}"))
                                .param("events"))
                        }
                    };
                    seed(state, count as u64, with_events, now());
                    ok(json!({ "created": count }))
                }
                ("GET", []) => ok(json!({ "data": objects::all_by_id(state, r) })),
                ("POST", []) => {
                    let mut body = json_body(req)?;
                    // Admin only: backdate the object.
                    let created = match body.remove("created") {
                        None | Some(Value::Null) => now(),
                        Some(v) => v.as_i64().ok_or_else(|| {
                            ApiError::invalid("created must be an integer (unix seconds)")
                                .param("created")
                        })?,
                    };
                    state.quiet = quiet;
                    let object = objects::create(state, r, &body, created, &request);
                    state.quiet = false;
                    ok(Value::Object(object?))
                }
                ("GET", [id]) => ok(Value::Object(objects::retrieve(state, r, id)?)),
                ("POST", [id]) => {
                    let body = json_body(req)?;
                    state.quiet = quiet;
                    let object = objects::update(state, r, id, &body, &request);
                    state.quiet = false;
                    ok(Value::Object(object?))
                }
                ("DELETE", [id]) => {
                    let delete = r.delete.ok_or_else(not_found)?;
                    state.quiet = quiet;
                    let deleted = delete(state, r, id, &request);
                    state.quiet = false;
                    ok(deleted?)
                }
                _ => Err(not_found()),
            }
        }
        _ => Err(not_found()),
    }
}

/// The JSON body as form-shaped params (null unsets); empty body = `{}`.
fn json_body(req: &Req) -> Result<Params, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Params::new());
    }
    let value: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON body: {e}")))?;
    match form::from_json(&value) {
        Value::Object(mut params) => {
            // Keep `created` numeric for the admin-only backdating above.
            if let Some(created) = value.get("created") {
                params.insert("created".into(), created.clone());
            }
            Ok(params)
        }
        _ => Err(ApiError::invalid("The JSON body must be an object")),
    }
}

fn required_integer(query: &Params, name: &str) -> Result<i64, ApiError> {
    match query.get(name) {
        Some(v) => params::integer(v, name),
        None => Err(ApiError::missing_param(name)),
    }
}
