//! GitHub's refusals: `{"message", "errors": [{"resource","field","code"}],
//! "documentation_url", "status"}`, mapped to error kinds; and its rate
//! limits: `x-ratelimit-remaining: 0` (403 or 429) pauses the server until
//! `x-ratelimit-reset`, a secondary limit for its `retry-after`.

use crate::error::ErrorKind;
use crate::providers::{kind_for_status, retry_after, ApiError, ApiResponse};
use crate::rate_limit::MAX_UPSTREAM_PAUSE;
use serde_json::Value;
use std::time::Duration;

/// The primary limit is used up: the reply says so in its headers.
fn primary_limit_reached(response: &ApiResponse) -> bool {
    matches!(response.status, 403 | 429) && response.header("x-ratelimit-remaining").map(str::trim) == Some("0")
}

/// A secondary limit: 403 or 429 with `retry-after`.
fn secondary_limit_reached(response: &ApiResponse) -> bool {
    matches!(response.status, 403 | 429) && response.header("retry-after").is_some()
}

pub(super) fn error(response: &ApiResponse) -> ApiError {
    let body = response.json();
    let text = |value: Option<&Value>, key: &str| value.and_then(|v| v.get(key)).and_then(Value::as_str).map(str::to_string);
    let first = body.as_ref().and_then(|b| b.get("errors")).and_then(Value::as_array).and_then(|e| e.first());
    let field = text(first, "field");
    let code = text(first, "code");
    let kind = match response.status {
        _ if primary_limit_reached(response) || secondary_limit_reached(response) => ErrorKind::RateLimited,
        // Moved: an issue transferred to another repository is gone from this one.
        301 => ErrorKind::NotFound,
        status => kind_for_status(status),
    };
    let mut message = text(body.as_ref(), "message").unwrap_or_else(|| match &body {
        Some(_) => format!("HTTP {} without an error message", response.status),
        None => format!("HTTP {} with a reply that is not JSON", response.status),
    });
    if let (Some(field), Some(code)) = (&field, &code) {
        message = format!("{message}: {field} {}", code.replace('_', " "));
    }
    ApiError {
        kind,
        status: response.status,
        message,
        code,
        field,
        request_id: response.header("x-github-request-id").map(str::to_string),
        retry_after: rate_limit_pause(response),
    }
}

/// How long every request to the server waits after this reply.
pub(super) fn rate_limit_pause(response: &ApiResponse) -> Option<Duration> {
    if primary_limit_reached(response) {
        let reset = response.header("x-ratelimit-reset")?.trim().parse::<i64>().ok()?;
        let now = crate::time::now_us() / 1_000_000;
        let seconds = reset.saturating_sub(now).max(1);
        return Some(Duration::from_secs(seconds.unsigned_abs()).min(MAX_UPSTREAM_PAUSE));
    }
    if secondary_limit_reached(response) {
        return retry_after(response);
    }
    None
}
