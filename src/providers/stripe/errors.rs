//! Stripe's refusals: `{"error": {"type", "code", "message", "param"}}`,
//! mapped to error kinds, with the reply's request id and `Retry-After`.
//! (A 429's `Retry-After` pauses the server: the trait's default
//! `rate_limit_pause`.)

use crate::error::ErrorKind;
use crate::providers::{kind_for_status, retry_after, ApiError, ApiResponse};
use serde_json::Value;

pub(super) fn error(response: &ApiResponse) -> ApiError {
    let body = response.json();
    let error = body.as_ref().and_then(|b| b.get("error"));
    let text = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str).map(str::to_string);
    let kind = match text("type").as_deref() {
        Some("idempotency_error") => ErrorKind::Conflict,
        _ => kind_for_status(response.status),
    };
    let message = text("message").unwrap_or_else(|| match body {
        Some(_) => format!("HTTP {} without an error message", response.status),
        None => format!("HTTP {} with a reply that is not JSON", response.status),
    });
    ApiError {
        kind,
        status: response.status,
        message,
        code: text("code"),
        field: text("param"),
        request_id: response.header("request-id").map(str::to_string),
        retry_after: retry_after(response),
    }
}
