//! HTTP transport: one reqwest client and one current-thread tokio runtime
//! per process, created on first use (never in the postmaster before fork).
//! Requests run on the calling thread, so a backend's Postgres state is only
//! ever touched by its own thread; a short ticker lets the caller abandon a
//! request when Postgres wants to cancel or shut down. Requests are futures:
//! a backend runs one at a time (`block_on`), the sync worker many at once
//! (`run_local`).

use crate::error::{ErrorKind, SequinError};
use crate::providers::{ApiRequest, ApiResponse, Body, Method};
use std::cell::OnceCell;
use std::future::Future;
use std::time::Duration;

/// How often a pending request checks whether it should be abandoned.
pub const TICK: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub enum TransportError {
    /// The request ran out of the server's `timeout`.
    Timeout(Duration),
    /// The caller asked to stop (query cancel, statement timeout, SIGTERM).
    Interrupted,
    /// No connection could be made.
    Unreachable(String),
    /// The connection broke after the request may have been sent.
    Broken(String),
}

impl TransportError {
    pub fn into_error(self, provider: &str, request: &ApiRequest) -> SequinError {
        let route = format!("{} {}", request.method.as_str(), request.route());
        match self {
            TransportError::Timeout(after) => SequinError::new(
                ErrorKind::Timeout,
                format!("[{provider}]: request timed out after {} ms", after.as_millis()),
            )
            .with_detail(format!("{route} did not answer in time"))
            .with_hint("The server option \"timeout\" sets how long a request may take."),
            TransportError::Interrupted => {
                SequinError::new(ErrorKind::Timeout, format!("[{provider}]: request canceled"))
                    .with_detail(format!("{route} was abandoned"))
            }
            TransportError::Unreachable(why) => {
                SequinError::new(ErrorKind::Unreachable, format!("[{provider}]: API unreachable: {why}"))
                    .with_detail(route)
                    .with_hint("Check the server option \"base_url\" and the network.")
            }
            TransportError::Broken(why) => {
                SequinError::new(ErrorKind::Upstream, format!("[{provider}]: connection failed: {why}"))
                    .with_detail(route)
            }
        }
    }
}

struct Transport {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

thread_local! {
    static TRANSPORT: OnceCell<Transport> = const { OnceCell::new() };
}

fn new_transport() -> Transport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime needs no resources that can fail here");
    let client = reqwest::Client::builder()
        .user_agent(concat!("sequin_fdw/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .expect("the client configuration is static");
    Transport { runtime, client }
}

fn with_transport<R>(f: impl FnOnce(&Transport) -> R) -> R {
    TRANSPORT.with(|cell| f(cell.get_or_init(new_transport)))
}

/// Runs `future` on this thread's runtime until it completes; None when
/// `interrupted` (polled every tick) said stop first, the future then being
/// dropped. Never call it from inside a future.
pub fn block_on<T>(future: impl Future<Output = T>, interrupted: &dyn Fn() -> bool) -> Option<T> {
    with_transport(|transport| {
        transport.runtime.block_on(async {
            tokio::pin!(future);
            let mut ticker = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    result = &mut future => return Some(result),
                    _ = ticker.tick() => if interrupted() { return None },
                }
            }
        })
    })
}

/// Runs `future` with this thread's runtime inside a `LocalSet`, so it can
/// `spawn_local` tasks that are not `Send` (they all run on this thread,
/// where Postgres may be called).
pub fn run_local<T>(future: impl Future<Output = T>) -> T {
    with_transport(|transport| tokio::task::LocalSet::new().block_on(&transport.runtime, future))
}

/// Sends one request and reads the whole reply, at most `timeout`. A future
/// of this thread's runtime: see `block_on` and `run_local`.
pub async fn send(
    base_url: &str,
    headers: &[(String, String)],
    request: &ApiRequest,
    timeout: Duration,
) -> Result<ApiResponse, TransportError> {
    match tokio::time::timeout(timeout, exchange(base_url, headers, request)).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Timeout(timeout)),
    }
}

async fn exchange(
    base_url: &str,
    headers: &[(String, String)],
    request: &ApiRequest,
) -> Result<ApiResponse, TransportError> {
    let client = with_transport(|transport| transport.client.clone());
    let url = format!("{}{}", base_url.trim_end_matches('/'), request.path);
    let mut builder = match request.method {
        Method::Get => client.get(&url),
        Method::Post => client.post(&url),
        Method::Patch => client.patch(&url),
        Method::Delete => client.delete(&url),
    };
    for (name, value) in headers {
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| TransportError::Unreachable(format!("header {name} is not valid")))?;
        value.set_sensitive(name.eq_ignore_ascii_case("authorization"));
        builder = builder.header(name.as_str(), value);
    }
    if let Some(key) = &request.idempotency_key {
        builder = builder.header("Idempotency-Key", key.as_str());
    }
    builder = match &request.body {
        Some(Body::Form(pairs)) => {
            builder.header("Content-Type", "application/x-www-form-urlencoded").body(encode_form(pairs))
        }
        Some(Body::Json(json)) => builder.json(json),
        None => builder,
    };
    let response = builder.send().await.map_err(classify)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = response.bytes().await.map_err(classify)?.to_vec();
    Ok(ApiResponse { status, headers, body })
}

fn classify(error: reqwest::Error) -> TransportError {
    // reqwest's messages name the URL (base_url and path), never headers;
    // the innermost cause says what happened (e.g. "connection reset").
    let is_connect = error.is_connect();
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if is_connect {
        TransportError::Unreachable(text)
    } else {
        TransportError::Broken(text)
    }
}

/// `application/x-www-form-urlencoded`, keys with brackets kept readable.
pub fn encode_form(pairs: &[(String, String)]) -> String {
    let encode = |text: &str, keep: &[u8]| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ if keep.contains(&b) => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, b"[]"), encode(v, b"")))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_values_and_keeps_brackets() {
        let pairs = vec![
            ("metadata[order id]".to_string(), "a&b=c d".to_string()),
            ("email".to_string(), "ada+1@example.com".to_string()),
        ];
        assert_eq!(encode_form(&pairs), "metadata[order+id]=a%26b%3Dc+d&email=ada%2B1%40example.com");
    }

    #[test]
    fn unreachable_server_is_reported_as_such() {
        // Port 9 on loopback is closed: the connection is refused at once.
        let request = ApiRequest::get("/v1/customers");
        let result = block_on(send("http://127.0.0.1:9", &[], &request, Duration::from_secs(5)), &|| false).unwrap();
        assert!(matches!(result, Err(TransportError::Unreachable(_))), "{result:?}");
    }
}
