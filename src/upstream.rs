//! Calling a server's API: authentication, retries of transient failures
//! within the server's timeout, and turning every failure (transport or
//! refusal) into the user's error.

use crate::error::{ErrorKind, Result, SequinError};
use crate::fdw::options::{Credentials, ServerConfig};
use crate::http::{self, TransportError};
use crate::oauth;
use crate::providers::{ApiRequest, ApiResponse, Method};
use crate::rate_limit::{self, Priority, TooLate};
use crate::time::{iso8601_from_us, now_us};
use std::time::{Duration, Instant};

/// At most this many attempts per call, however much time is left.
const MAX_ATTEMPTS: u32 = 5;
/// The wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// A request that may be sent twice without applying twice: reads, deletes,
/// and writes the API de-duplicates by their idempotency key.
fn retry_safe(request: &ApiRequest) -> bool {
    matches!(request.method, Method::Get | Method::Delete) || request.idempotency_key.is_some()
}

/// Sends `request` and returns the 2xx reply, blocking the backend; gives
/// up when `interrupted` (cancel, statement timeout, shutdown) says so.
pub fn call(
    server: &ServerConfig,
    credentials: &Credentials,
    request: &ApiRequest,
    priority: Priority,
    interrupted: &dyn Fn() -> bool,
) -> Result<ApiResponse> {
    http::block_on(send(server, credentials, request, priority), interrupted)
        .unwrap_or_else(|| Err(TransportError::Interrupted.into_error(server.provider.label(), request)))
}

/// Sends `request` and returns the 2xx reply; anything else is an error in
/// the words of the API. Every attempt first takes a slot of the server's
/// shared request budget (writes before sync). Connection failures, 5xx and
/// 429 are retried with exponential backoff (or the API's Retry-After, which
/// also pauses everyone's requests to the server) while the server's
/// `timeout` lasts, but only for requests that are safe to repeat.
pub async fn send(
    server: &ServerConfig,
    credentials: &Credentials,
    request: &ApiRequest,
    priority: Priority,
) -> Result<ApiResponse> {
    let provider = server.provider;
    let label = provider.label();
    // The timeout option is bounded (options::TIMEOUT_BOUNDS); saturating
    // all the same, as no duration here may panic a backend.
    let deadline = Instant::now().checked_add(server.timeout).unwrap_or_else(|| Instant::now() + FAR_FUTURE);
    let deadline_us = now_us().saturating_add(micros(server.timeout));
    let mut attempt: u32 = 1;
    let mut refreshed_after_401 = false;
    loop {
        let secret = match credentials {
            Credentials::ApiKey(key) => key.clone(),
            Credentials::OAuth(grant) => oauth::access_token(server, grant).await?,
        };
        let headers = provider.auth_headers(&secret);
        if let Err(TooLate { until_us }) =
            rate_limit::acquire(server.oid, server.rate_limit, server.burst, priority, deadline_us).await
        {
            return Err(no_slot(server, request, until_us));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let sent = http::send(&server.base_url, &headers, request, remaining).await;
        if let Some(pause) = sent.as_ref().ok().and_then(|r| provider.rate_limit_pause(r)) {
            rate_limit::pause(server.oid, now_us().saturating_add(micros(pause)));
        }
        let (error, retry_after) = match sent {
            Ok(response) if response.is_success() => return Ok(response),
            Ok(response) if response.status == 401 && !refreshed_after_401 && matches!(credentials, Credentials::OAuth(_)) => {
                // An access token can expire or be revoked early: get a new
                // one and try once more.
                if let Credentials::OAuth(grant) = credentials {
                    oauth::refused(grant, &secret);
                }
                refreshed_after_401 = true;
                continue;
            }
            Ok(response) => {
                let refusal = provider.error(&response);
                let transient = response.status == 429 || response.status >= 500;
                let retry_after = refusal.retry_after;
                let error = refusal.into_error(label, request);
                if !transient {
                    return Err(error);
                }
                (error, retry_after)
            }
            Err(TransportError::Timeout(_)) => {
                return Err(TransportError::Timeout(server.timeout).into_error(label, request))
            }
            Err(e @ (TransportError::Interrupted | TransportError::HostNotAllowed(_))) => {
                return Err(e.into_error(label, request))
            }
            Err(e @ (TransportError::Unreachable(_) | TransportError::Broken(_))) => (e.into_error(label, request), None),
        };
        let backoff = FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let wait = retry_after.map_or(backoff, |after| after.max(backoff));
        // A 429 was refused before anything was done: any request may repeat.
        let can_retry = (retry_safe(request) || error.kind == ErrorKind::RateLimited)
            && attempt < MAX_ATTEMPTS
            && Instant::now().checked_add(wait).is_some_and(|end| end < deadline);
        if !can_retry {
            let error = after_attempts(error, attempt);
            return Err(match (error.kind, retry_after) {
                (ErrorKind::RateLimited, Some(after)) => {
                    let resets = iso8601_from_us(now_us().saturating_add(micros(after)));
                    let detail = format!("{}; the limit resets at {resets}", error.detail.clone().unwrap_or_default());
                    error.with_detail(detail)
                }
                _ => error,
            });
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Stands in for a deadline past what `Instant` can hold.
const FAR_FUTURE: Duration = Duration::from_secs(24 * 3600);

/// Microseconds as i64, saturating (a u128 `as i64` would wrap negative).
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// 53400 for a request that found no slot in the server's budget in time.
fn no_slot(server: &ServerConfig, request: &ApiRequest, until_us: i64) -> SequinError {
    let budget = match server.rate_limit {
        Some(rate) => format!("server \"{}\" allows {rate} requests/s (burst {})", server.name, server.burst),
        None => format!("requests to server \"{}\" are paused: the API said its limit is used up", server.name),
    };
    SequinError::new(
        ErrorKind::RateLimited,
        format!("[{}]: rate limited: no request slot within the timeout", server.provider.label()),
    )
    .with_detail(format!(
        "{} {}: {budget}; the next slot is at {}",
        request.method.as_str(),
        request.route(),
        iso8601_from_us(until_us)
    ))
    .with_hint("Raise the server option \"rate_limit\" or \"timeout\", or write fewer rows at a time.")
}

fn after_attempts(error: SequinError, attempts: u32) -> SequinError {
    if attempts == 1 {
        return error;
    }
    let detail = match &error.detail {
        Some(detail) => format!("{detail}, after {attempts} attempts"),
        None => format!("after {attempts} attempts"),
    };
    error.with_detail(detail)
}

/// Interprets a reply with a provider parser, mapping a parse failure to
/// the user's error.
pub fn parse<T>(
    server: &ServerConfig,
    request: &ApiRequest,
    parsed: std::result::Result<T, crate::providers::ApiError>,
) -> Result<T, SequinError> {
    parsed.map_err(|e| e.into_error(server.provider.label(), request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_repeatable_requests_are_retried() {
        let mut post = ApiRequest::get("/v1/customers");
        post.method = Method::Post;
        assert!(!retry_safe(&post));
        post.idempotency_key = Some("k".into());
        assert!(retry_safe(&post));
        assert!(retry_safe(&ApiRequest::get("/v1/customers")));
    }

    #[test]
    fn durations_convert_to_micros_without_wrapping() {
        assert_eq!(micros(Duration::from_millis(1500)), 1_500_000);
        assert_eq!(micros(Duration::MAX), i64::MAX);
        assert!(FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(40)) > Duration::from_secs(1_000_000));
    }
}
