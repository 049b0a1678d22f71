//! One request from arrival to answer: admin requests go straight to the admin
//! interface; API requests (the Stripe, Salesforce and GitHub routes and the OAuth
//! token endpoints) get
//! the configured latency, then either an injected fault or the real handler,
//! and are counted in the request log.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::faults::{FaultKind, Injected};
use crate::reqlog::{self, unix_ms, Entry};
use crate::state::App;
use crate::{admin, github, oauth, salesforce, stripe, target_limit};

/// A request with its body read.
#[derive(Debug, Clone, Default)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// The raw query string without the `?`.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response before it becomes a hyper response. JSON unless told otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Reply {
        let body = json_text(value).into_bytes();
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::from(body),
        }
    }

    pub fn raw(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.set_header(name, value);
        self
    }

    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(self.body));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(n, v);
            }
        }
        resp
    }
}

/// `value` as replies write it (`StripeOrder`).
pub fn json_text(value: &Value) -> String {
    serde_json::to_string(&StripeOrder(value)).expect("JSON values serialize")
}

/// The keys every object of a reply starts with, in this order.
pub const FIRST_KEYS: [&str; 2] = ["id", "object"];

/// Serializes with `id` and `object` first in every object, then the rest in
/// key order, the way Stripe's responses read.
struct StripeOrder<'a>(&'a Value);

impl Serialize for StripeOrder<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for key in FIRST_KEYS {
                    if let Some(v) = map.get(key) {
                        out.serialize_entry(key, &StripeOrder(v))?;
                    }
                }
                for (key, v) in map
                    .iter()
                    .filter(|(k, _)| !FIRST_KEYS.contains(&k.as_str()))
                {
                    out.serialize_entry(key, &StripeOrder(v))?;
                }
                out.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(StripeOrder)),
            other => other.serialize(serializer),
        }
    }
}

/// How the connection should end this request.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    Hang,
    Reset,
}

pub async fn dispatch(app: &App, req: Request<Incoming>) -> Outcome {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        // The client went away mid-body; nobody is listening for an answer.
        Err(_) => return Outcome::Reset,
    };
    if let Some(length) = parts.headers.get(target_limit::TOO_LONG_HEADER) {
        return Outcome::Reply(target_too_long(
            parts.uri.path(),
            length.to_str().unwrap_or(""),
        ));
    }
    let req = Req {
        method: parts.method.as_str().to_ascii_uppercase(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    };
    if req.path == "/_admin" || req.path.starts_with("/_admin/") {
        return Outcome::Reply(admin::handle(app, &req));
    }
    api(app, &req).await
}

/// 431 for a request-target over `target_limit::MAX_TARGET` bytes, as
/// Salesforce's front end answers it; neither counted nor faulted, since it
/// never reaches the API.
fn target_too_long(path: &str, length: &str) -> Reply {
    const MESSAGE: &str = "Request Header Fields Too Large";
    let body = if path.starts_with("/services/") {
        serde_json::json!([{"errorCode": "REQUEST_HEADER_FIELDS_TOO_LARGE", "message": MESSAGE}])
    } else {
        serde_json::json!({"error": {"type": "invalid_request_error", "message": format!("{MESSAGE}: the request-target is {length} bytes, at most {} are accepted", target_limit::MAX_TARGET)}})
    };
    Reply::json(431, &body)
}

/// A non-admin request: latency, faults, the provider, the request log.
pub async fn api(app: &App, req: &Req) -> Outcome {
    let at_ms = unix_ms();
    let request_id = app.request_ids.next();
    let key = stripe::auth::presented_key(&req.headers);
    let account = request_account(app, req, key.as_deref());

    let latency_ms = app.config().latency_ms;
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    let fault = app
        .faults()
        .take_match(account.as_deref(), &req.method, &req.path);
    let mut outcome = match &fault {
        None => Outcome::Reply(handle(app, req, &request_id)),
        Some(injected) => inject(app, req, &request_id, key.as_deref(), injected).await,
    };
    if let Outcome::Reply(reply) = &mut outcome {
        reply.set_header("Request-Id", request_id.clone());
    }

    let reply = match &outcome {
        Outcome::Reply(r) => Some(r),
        _ => None,
    };
    let entry = Entry {
        at_ms,
        account,
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        route: route_name(&req.method, &req.path),
        status: reply.map(|r| r.status),
        idempotency_key: req.header("Idempotency-Key").map(str::to_string),
        request_id,
        headers: reqlog::recorded_headers(&req.headers),
        fault: fault.map(|f| f.kind),
        replayed: reply.is_some_and(|r| r.header("Idempotent-Replayed").is_some()),
    };
    if app.log_requests {
        print_entry(&entry);
    }
    app.requests().record(entry);
    outcome
}

/// The account (API key) a request is counted and faulted under: the
/// presented key; for an `oat_` access token (or GitHub's `ghu_`) the account
/// it was issued for (expired or not; None if unknown); for a token endpoint
/// the account of the refresh token's grant (None if unknown).
fn request_account(app: &App, req: &Req, key: Option<&str>) -> Option<String> {
    if req.path == oauth::TOKEN_PATH
        || req.path == salesforce::TOKEN_PATH
        || req.path == github::TOKEN_PATH
    {
        return oauth::account_of_token_request(app, req);
    }
    if github::is_github_path(&req.path) {
        return github::auth::account_of_request(app, &req.headers);
    }
    if salesforce::is_salesforce_path(&req.path) {
        let token = salesforce::access_token(&req.headers)?;
        return app.oauth().account_of_access_token(&token);
    }
    match key {
        Some(token) if token.starts_with(oauth::ACCESS_TOKEN_PREFIX) => {
            app.oauth().account_of_access_token(token)
        }
        other => other.map(str::to_string),
    }
}

fn route_name(method: &str, path: &str) -> String {
    if salesforce::is_salesforce_path(path) {
        salesforce::route_name(method, path)
    } else if github::is_github_path(path) {
        github::route_name(method, path)
    } else {
        stripe::route_name(method, path)
    }
}

/// The real answer: an OAuth token endpoint, the Salesforce, GitHub or Stripe API.
fn handle(app: &App, req: &Req, request_id: &str) -> Reply {
    if req.path == oauth::TOKEN_PATH {
        oauth::token_endpoint(app, req)
    } else if salesforce::is_salesforce_path(&req.path) {
        salesforce::handle(app, req)
    } else if github::is_github_path(&req.path) {
        github::handle(app, req, request_id)
    } else {
        stripe::handle(app, req, request_id)
    }
}

/// `SEQUIN_MOCK_LOG=1`: one line on stderr, never the key.
fn print_entry(e: &Entry) {
    let status = e.status.map_or("-".to_string(), |s| s.to_string());
    let query = if e.query.is_empty() {
        String::new()
    } else {
        format!("?{}", e.query)
    };
    let fault = e.fault.map_or(String::new(), |f| format!(" fault={f:?}"));
    eprintln!(
        "{} {}{query} -> {status} {}{fault}",
        e.method, e.path, e.request_id
    );
}

async fn inject(
    app: &App,
    req: &Req,
    request_id: &str,
    key: Option<&str>,
    fault: &Injected,
) -> Outcome {
    if fault.latency_ms > 0 && fault.kind != FaultKind::Hang {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    if fault.applied && fault.kind != FaultKind::Latency {
        // The request takes effect (state, events, and the Idempotency-Key
        // record, which the handler stores); only its reply is replaced below.
        let _ = handle(app, req, request_id);
    }
    let mut reply = match fault.kind {
        FaultKind::Latency => return Outcome::Reply(handle(app, req, request_id)),
        FaultKind::Hang => return Outcome::Hang,
        FaultKind::Reset => return Outcome::Reset,
        FaultKind::Status => {
            let body = match &fault.body {
                None if salesforce::is_salesforce_path(&req.path) => {
                    salesforce::errors::default_body(fault.status)
                }
                None if github::is_github_path(&req.path) => {
                    github::errors::default_body(fault.status)
                }
                _ => fault.body_for(key),
            };
            Reply::json(fault.status, &body)
        }
        FaultKind::Malformed => {
            Reply::raw(200, &b"{\"object\":\"list\",\"data\":[{\"id\":\"cus_"[..])
        }
    };
    for (name, value) in &fault.headers {
        reply.set_header(name, value.clone());
    }
    Outcome::Reply(reply)
}
