//! `POST /services/oauth2/token` with a form body
//! `grant_type=refresh_token&refresh_token&client_id&client_secret` →
//! `{"access_token","instance_url","id","token_type":"Bearer","issued_at","signature"}`,
//! with no `expires_in` (Salesforce doesn't say when a session ends). Grants
//! and tokens are crate::oauth's: a grant made with `/_admin/oauth/grants`
//! works here, its `expires_in` is the session timeout, `/_admin/oauth/expire`
//! ends the sessions. With `rotate`, the reply carries the new `refresh_token`.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::time;
use crate::http::{Reply, Req};
use crate::ids::{fnv1a, mix};
use crate::oauth::TokenError;
use crate::state::{lock, App};
use crate::stripe::form;

pub const TOKEN_PATH: &str = "/services/oauth2/token";

/// Salesforce's `{"error","error_description"}` for each failure.
fn error_body(e: TokenError) -> Value {
    let (error, description) = match e {
        TokenError::BadGrantType => ("unsupported_grant_type", "grant type not supported"),
        TokenError::BadRefreshToken => ("invalid_grant", "expired access/refresh token"),
        TokenError::BadClientId => ("invalid_client_id", "client identifier invalid"),
        TokenError::BadClientSecret => ("invalid_client", "invalid client credentials"),
    };
    json!({ "error": error, "error_description": description })
}

/// Base64 (standard alphabet, padded).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Looks like Salesforce's HMAC-SHA256 signature (32 bytes, base64); not one.
fn signature(id: &str, issued_at: &str, secret: &str) -> String {
    let mut h = fnv1a(format!("{id}{issued_at}{secret}").as_bytes());
    let mut bytes = Vec::with_capacity(32);
    for _ in 0..4 {
        h = mix(h);
        bytes.extend_from_slice(&h.to_le_bytes());
    }
    base64(&bytes)
}

pub fn endpoint(app: &App, req: &Req) -> Reply {
    if req.method != "POST" {
        return Reply::json(
            405,
            &json!({"error":"invalid_request","error_description":"must use HTTP POST"}),
        )
        .with_header("Allow", "POST");
    }
    let params: HashMap<String, String> = form::pairs(&String::from_utf8_lossy(&req.body))
        .into_iter()
        .collect();
    let tokens = app.oauth().refresh(&params);
    let tokens = match tokens {
        Ok(t) => t,
        Err(e) => return Reply::json(400, &error_body(e)),
    };
    let account = app
        .oauth()
        .account_of_access_token(&tokens.access_token)
        .expect("a token just issued has an account");
    let instance_url = format!("http://{}", req.header("host").unwrap_or("127.0.0.1"));
    let (org, user) = lock(&app.account(&account)).salesforce.org_and_user();
    let id = format!("{instance_url}/id/{org}/{user}");
    let issued_at = time::now_ms().to_string();
    let secret = params
        .get("client_secret")
        .map(String::as_str)
        .unwrap_or("");
    let mut body = json!({
        "access_token": tokens.access_token,
        "instance_url": instance_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature(&id, &issued_at, secret),
    });
    if params.get("refresh_token") != Some(&tokens.refresh_token) {
        body["refresh_token"] = json!(tokens.refresh_token);
    }
    Reply::json(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(signature("a", "1", "s").len(), 44);
    }
}
