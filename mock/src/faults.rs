//! Injected faults: what to do to the next N (or a fraction of) matching API
//! requests instead of, before, or (`applied`) after handling them. Admin
//! requests are never faulted; faults are tried in the order they were added
//! and the first one that fires wins.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::stripe::auth::mask_key;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Answer with `status`/`body`/`headers` without touching state (unless
    /// `applied`).
    Status,
    /// Wait `latency_ms`, then handle normally.
    Latency,
    /// Never answer; hold the connection until the client closes it.
    Hang,
    /// Close the connection with a TCP RST, no response.
    Reset,
    /// Answer 200 with a truncated JSON body.
    Malformed,
}

/// The body of `POST /_admin/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub fraction: Option<f64>,
    pub kind: FaultKind,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Handle the request for real first (state changes, events, idempotency
    /// record), then replace the reply with the fault: "the write happened but
    /// the answer was lost".
    #[serde(default)]
    pub applied: bool,
}

/// What a fired fault does to one request.
#[derive(Debug, Clone)]
pub struct Injected {
    pub kind: FaultKind,
    pub status: u16,
    pub body: Option<Value>,
    pub headers: BTreeMap<String, String>,
    pub latency_ms: u64,
    /// Run the provider's handler before the fault replaces its reply.
    pub applied: bool,
}

impl Injected {
    /// The given body, or a Stripe-shaped error that fits the status.
    pub fn body_for(&self, key: Option<&str>) -> Value {
        self.body
            .clone()
            .unwrap_or_else(|| default_body(self.status, key))
    }
}

#[derive(Debug, Clone)]
struct Fault {
    id: u64,
    spec: FaultSpec,
    /// Requests still to hit; None for a fraction fault (until cleared).
    remaining: Option<u64>,
}

#[derive(Debug)]
pub struct Faults {
    next_id: u64,
    faults: Vec<Fault>,
    rng: u64,
}

impl Default for Faults {
    fn default() -> Faults {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Faults {
            next_id: 1,
            faults: Vec::new(),
            rng: seed | 1,
        }
    }
}

impl Faults {
    pub fn add(&mut self, spec: FaultSpec) -> Result<u64, String> {
        if spec.count.is_some() && spec.fraction.is_some() {
            return Err("give either count or fraction, not both".into());
        }
        if let Some(f) = spec.fraction {
            if !(f > 0.0 && f <= 1.0) {
                return Err("fraction must be in (0, 1]".into());
            }
        }
        if spec.count == Some(0) {
            return Err("count must be at least 1".into());
        }
        if let Some(s) = spec.status {
            if !(100..=599).contains(&s) {
                return Err("status must be an HTTP status (100-599)".into());
            }
        }
        if spec.kind == FaultKind::Latency && spec.latency_ms.is_none() {
            return Err("kind latency needs latency_ms".into());
        }
        let id = self.next_id;
        self.next_id += 1;
        let remaining = match spec.fraction {
            Some(_) => None,
            None => Some(spec.count.unwrap_or(1)),
        };
        self.faults.push(Fault {
            id,
            spec,
            remaining,
        });
        Ok(id)
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    pub fn clear_account(&mut self, key: &str) {
        self.faults
            .retain(|f| f.spec.account.as_deref() != Some(key));
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.faults.len();
        self.faults.retain(|f| f.id != id);
        self.faults.len() != before
    }

    /// The faults still active, as JSON (without the accounts' keys in clear).
    pub fn list(&self) -> Value {
        let faults: Vec<Value> = self
            .faults
            .iter()
            .map(|f| {
                let mut v = serde_json::to_value(&f.spec).unwrap_or(Value::Null);
                v["id"] = json!(f.id);
                v["remaining"] = json!(f.remaining);
                v["account"] = json!(f.spec.account.as_deref().map(mask_key));
                v
            })
            .collect();
        json!({ "faults": faults })
    }

    /// The first fault that matches this request and fires, used up by one.
    pub fn take_match(&mut self, key: Option<&str>, method: &str, path: &str) -> Option<Injected> {
        let mut fired = None;
        for (i, fault) in self.faults.iter_mut().enumerate() {
            let s = &fault.spec;
            let matches = s.account.as_deref().is_none_or(|a| Some(a) == key)
                && s.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && s.path_prefix.as_deref().is_none_or(|p| path.starts_with(p));
            if !matches {
                continue;
            }
            if let Some(fraction) = s.fraction {
                if next_unit(&mut self.rng) >= fraction {
                    continue;
                }
            }
            fired = Some(i);
            break;
        }
        let i = fired?;
        let fault = &mut self.faults[i];
        let injected = Injected {
            kind: fault.spec.kind,
            status: fault.spec.status.unwrap_or(500),
            body: fault.spec.body.clone(),
            headers: fault.spec.headers.clone(),
            latency_ms: fault.spec.latency_ms.unwrap_or(0),
            applied: fault.spec.applied,
        };
        if let Some(n) = &mut fault.remaining {
            *n -= 1;
            if *n == 0 {
                self.faults.remove(i);
            }
        }
        Some(injected)
    }
}

/// xorshift64*: a uniform number in [0, 1).
fn next_unit(state: &mut u64) -> f64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

/// The error Stripe would send with this status.
pub fn default_body(status: u16, key: Option<&str>) -> Value {
    let (kind, code, message): (&str, Option<&str>, String) = match status {
        400 => ("invalid_request_error", None, "Invalid request.".into()),
        401 => (
            "invalid_request_error",
            None,
            format!("Invalid API Key provided: {}", mask_key(key.unwrap_or(""))),
        ),
        402 => ("card_error", Some("card_declined"), "Your card was declined.".into()),
        403 => (
            "invalid_request_error",
            None,
            "The provided key does not have access to this resource.".into(),
        ),
        404 => ("invalid_request_error", Some("resource_missing"), "No such object.".into()),
        409 => (
            "idempotency_error",
            None,
            "There is currently another in-progress request using this idempotent key (that probably means you submitted twice the same request). Please try again later.".into(),
        ),
        429 => (
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.".into(),
        ),
        s if s >= 500 => (
            "api_error",
            None,
            "An unknown error occurred. Please try again later.".into(),
        ),
        _ => ("invalid_request_error", None, format!("Request failed with status {status}.")),
    };
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if status == 402 {
        error["decline_code"] = json!("generic_decline");
    }
    json!({ "error": error })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: FaultKind) -> FaultSpec {
        serde_json::from_value(json!({ "kind": kind })).unwrap()
    }

    #[test]
    fn count_faults_hit_the_next_n_matching_requests_in_order() {
        let mut faults = Faults::default();
        let mut s = spec(FaultKind::Status);
        s.count = Some(2);
        s.status = Some(503);
        s.path_prefix = Some("/v1/customers".into());
        faults.add(s).unwrap();
        faults.add(spec(FaultKind::Reset)).unwrap();
        assert_eq!(
            faults
                .take_match(None, "GET", "/v1/customers")
                .unwrap()
                .status,
            503
        );
        // Not matching the first fault's prefix: the second one fires.
        assert_eq!(
            faults.take_match(None, "GET", "/v1/events").unwrap().kind,
            FaultKind::Reset
        );
        assert_eq!(
            faults
                .take_match(None, "GET", "/v1/customers")
                .unwrap()
                .status,
            503
        );
        assert!(faults.take_match(None, "GET", "/v1/customers").is_none());
    }

    #[test]
    fn account_and_method_filters() {
        let mut faults = Faults::default();
        let mut s = spec(FaultKind::Malformed);
        s.account = Some("sk_test_a".into());
        s.method = Some("post".into());
        faults.add(s).unwrap();
        assert!(faults
            .take_match(Some("sk_test_b"), "POST", "/v1/x")
            .is_none());
        assert!(faults
            .take_match(Some("sk_test_a"), "GET", "/v1/x")
            .is_none());
        assert!(faults
            .take_match(Some("sk_test_a"), "POST", "/v1/x")
            .is_some());
    }

    #[test]
    fn fraction_faults_fire_about_that_often_and_stay() {
        let mut faults = Faults::default();
        let mut s = spec(FaultKind::Status);
        s.fraction = Some(0.25);
        faults.add(s).unwrap();
        let hits = (0..4000)
            .filter(|_| faults.take_match(None, "GET", "/v1/customers").is_some())
            .count();
        assert!((700..1300).contains(&hits), "hits: {hits}");
    }

    #[test]
    fn applied_defaults_to_false_and_is_carried() {
        let mut faults = Faults::default();
        faults.add(spec(FaultKind::Reset)).unwrap();
        assert!(!faults.take_match(None, "GET", "/v1/x").unwrap().applied);
        let s: FaultSpec =
            serde_json::from_value(json!({ "kind": "reset", "applied": true })).unwrap();
        faults.add(s).unwrap();
        assert_eq!(faults.list()["faults"][0]["applied"], json!(true));
        assert!(faults.take_match(None, "GET", "/v1/x").unwrap().applied);
    }

    #[test]
    fn rejects_nonsense() {
        let mut faults = Faults::default();
        assert!(faults.add(spec(FaultKind::Latency)).is_err());
        let mut s = spec(FaultKind::Status);
        s.fraction = Some(1.5);
        assert!(faults.add(s).is_err());
    }

    #[test]
    fn default_bodies_are_stripe_shaped() {
        assert_eq!(default_body(429, None)["error"]["code"], "rate_limit");
        assert_eq!(default_body(503, None)["error"]["type"], "api_error");
        let body = default_body(401, Some("sk_test_abcdefgh1234"));
        assert_eq!(
            body["error"]["message"],
            "Invalid API Key provided: sk_test_****1234"
        );
    }
}
