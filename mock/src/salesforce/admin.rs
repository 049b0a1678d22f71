//! `/_admin/salesforce/…?account=K`: seed records, create/update/delete them
//! "from outside" (same validation as the API), read them, expire the
//! deleted-records window, and the per-account settings (daily API limit and
//! usage, the deleted endpoint's precision, open query locators).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::errors::SfError;
use super::records::{all_fields, render};
use super::schema::SObject;
use super::store::Record;
use super::{ops, schema_admin, time, SalesforceState, Settings};
use crate::http::{Reply, Req};
use crate::state::{lock, App};
use crate::stripe::errors::ApiError;
use crate::stripe::params::{self, Params};

/// Seeding more than this in one call is almost certainly a mistake.
const MAX_SEED: i64 = 10_000_000;
const ADMIN_VERSION: &str = "v60.0";

/// Stores `count` valid records of `t` without going through validation: the
/// i-th seeded record's fields come from `t.seed`, numbered on from the ids
/// handed out so far (so emails stay unique across seeds). Their
/// CreatedDate = SystemModstamp run `step_ms` apart, the last at `end_ms`
/// (step 0: all in one millisecond).
pub fn seed(sf: &mut SalesforceState, t: &SObject, count: u64, end_ms: i64, step_ms: i64) {
    let store = sf.store_mut(t);
    let defaults = ops::initial_values(t);
    // The seed's field names, looked up once; a field the admin removed is skipped.
    let slots: Vec<Option<usize>> = (t.seed)(0)
        .iter()
        .map(|(name, _)| t.field_index(name).and_then(|i| t.fields[i].slot()))
        .collect();
    for i in 0..count {
        let n = store.minted();
        let mut values = defaults.clone();
        for (slot, (_, v)) in slots.iter().zip((t.seed)(n)) {
            if let Some(slot) = slot {
                values[*slot] = v;
            }
        }
        let ms = end_ms - (count - 1 - i) as i64 * step_ms;
        store.insert(Record {
            id: store.next_id(),
            values,
            created_ms: ms,
            modified_ms: ms,
            modstamp_ms: ms,
        });
    }
}

fn record_json(t: &SObject, r: &Record) -> Value {
    serde_json::from_str(&render(t, r, &all_fields(t), ADMIN_VERSION)).expect("valid JSON")
}

pub(super) fn json_map(req: &Req) -> Result<Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("The JSON body must be an object")),
        Err(e) => Err(ApiError::invalid(format!("Invalid JSON body: {e}"))),
    }
}

fn integer(query: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    query
        .get(name)
        .map(|v| params::integer(v, name))
        .transpose()
}

fn settings_json(sf: &SalesforceState) -> Value {
    let mut v = json!(sf.settings);
    v["api_usage"] = json!(sf.api_usage);
    v
}

/// `segments` is the path after `/_admin/salesforce/`.
pub fn handle(
    app: &App,
    req: &Req,
    segments: &[&str],
    account: &str,
    query: &Params,
) -> Result<Reply, ApiError> {
    let account = app.account(account);
    let mut account = lock(&account);
    let sf = &mut account.salesforce;
    let now = time::now_ms();
    let not_found = || {
        ApiError::invalid(format!(
            "Unknown admin endpoint: {} {}",
            req.method, req.path
        ))
        .status(404)
    };
    let ok = |v: Value| Ok(Reply::json(200, &v));
    // Validation failures answer as the API would.
    let sf_err = |e: SfError| Ok(e.reply());

    match (req.method.as_str(), segments) {
        ("GET", ["settings"]) => ok(settings_json(sf)),
        ("POST", ["settings"]) => {
            let mut body = json_map(req)?;
            if let Some(usage) = body.remove("api_usage") {
                sf.api_usage = usage
                    .as_u64()
                    .ok_or_else(|| ApiError::invalid("api_usage must be a non-negative integer"))?;
            }
            let mut merged = json!(sf.settings);
            for (k, v) in body {
                merged[k] = v;
            }
            sf.settings = serde_json::from_value::<Settings>(merged)
                .map_err(|e| ApiError::invalid(format!("Invalid settings: {e}")))?;
            ok(settings_json(sf))
        }
        // As if 15 days had passed for every deletion made so far.
        ("POST", ["deleted", "expire"]) => {
            let before: usize = sf
                .types()
                .iter()
                .map(|t| sf.store(t).delete_log().len())
                .sum();
            sf.deleted_floor_ms = now;
            sf.purge_deleted(now);
            ok(json!({ "expired": before }))
        }
        (method, [type_name, rest @ ..]) => {
            let t = sf.sobject(type_name).ok_or_else(not_found)?;
            let t = &t;
            match (method, rest) {
                (_, ["fields", rest @ ..]) => schema_admin::handle(sf, t, req, rest, now),
                ("POST", ["seed"]) => {
                    if t.key_prefix.is_none() {
                        return Err(ApiError::invalid(format!(
                            "{} has no records of its own to seed",
                            t.name
                        )));
                    }
                    let count =
                        integer(query, "count")?.ok_or_else(|| ApiError::missing_param("count"))?;
                    if !(0..=MAX_SEED).contains(&count) {
                        return Err(ApiError::invalid(format!("count must be 0..{MAX_SEED}"))
                            .param("count"));
                    }
                    let step = integer(query, "step_ms")?.unwrap_or(1000);
                    if step < 0 {
                        return Err(ApiError::invalid("step_ms must be >= 0").param("step_ms"));
                    }
                    seed(sf, t, count as u64, now, step);
                    ok(json!({ "created": count }))
                }
                ("GET", []) => {
                    let records: Vec<Value> = sf
                        .store(t)
                        .all()
                        .iter()
                        .map(|r| record_json(t, r))
                        .collect();
                    ok(json!({ "records": records }))
                }
                ("POST", []) => match ops::create(sf, t, &json_map(req)?, now) {
                    Ok((id, _)) => {
                        let r = sf.store(t).get(&id).expect("just created");
                        ok(record_json(t, &r))
                    }
                    Err(e) => sf_err(e),
                },
                ("GET", ["deleted"]) => {
                    let log: Vec<Value> = sf
                        .store(t)
                        .delete_log()
                        .iter()
                        .map(
                            |(at, id)| json!({"id": id, "deletedDate": time::format_datetime(*at)}),
                        )
                        .collect();
                    ok(json!({ "deletedRecords": log }))
                }
                ("GET", [id]) => match ops::find(sf, t, id) {
                    Some(r) => ok(record_json(t, &r)),
                    None => sf_err(SfError::not_found()),
                },
                ("PATCH" | "POST", [id]) => {
                    match ops::update(sf, t, id, &json_map(req)?, now, true) {
                        Ok(_) => {
                            let r: Arc<Record> = ops::find(sf, t, id).expect("just updated");
                            ok(record_json(t, &r))
                        }
                        Err(e) => sf_err(e),
                    }
                }
                ("DELETE", [id]) => match ops::delete(sf, t, id, now, true) {
                    Ok(_) => ok(json!({ "id": id, "deleted": true })),
                    Err(e) => sf_err(e),
                },
                _ => Err(not_found()),
            }
        }
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_is_fast_unique_and_spaced() {
        let mut sf = SalesforceState::new("sk_test_s");
        let contact = sf.sobject("Contact").unwrap();
        let started = std::time::Instant::now();
        seed(&mut sf, &contact, 50_000, 10_000_000, 1);
        assert!(
            started.elapsed().as_secs_f64() < 5.0,
            "{:?}",
            started.elapsed()
        );
        seed(&mut sf, &contact, 2, 20_000_000, 0);
        let s = sf.store(&contact);
        assert_eq!(s.len(), 50_002);
        let first = s.by_modstamp(None).next().unwrap();
        assert_eq!(first.modstamp_ms, 10_000_000 - 49_999);
        let last: Vec<_> = s.by_modstamp(Some((20_000_000, true))).collect();
        assert_eq!(last.len(), 2);
        assert!(s.email_taken("contact50001@example.com", None));
        let id = last[0].id.clone();
        // Seeded records pass the API's own validation.
        let body = json!({"Title":"CTO"});
        ops::update(
            &mut sf,
            &contact,
            &id,
            body.as_object().unwrap(),
            30_000_000,
            true,
        )
        .unwrap();
    }
}
