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
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many attempts per call, however much time is left.
const MAX_ATTEMPTS: u32 = 5;
/// The wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// A request that may be sent twice without applying twice: reads, PUTs
/// and deletes (idempotent in HTTP), and writes the API de-duplicates by
/// their idempotency key.
fn retry_safe(request: &ApiRequest) -> bool {
    matches!(request.method, Method::Get | Method::Put | Method::Delete) || request.idempotency_key.is_some()
}

/// A 304 to a conditional request (`If-None-Match`): nothing changed, a
/// reply the provider reads like a 2xx.
fn not_modified(request: &ApiRequest, response: &ApiResponse) -> bool {
    response.status == 304 && request.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("if-none-match"))
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

/// Like `call`, but any final reply of the API comes back, a refusal too
/// (after the retries `send` makes): only a request that got no reply
/// fails.
pub fn call_for_reply(
    server: &ServerConfig,
    credentials: &Credentials,
    request: &ApiRequest,
    priority: Priority,
    interrupted: &dyn Fn() -> bool,
) -> Result<Reply> {
    http::block_on(send_for_reply(server, credentials, request, priority), interrupted)
        .unwrap_or_else(|| Err(TransportError::Interrupted.into_error(server.provider.label(), request)))
}

/// Sends `request` and returns the 2xx reply; anything else is an error in
/// the words of the API (see `send_for_reply` for the retries).
pub async fn send(
    server: &ServerConfig,
    credentials: &Credentials,
    request: &ApiRequest,
    priority: Priority,
) -> Result<ApiResponse> {
    let reply = send_for_reply(server, credentials, request, priority).await?;
    match reply.response.is_success() || not_modified(request, &reply.response) {
        true => Ok(reply.response),
        false => Err(refused(server, request, &reply)),
    }
}

/// The user's error for a final non-2xx reply, in the words of the API.
pub fn refused(server: &ServerConfig, request: &ApiRequest, reply: &Reply) -> SequinError {
    let refusal = server.provider.error(&reply.response);
    let retry_after = refusal.retry_after;
    let error = after_attempts(refusal.into_error(server.provider.label(), request), reply.attempts);
    match (error.kind, retry_after) {
        (ErrorKind::RateLimited, Some(after)) => {
            let resets = iso8601_from_us(now_us().saturating_add(micros(after)));
            let detail = format!("{}; the limit resets at {resets}", error.detail.clone().unwrap_or_default());
            error.with_detail(detail)
        }
        _ => error,
    }
}

/// The API's final reply to a request, and how many attempts it took.
pub struct Reply {
    pub response: ApiResponse,
    pub attempts: u32,
}

/// Sends `request` until the API gives a final reply, 2xx or not. Every
/// attempt first takes a slot of the server's shared request budget
/// (writes before sync). Connection failures, 5xx and 429 are retried with
/// exponential backoff (or the API's Retry-After, which also pauses
/// everyone's requests to the server) while the server's `timeout` lasts,
/// but only for requests that are safe to repeat; the last such reply is
/// final. Fails when no reply came (the transport's errors).
pub async fn send_for_reply(
    server: &ServerConfig,
    credentials: &Credentials,
    request: &ApiRequest,
    priority: Priority,
) -> Result<Reply> {
    let reply = send_reading(server, credentials, request, priority, None::<Arc<fn(&ApiResponse)>>).await?;
    Ok(reply.0)
}

/// `send`, and what `read` makes of the API's 2xx reply. With `on_helper`,
/// the sync worker sends the request and reads the reply on its reader
/// thread as soon as it arrives (`http::send_then`): for pages that are
/// likely full, not for polls that mostly find nothing (a hand-over to the
/// helper and back costs more than such a reply).
pub async fn send_and_read<T, F>(
    server: &ServerConfig,
    credentials: &Credentials,
    request: &ApiRequest,
    priority: Priority,
    read: F,
    on_helper: bool,
) -> Result<T>
where
    T: Send + 'static,
    F: Fn(&ApiResponse) -> T + Send + Sync + 'static,
{
    let read = Arc::new(read);
    let early = on_helper.then(|| read.clone());
    let (reply, read_early) = send_reading(server, credentials, request, priority, early).await?;
    if !(reply.response.is_success() || not_modified(request, &reply.response)) {
        return Err(refused(server, request, &reply));
    }
    Ok(read_early.unwrap_or_else(|| read(&reply.response)))
}

/// `send_for_reply`, with `read` of a 2xx reply where `http::send_then`
/// does it.
async fn send_reading<T, F>(
    server: &ServerConfig,
    credentials: &Credentials,
    request: &ApiRequest,
    priority: Priority,
    read: Option<Arc<F>>,
) -> Result<(Reply, Option<T>)>
where
    T: Send + 'static,
    F: Fn(&ApiResponse) -> T + Send + Sync + 'static,
{
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
        // A header the caller gave (sequin.request(), the proxy) stands in
        // for the provider's fixed one of that name.
        let given = |name: &str| request.headers.iter().any(|(other, _)| other.eq_ignore_ascii_case(name));
        let mut headers: Vec<(String, String)> = provider.fixed_headers().into_iter().filter(|(name, _)| !given(name)).collect();
        headers.extend(provider.auth_headers(&secret));
        let spacing = (request.method != Method::Get).then(|| provider.write_spacing()).flatten();
        if let Err(TooLate { until_us }) =
            rate_limit::acquire(server.oid, server.rate_limit, server.burst, priority, spacing, deadline_us).await
        {
            return Err(no_slot(server, request, until_us));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let read_now = read.clone().map(|read| move |response: &ApiResponse| read(response));
        let sent = http::send_then(&server.base_url, &headers, request, remaining, read_now).await;
        if spacing.is_some() {
            rate_limit::spaced_write_done(server.oid);
        }
        if let Some(pause) = sent.as_ref().ok().and_then(|(r, _)| provider.rate_limit_pause(r)) {
            rate_limit::pause(server.oid, now_us().saturating_add(micros(pause)));
        }
        let error = match sent {
            Ok((response, read)) if response.is_success() || not_modified(request, &response) => {
                return Ok((Reply { response, attempts: attempt }, read))
            }
            Ok((response, _)) if response.status == 401 && !refreshed_after_401 && matches!(credentials, Credentials::OAuth(_)) => {
                // An access token can expire or be revoked early: get a new
                // one and try once more.
                if let Credentials::OAuth(grant) = credentials {
                    oauth::refused(grant, &secret);
                }
                refreshed_after_401 = true;
                continue;
            }
            Ok((response, _)) => {
                let refusal = provider.error(&response);
                // A limit the API says when it lifts (GitHub's 403 with its
                // reset or retry-after) is waited out like a 429.
                let limited_until = refusal.kind == ErrorKind::RateLimited && refusal.retry_after.is_some();
                let transient = response.status == 429 || response.status >= 500 || limited_until;
                if !transient || !can_retry(request, refusal.kind, refusal.retry_after, attempt, deadline) {
                    return Ok((Reply { response, attempts: attempt }, None));
                }
                tokio::time::sleep(backoff(attempt, refusal.retry_after)).await;
                attempt += 1;
                continue;
            }
            Err(TransportError::Timeout(_)) => {
                return Err(TransportError::Timeout(server.timeout).into_error(label, request))
            }
            Err(e @ (TransportError::Interrupted | TransportError::HostNotAllowed(_))) => {
                return Err(e.into_error(label, request))
            }
            Err(e @ (TransportError::Unreachable(_) | TransportError::Broken(_))) => e.into_error(label, request),
        };
        if !can_retry(request, error.kind, None, attempt, deadline) {
            return Err(after_attempts(error, attempt));
        }
        tokio::time::sleep(backoff(attempt, None)).await;
        attempt += 1;
    }
}

/// The wait before the attempt after `attempt`: exponential, or the API's
/// Retry-After when that is longer.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    retry_after.map_or(backoff, |after| after.max(backoff))
}

/// Whether a failed attempt (of this kind) is tried again: a request safe
/// to repeat, with attempts and time left for the wait before it.
fn can_retry(request: &ApiRequest, kind: ErrorKind, retry_after: Option<Duration>, attempt: u32, deadline: Instant) -> bool {
    // A 429 was refused before anything was done: any request may repeat.
    (retry_safe(request) || kind == ErrorKind::RateLimited)
        && attempt < MAX_ATTEMPTS
        && Instant::now().checked_add(backoff(attempt, retry_after)).is_some_and(|end| end < deadline)
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
        let mut other = ApiRequest::get("/v1/customers/cus_1");
        for (method, safe) in [(Method::Put, true), (Method::Delete, true), (Method::Patch, false)] {
            other.method = method;
            assert_eq!(retry_safe(&other), safe, "{method:?}");
        }
    }

    #[test]
    fn durations_convert_to_micros_without_wrapping() {
        assert_eq!(micros(Duration::from_millis(1500)), 1_500_000);
        assert_eq!(micros(Duration::MAX), i64::MAX);
        assert!(FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(40)) > Duration::from_secs(1_000_000));
    }
}
