//! GitHub App user tokens: `POST /login/oauth/access_token` with
//! `client_id, client_secret, grant_type=refresh_token, refresh_token`
//! (form body or query) → `ghu_…` access token and a new `ghr_…` refresh
//! token (GitHub always rotates). JSON when the client accepts it, else
//! form-encoded; failures are HTTP 200 with `{"error",…}`, as GitHub's are.
//! Grants and tokens are crate::oauth's, made by `/_admin/github/app_grants`.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::http::{Reply, Req};
use crate::oauth::{GrantSpec, TokenError, TokenPrefixes};
use crate::state::App;
use crate::stripe::form;

pub const TOKEN_PATH: &str = "/login/oauth/access_token";
pub const PREFIXES: TokenPrefixes = TokenPrefixes {
    access: "ghu_",
    refresh: "ghr_",
};
/// User access tokens live 8 hours.
pub const ACCESS_EXPIRES_IN: u64 = 28_800;
/// Refresh tokens live 6 months; reported, not enforced.
pub const REFRESH_EXPIRES_IN: u64 = 15_897_600;
const TROUBLESHOOTING: &str = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";

/// A grant of the account's GitHub App to its user; returns the refresh token.
pub fn create_grant(
    app: &App,
    account: &str,
    client_id: String,
    client_secret: String,
    expires_in: u64,
) -> String {
    let spec = GrantSpec {
        client_id,
        client_secret,
        expires_in,
        rotate: true,
    };
    app.oauth().create_grant_with(account, spec, PREFIXES)
}

fn error_body(e: TokenError) -> Value {
    let (error, description, anchor) = match e {
        TokenError::BadGrantType => (
            "unsupported_grant_type",
            "The grant type is not supported.",
            "unsupported-grant-type",
        ),
        TokenError::BadRefreshToken => (
            "bad_refresh_token",
            "The refresh token passed is incorrect or expired.",
            "bad-refresh-token",
        ),
        TokenError::BadClientId | TokenError::BadClientSecret => (
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
            "incorrect-client-credentials",
        ),
    };
    json!({
        "error": error,
        "error_description": description,
        "error_uri": format!("{TROUBLESHOOTING}#{anchor}"),
    })
}

/// Form encoding of a flat object, keys in order.
fn form_encoded(v: &Value) -> String {
    let map = v.as_object().expect("token replies are objects");
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={}", super::objects::percent_encode(&v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub fn endpoint(app: &App, req: &Req) -> Reply {
    if req.method != "POST" {
        return Reply::json(404, &json!({ "error": "Not Found" }));
    }
    let mut params: HashMap<String, String> = form::pairs(&req.query).into_iter().collect();
    params.extend(form::pairs(&String::from_utf8_lossy(&req.body)));
    let body = match app.oauth().refresh(&params) {
        Ok(t) => json!({
            "access_token": t.access_token,
            "expires_in": t.expires_in,
            "refresh_token": t.refresh_token,
            "refresh_token_expires_in": REFRESH_EXPIRES_IN,
            "token_type": "bearer",
            "scope": "",
        }),
        Err(e) => error_body(e),
    };
    let wants_json = req
        .header("accept")
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        Reply::json(200, &body)
    } else {
        Reply::raw(200, form_encoded(&body)).with_header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
    }
}
