//! Counts and a bounded log of non-admin requests, per account (API key).
//! Keys are kept in memory for filtering but never written out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::HeaderMap;
use serde_json::{json, Map, Value};

use crate::faults::FaultKind;

/// Request headers a test may want to assert (what the client sent, not
/// its credentials): kept per entry, shown by `recent`.
const RECORDED_HEADERS: [&str; 4] = [
    "accept",
    "x-github-api-version",
    "user-agent",
    "if-none-match",
];

/// The log keeps the most recent entries only; counts are never dropped.
const MAX_ENTRIES: usize = 200_000;

pub fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// The recorded headers of a request, in `RECORDED_HEADERS` order.
pub fn recorded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    RECORDED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub at_ms: f64,
    pub account: Option<String>,
    pub method: String,
    pub path: String,
    pub query: String,
    /// e.g. `POST /v1/customers/{id}`
    pub route: String,
    /// None when a fault answered nothing (hang, reset).
    pub status: Option<u16>,
    pub idempotency_key: Option<String>,
    pub request_id: String,
    /// Those of `RECORDED_HEADERS` the request carried, lowercase names.
    pub headers: Vec<(String, String)>,
    pub fault: Option<FaultKind>,
    pub replayed: bool,
}

#[derive(Default)]
pub struct RequestLog {
    entries: VecDeque<Entry>,
    /// (account, route) → count
    counts: HashMap<(Option<String>, String), u64>,
}

impl RequestLog {
    pub fn record(&mut self, entry: Entry) {
        *self
            .counts
            .entry((entry.account.clone(), entry.route.clone()))
            .or_insert(0) += 1;
        if self.entries.len() == MAX_ENTRIES {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// `{"total":N,"by_route":{"GET /v1/customers":n,…}}`, for one account or all.
    pub fn summary(&self, account: Option<&str>) -> Value {
        let mut by_route: BTreeMap<&str, u64> = BTreeMap::new();
        let mut total = 0;
        for ((acct, route), n) in &self.counts {
            if account.is_none() || acct.as_deref() == account {
                *by_route.entry(route).or_insert(0) += n;
                total += n;
            }
        }
        json!({ "total": total, "by_route": by_route })
    }

    /// `{"requests":[…]}`, oldest first.
    pub fn log(&self, account: Option<&str>) -> Value {
        let requests: Vec<Value> = self
            .entries
            .iter()
            .filter(|e| account.is_none() || e.account.as_deref() == account)
            .map(|e| {
                json!({
                    "at_ms": e.at_ms,
                    "method": e.method,
                    "path": e.path,
                    "query": if e.query.is_empty() { Value::Null } else { Value::from(e.query.clone()) },
                    "route": e.route,
                    "status": e.status,
                    "idempotency_key": e.idempotency_key,
                    "request_id": e.request_id,
                    "fault": e.fault,
                    "replayed": e.replayed,
                })
            })
            .collect();
        json!({ "requests": requests })
    }

    /// `[{"method","path","query","status","headers":{…}}]`: the last `limit`
    /// requests (of one account or all), oldest first.
    pub fn recent(&self, account: Option<&str>, limit: usize) -> Value {
        let mut recent: Vec<Value> = self
            .entries
            .iter()
            .rev()
            .filter(|e| account.is_none() || e.account.as_deref() == account)
            .take(limit)
            .map(|e| {
                let headers: Map<String, Value> = e
                    .headers
                    .iter()
                    .map(|(n, v)| (n.clone(), Value::from(v.clone())))
                    .collect();
                json!({
                    "method": e.method,
                    "path": e.path,
                    "query": if e.query.is_empty() { Value::Null } else { Value::from(e.query.clone()) },
                    "status": e.status,
                    "headers": headers,
                })
            })
            .collect();
        recent.reverse();
        Value::Array(recent)
    }

    pub fn clear(&mut self, account: Option<&str>) {
        match account {
            None => {
                self.entries.clear();
                self.counts.clear();
            }
            Some(key) => {
                self.entries.retain(|e| e.account.as_deref() != Some(key));
                self.counts
                    .retain(|(acct, _), _| acct.as_deref() != Some(key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(account: &str, route: &str) -> Entry {
        Entry {
            at_ms: 1.0,
            account: Some(account.to_string()),
            method: "GET".into(),
            path: "/v1/customers".into(),
            query: String::new(),
            route: route.into(),
            status: Some(200),
            idempotency_key: None,
            request_id: "req_1".into(),
            headers: vec![("accept".into(), "application/json".into())],
            fault: None,
            replayed: false,
        }
    }

    #[test]
    fn counts_per_account_and_route() {
        let mut log = RequestLog::default();
        log.record(entry("sk_test_a", "GET /v1/customers"));
        log.record(entry("sk_test_a", "GET /v1/customers"));
        log.record(entry("sk_test_b", "POST /v1/customers"));
        assert_eq!(
            log.summary(Some("sk_test_a")),
            json!({"total":2,"by_route":{"GET /v1/customers":2}})
        );
        assert_eq!(log.summary(None)["total"], 3);
        let recent = log.recent(Some("sk_test_a"), 1);
        assert_eq!(
            recent,
            json!([{"method":"GET","path":"/v1/customers","query":null,"status":200,"headers":{"accept":"application/json"}}])
        );
        log.clear(Some("sk_test_a"));
        assert_eq!(log.summary(None)["total"], 1);
        assert_eq!(log.log(None)["requests"].as_array().unwrap().len(), 1);
    }
}
