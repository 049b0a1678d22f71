//! `/_admin/…`: no auth, JSON in and out. Resets, faults, config, request
//! counts and account revocation here; each provider's data under its own
//! prefix (`/_admin/stripe/…`, `/_admin/salesforce/…`, `/_admin/github/…`), OAuth grants under
//! `/_admin/oauth/…`. Admin
//! requests are never faulted or counted.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::faults::FaultSpec;
use crate::http::{Reply, Req};
use crate::state::{lock, App, Config};
use crate::stripe::errors::ApiError;
use crate::stripe::{self, auth, form};
use crate::{github, oauth, salesforce};

/// `/_admin/requests/recent` without `limit`.
const RECENT_DEFAULT_LIMIT: usize = 100;

pub fn handle(app: &App, req: &Req) -> Reply {
    route(app, req).unwrap_or_else(|e| e.reply(None))
}

fn route(app: &App, req: &Req) -> Result<Reply, ApiError> {
    let query = form::decode(&req.query)?;
    let account = match query.get("account").and_then(Value::as_str) {
        None | Some("") => None,
        Some(key) if auth::is_valid_key(key) || github::auth::is_account_key(key) => Some(key),
        Some(_) => {
            return Err(ApiError::invalid(
                "account must be an API key starting with sk_test_ or sk_live_, or a GitHub token (ghp_, github_pat_, ghu_)",
            )
            .param("account"))
        }
    };
    let require_account = || account.ok_or_else(|| ApiError::missing_param("account"));
    let path = req.path.trim_start_matches("/_admin").trim_matches('/');
    let segments: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    let ok = |v: Value| Ok(Reply::json(200, &v));

    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["health"]) => ok(json!({ "ok": true })),
        ("POST", ["reset"]) => {
            match account {
                Some(key) => app.reset_account(key),
                None => app.reset_all(),
            }
            ok(json!({ "reset": true }))
        }
        ("POST", ["accounts", action @ ("revoke" | "restore")]) => {
            let revoked = *action == "revoke";
            lock(&app.account(require_account()?)).revoked = revoked;
            ok(json!({ "revoked": revoked }))
        }
        ("POST", ["faults"]) => {
            let spec: FaultSpec = json_body(req)?;
            let id = app.faults().add(spec).map_err(ApiError::invalid)?;
            ok(json!({ "id": id }))
        }
        ("GET", ["faults"]) => ok(app.faults().list()),
        ("DELETE", ["faults"]) => {
            match account {
                Some(key) => app.faults().clear_account(key),
                None => app.faults().clear(),
            }
            ok(json!({ "cleared": true }))
        }
        ("DELETE", ["faults", id]) => {
            let id: u64 = id
                .parse()
                .map_err(|_| ApiError::invalid("fault ids are numbers"))?;
            if !app.faults().remove(id) {
                return Err(ApiError::invalid(format!("No such fault: {id}")).status(404));
            }
            ok(json!({ "id": id, "deleted": true }))
        }
        ("GET", ["config"]) => ok(json!(app.config())),
        ("POST", ["config"]) => {
            let config: Config = json_body(req)?;
            app.set_config(config.clone());
            ok(json!(config))
        }
        ("GET", ["requests"]) => ok(app.requests().summary(account)),
        ("GET", ["requests", "log"]) => ok(app.requests().log(account)),
        ("GET", ["requests", "recent"]) => {
            let limit = match query.get("limit") {
                None => RECENT_DEFAULT_LIMIT,
                Some(v) => v
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ApiError::invalid_integer("limit", &v.to_string()))?,
            };
            ok(app.requests().recent(account, limit))
        }
        ("POST", ["requests", "reset"]) => {
            app.requests().clear(account);
            ok(json!({ "reset": true }))
        }
        (_, ["oauth", rest @ ..]) => oauth::admin(app, req, rest, account),
        (_, ["stripe", rest @ ..]) => {
            stripe::admin::handle(app, req, rest, require_account()?, &query)
        }
        (_, ["github", rest @ ..]) => github::admin::handle(app, req, rest, require_account()?),
        (_, ["salesforce", rest @ ..]) => {
            salesforce::admin::handle(app, req, rest, require_account()?, &query)
        }
        _ => Err(ApiError::invalid(format!(
            "Unknown admin endpoint: {} {}",
            req.method, req.path
        ))
        .status(404)),
    }
}

pub fn json_body<T: DeserializeOwned>(req: &Req) -> Result<T, ApiError> {
    let body: &[u8] = if req.body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &req.body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("Invalid JSON body: {e}")))
}
