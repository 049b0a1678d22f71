//! `Idempotency-Key` on POST: the first response for a key is kept (24 hours)
//! and replayed for a repeat of the same request; the same key with another
//! request is an idempotency_error.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hyper::body::Bytes;

use crate::http::{Reply, Req};
use crate::ids::fnv1a;

const KEEP_FOR: Duration = Duration::from_secs(24 * 60 * 60);

struct Record {
    fingerprint: u64,
    status: u16,
    body: Bytes,
    request_id: String,
    at: Instant,
}

#[derive(Default)]
pub struct Idempotency {
    records: HashMap<String, Record>,
}

/// What the key has seen before.
#[derive(Debug)]
pub enum Prior {
    None,
    Replay(Reply),
    Mismatch,
}

/// Method, path, query and body: what "the same request" means.
pub fn fingerprint(req: &Req) -> u64 {
    let mut data = Vec::with_capacity(req.path.len() + req.query.len() + req.body.len() + 16);
    for part in [
        req.method.as_bytes(),
        req.path.as_bytes(),
        req.query.as_bytes(),
        &req.body,
    ] {
        data.extend_from_slice(part);
        data.push(0);
    }
    fnv1a(&data)
}

impl Idempotency {
    pub fn check(&mut self, key: &str, fingerprint: u64) -> Prior {
        let Some(record) = self.records.get(key) else {
            return Prior::None;
        };
        if record.at.elapsed() > KEEP_FOR {
            self.records.remove(key);
            return Prior::None;
        }
        if record.fingerprint != fingerprint {
            return Prior::Mismatch;
        }
        Prior::Replay(
            Reply::raw(record.status, record.body.clone())
                .with_header("Idempotent-Replayed", "true")
                .with_header("Original-Request", record.request_id.clone()),
        )
    }

    pub fn remember(&mut self, key: &str, fingerprint: u64, reply: &Reply, request_id: &str) {
        self.records.insert(
            key.to_string(),
            Record {
                fingerprint,
                status: reply.status,
                body: reply.body.clone(),
                request_id: request_id.to_string(),
                at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> Req {
        Req {
            method: "POST".into(),
            path: "/v1/customers".into(),
            body: Bytes::from(body.to_string()),
            ..Req::default()
        }
    }

    #[test]
    fn replays_same_request_and_rejects_different_one() {
        let mut idem = Idempotency::default();
        let fp = fingerprint(&req("email=a%40b.co"));
        assert!(matches!(idem.check("k1", fp), Prior::None));
        let first = Reply::raw(200, "{\"id\":\"cus_1\"}");
        idem.remember("k1", fp, &first, "req_1");
        match idem.check("k1", fp) {
            Prior::Replay(r) => {
                assert_eq!((r.status, &r.body), (200, &first.body));
                assert_eq!(r.header("Idempotent-Replayed"), Some("true"));
                assert_eq!(r.header("Original-Request"), Some("req_1"));
            }
            other => panic!("expected a replay, got {other:?}"),
        }
        let other = fingerprint(&req("email=c%40d.co"));
        assert!(matches!(idem.check("k1", other), Prior::Mismatch));
        assert!(matches!(idem.check("k2", other), Prior::None));
    }

    #[test]
    fn errors_are_replayed_too() {
        let mut idem = Idempotency::default();
        idem.remember("k", 1, &Reply::raw(500, "{}"), "req_1");
        assert!(matches!(idem.check("k", 1), Prior::Replay(r) if r.status == 500));
    }
}
