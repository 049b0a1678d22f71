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
    /// The URL's host is not in `sequin.allowed_hosts` (or it has none):
    /// refused before anything is sent.
    HostNotAllowed(String),
}

impl TransportError {
    pub fn into_error(self, provider: &str, request: &ApiRequest) -> SequinError {
        let route = format!("{} {}", request.method.as_str(), request.route());
        match self {
            // A write that may have reached the API before its answer was
            // lost has an unknown outcome (40003): the sync repairs the row.
            TransportError::Timeout(after) if request.method != Method::Get => SequinError::new(
                ErrorKind::OutcomeUnknown,
                format!("[{provider}]: the write's outcome is unknown: no reply within {} ms", after.as_millis()),
            )
            .with_detail(format!("{route} did not answer in time; the API may have applied it"))
            .with_hint("The table shows the API's state after the next sync. The server option \"timeout\" sets how long a request may take."),
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
            TransportError::Broken(why) if request.method != Method::Get => SequinError::new(
                ErrorKind::OutcomeUnknown,
                format!("[{provider}]: the write's outcome is unknown: connection failed: {why}"),
            )
            .with_detail(format!("{route} may have reached the API before the connection broke"))
            .with_hint("The table shows the API's state after the next sync."),
            TransportError::Broken(why) => {
                SequinError::new(ErrorKind::Upstream, format!("[{provider}]: connection failed: {why}"))
                    .with_detail(route)
            }
            // HV00A rather than HV00N (unreachable): nothing is wrong with
            // the network and retrying cannot help (upstream::send retries
            // Unreachable); the fix is the server's URL option or the
            // superuser's setting, as the validator reports it.
            TransportError::HostNotAllowed(host) => SequinError::new(
                ErrorKind::InvalidOptionValue,
                format!("[{provider}]: host \"{host}\" is not in sequin.allowed_hosts"),
            )
            .with_detail(format!("{route} was not sent"))
            .with_hint("A superuser can allow the host in the setting sequin.allowed_hosts, or ALTER SERVER to a base_url or token_url it lists."),
        }
    }
}

thread_local! {
    static RUNTIME: OnceCell<tokio::runtime::Runtime> = const { OnceCell::new() };
    /// Each thread's own: the sync's reader thread (`offload`) has one too.
    static CLIENT: OnceCell<reqwest::Client> = const { OnceCell::new() };
}

fn with_runtime<R>(f: impl FnOnce(&tokio::runtime::Runtime) -> R) -> R {
    RUNTIME.with(|cell| {
        f(cell.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime needs no resources that can fail here")
        }))
    })
}

fn client() -> reqwest::Client {
    CLIENT.with(|cell| cell.get_or_init(new_client).clone())
}

fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("sequin_fdw/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60))
        // A redirect could lead to a host sequin.allowed_hosts does not
        // list, and carry the Authorization header along: a 3xx is
        // returned as it is, a non-2xx reply like any other.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(crate::resolver::Resolver))
        .build()
        .expect("the client configuration is static")
}

/// Runs `future` on this thread's runtime until it completes; None when
/// `interrupted` (polled every tick) said stop first, the future then being
/// dropped. Never call it from inside a future.
pub fn block_on<T>(future: impl Future<Output = T>, interrupted: &dyn Fn() -> bool) -> Option<T> {
    with_runtime(|runtime| {
        runtime.block_on(async {
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
    with_runtime(|runtime| tokio::task::LocalSet::new().block_on(runtime, future))
}

/// Sends one request and reads the whole reply, at most `timeout`. A future
/// of this thread's runtime: see `block_on` and `run_local`.
pub async fn send(
    base_url: &str,
    headers: &[(String, String)],
    request: &ApiRequest,
    timeout: Duration,
) -> Result<ApiResponse, TransportError> {
    send_then(base_url, headers, request, timeout, None::<fn(&ApiResponse)>).await.map(|(response, _)| response)
}

/// `send`, and `read` of a 2xx reply. In the sync worker both run on its
/// reader thread (`offload`), where the reply is read while the worker
/// applies what came before. Elsewhere, or without `read`, the request
/// runs here, and reading is left to the caller (None).
pub async fn send_then<T: Send + 'static>(
    base_url: &str,
    headers: &[(String, String)],
    request: &ApiRequest,
    timeout: Duration,
    read: Option<impl FnOnce(&ApiResponse) -> T + Send + 'static>,
) -> Result<(ApiResponse, Option<T>), TransportError> {
    // The setting is read per request (on this thread: it is Postgres's),
    // so that a superuser's change applies to servers created before it.
    let allowed = crate::gucs::allowed_hosts();
    let Some(read) = read.filter(|_| crate::offload::enabled()) else {
        let response = timed(timeout, exchange(base_url, headers, request, &allowed)).await?;
        return Ok((response, None));
    };
    let (base_url, headers, request) = (base_url.to_string(), headers.to_vec(), request.clone());
    let exchanged = crate::offload::spawn(async move {
        let response = timed(timeout, exchange(&base_url, &headers, &request, &allowed)).await?;
        let read = response.is_success().then(|| read(&response));
        Ok((response, read))
    });
    exchanged.await.map_err(|e| TransportError::Broken(e.message))?
}

async fn timed(
    timeout: Duration,
    exchange: impl Future<Output = Result<ApiResponse, TransportError>>,
) -> Result<ApiResponse, TransportError> {
    tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(TransportError::Timeout(timeout)))
}

/// The URL of a request: its path after the base URL, unless the path
/// already starts with the base URL's own path (one the API handed back:
/// GitHub Enterprise's `Link` URLs under `/api/v3`).
fn request_url(base_url: &str, path: &str) -> String {
    let base = base_url.trim_end_matches('/');
    if let Ok(parsed) = reqwest::Url::parse(base) {
        let prefix = parsed.path().trim_end_matches('/');
        let under_prefix = path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
        if !prefix.is_empty() && base.ends_with(prefix) && under_prefix {
            return format!("{}{path}", &base[..base.len() - prefix.len()]);
        }
    }
    format!("{base}{path}")
}

/// One request and its whole reply, on this thread's client. `allowed`:
/// sequin.allowed_hosts.
async fn exchange(
    base_url: &str,
    headers: &[(String, String)],
    request: &ApiRequest,
    allowed: &str,
) -> Result<ApiResponse, TransportError> {
    let client = client();
    let url = request_url(base_url, &request.path);
    // The whole URL, since a path can come from the API (Salesforce's
    // nextRecordsUrl): `@evil.example/…` after the base would change the host.
    let url = match check_url_host(&url, allowed) {
        Ok(()) => reqwest::Url::parse(&url).map_err(|e| TransportError::Unreachable(format!("invalid URL: {e}")))?,
        Err(HostRefusal::NotAllowed(host)) => return Err(TransportError::HostNotAllowed(host)),
        Err(HostRefusal::NoHost) => return Err(TransportError::HostNotAllowed("(none)".into())),
    };
    let mut builder = match request.method {
        Method::Get => client.get(url),
        Method::Post => client.post(url),
        Method::Put => client.put(url),
        Method::Patch => client.patch(url),
        Method::Delete => client.delete(url),
    };
    for (name, value) in request.headers.iter().chain(headers) {
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
        Some(Body::Raw { content_type, bytes }) => builder.header("Content-Type", content_type.as_str()).body(bytes.clone()),
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

/// Why a URL may not be requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRefusal {
    /// Not an absolute http(s) URL with a host.
    NoHost,
    /// A host `sequin.allowed_hosts` does not list.
    NotAllowed(String),
}

/// The host of an absolute http(s) URL, as `sequin.allowed_hosts` matches
/// it: lower case, IPv6 without brackets, no trailing dot. Parsed by the url
/// crate (reqwest's `Url`), exactly as the request will be, so that
/// `https://api.stripe.com@evil.example/` is evil.example and `0x7f.1` is
/// 127.0.0.1.
pub fn url_host(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The entries of a `sequin.allowed_hosts` text, normalised like `url_host`.
fn allowed_entries(allowed: &str) -> impl Iterator<Item = String> + '_ {
    allowed.split(',').filter_map(|entry| {
        let entry = entry.trim();
        let entry = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).unwrap_or(entry);
        // A trailing dot is the same name, but `*.` is not `*`.
        let entry = match entry.strip_suffix('.') {
            Some(name) if !name.ends_with('*') => name,
            _ => entry,
        };
        let entry = entry.to_ascii_lowercase();
        (!entry.is_empty()).then_some(entry)
    })
}

/// Whether `host` (from `url_host`) is in `allowed`: comma-separated
/// names, `*.example.com` for any name under example.com (not example.com
/// itself), `*` for any host. An IP address only matches itself (or `*`).
pub fn host_allowed(host: &str, allowed: &str) -> bool {
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    allowed_entries(allowed).any(|entry| {
        if entry == "*" || entry == host {
            return true;
        }
        match entry.strip_prefix("*.") {
            Some(domain) if !is_ip && !domain.is_empty() => {
                host.strip_suffix(domain).is_some_and(|label| label.len() > 1 && label.ends_with('.'))
            }
            _ => false,
        }
    })
}

/// Checks that `url` is an absolute http(s) URL whose host `allowed` lists.
pub fn check_url_host(url: &str, allowed: &str) -> Result<(), HostRefusal> {
    let host = url_host(url).ok_or(HostRefusal::NoHost)?;
    if host_allowed(&host, allowed) {
        Ok(())
    } else {
        Err(HostRefusal::NotAllowed(host))
    }
}

/// The setting's entries for a HINT: "(none)" when it is empty.
pub fn show_allowed_hosts(allowed: &str) -> String {
    let entries: Vec<String> = allowed_entries(allowed).collect();
    if entries.is_empty() {
        "(none)".to_string()
    } else {
        entries.join(", ")
    }
}

/// Headers a caller may not set, and who sets them instead.
const RESERVED_HEADERS: &[(&str, &str)] = &[
    ("authorization", "the user mapping's credentials authenticate"),
    ("proxy-authorization", "the user mapping's credentials authenticate"),
    ("host", "the server's base_url names the host"),
    ("content-type", "the provider encodes the body"),
    ("content-length", "the transport frames the request"),
    ("transfer-encoding", "the transport frames the request"),
    ("connection", "the transport frames the request"),
    ("accept-encoding", "the reply is read as it comes, uncompressed"),
];

/// A header the extension sets itself (or the transport does), which no
/// caller's value may stand in for.
pub fn is_reserved_header(name: &str) -> bool {
    RESERVED_HEADERS.iter().any(|(reserved, _)| name.eq_ignore_ascii_case(reserved))
}

/// Why a header cannot be sent as the caller names it: not valid HTTP, or
/// one the extension sets itself.
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("\"{name}\" is not a valid header name"));
    }
    if let Some((_, why)) = RESERVED_HEADERS.iter().find(|(reserved, _)| name.eq_ignore_ascii_case(reserved)) {
        return Err(format!("header \"{name}\" cannot be set: {why}"));
    }
    if reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(format!("the value of header \"{name}\" is not valid in HTTP (control characters or non-ASCII text)"));
    }
    Ok(())
}

/// Form-encoding keeps these as they are (the WHATWG form set); a space
/// becomes `+`.
const FORM_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'*').remove(b' ');
/// Keys keep their brackets readable (`metadata[plan]`).
const FORM_KEY: &percent_encoding::AsciiSet = &FORM_VALUE.remove(b'[').remove(b']');

/// `application/x-www-form-urlencoded`, keys with brackets kept readable.
pub fn encode_form(pairs: &[(String, String)]) -> String {
    let encode = |text: &str, set| percent_encoding::utf8_percent_encode(text, set).to_string().replace(' ', "+");
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, FORM_KEY), encode(v, FORM_VALUE)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_join_the_base_url_once() {
        let ghe = "https://ghe.example.com/api/v3";
        assert_eq!(super::request_url(ghe, "/repos/o/r/issues"), "https://ghe.example.com/api/v3/repos/o/r/issues");
        assert_eq!(
            super::request_url(ghe, "/api/v3/repositories/1/issues?page=2"),
            "https://ghe.example.com/api/v3/repositories/1/issues?page=2"
        );
        assert_eq!(super::request_url("https://ghe.example.com/api/v3/", "/api/v3x"), "https://ghe.example.com/api/v3/api/v3x");
        assert_eq!(super::request_url("https://api.github.com", "/repos/o/r"), "https://api.github.com/repos/o/r");
        assert_eq!(super::request_url("http://127.0.0.1:9/", "/v1/customers"), "http://127.0.0.1:9/v1/customers");
        assert_eq!(super::request_url("not a url", "/x"), "not a url/x");
    }

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
    fn callers_name_any_valid_header_but_those_sequin_fdw_sets() {
        assert_eq!(check_header("Stripe-Version", "2020-08-27"), Ok(()));
        assert_eq!(check_header("X-Custom", ""), Ok(()));
        for reserved in ["Authorization", "authorization", "HOST", "Content-Type", "Content-Length", "Connection"] {
            assert!(check_header(reserved, "x").unwrap_err().contains("cannot be set"), "{reserved}");
        }
        assert!(check_header("bad name", "x").unwrap_err().contains("not a valid header name"));
        assert!(check_header("", "x").is_err());
        assert!(check_header("X-A", "line\nbreak").unwrap_err().contains("not valid in HTTP"));
    }

    #[test]
    fn unreachable_server_is_reported_as_such() {
        // Port 9 on loopback is closed: the connection is refused at once.
        let request = ApiRequest::get("/v1/customers");
        let result = block_on(send("http://127.0.0.1:9", &[], &request, Duration::from_secs(5)), &|| false).unwrap();
        assert!(matches!(result, Err(TransportError::Unreachable(_))), "{result:?}");
    }

    const DEFAULT: &str =
        "api.stripe.com, *.salesforce.com, *.force.com, api.hubapi.com, api.airtable.com, api.github.com, localhost, 127.0.0.1, ::1";

    #[test]
    fn the_default_allows_the_apis_and_loopback_only() {
        for url in [
            "https://api.stripe.com",
            "https://API.Stripe.com./v1",
            "https://acme.my.salesforce.com",
            "https://login.salesforce.com/services/oauth2/token",
            "https://acme.lightning.force.com",
            "http://localhost:8080",
            "http://127.0.0.1:9",
            "http://0x7f.1/",
            "http://[::1]:8080/x",
            "http://[0:0:0:0:0:0:0:1]/",
        ] {
            assert_eq!(check_url_host(url, DEFAULT), Ok(()), "{url}");
        }
        for (url, host) in [
            ("https://evil.example", "evil.example"),
            ("https://salesforce.com", "salesforce.com"),
            ("https://evilsalesforce.com", "evilsalesforce.com"),
            ("https://api.stripe.com.evil.example", "api.stripe.com.evil.example"),
            ("https://api.stripe.com@evil.example/v1", "evil.example"),
            ("https://api.stripe.com:443@evil.example/v1", "evil.example"),
            ("http://127.0.0.2", "127.0.0.2"),
            ("http://[::2]", "::2"),
        ] {
            assert_eq!(check_url_host(url, DEFAULT), Err(HostRefusal::NotAllowed(host.into())), "{url}");
        }
        for url in ["api.stripe.com", "ftp://api.stripe.com", "file:///etc/passwd", "http://", "", "unix:/tmp/s"] {
            assert_eq!(check_url_host(url, DEFAULT), Err(HostRefusal::NoHost), "{url}");
        }
    }

    #[test]
    fn allowed_host_patterns() {
        assert!(host_allowed("a.example.com", "*.example.com"));
        assert!(host_allowed("a.b.example.com", " *.Example.COM. "));
        assert!(!host_allowed("example.com", "*.example.com"));
        assert!(!host_allowed("xexample.com", "*.example.com"));
        assert!(host_allowed("anything.test", "x, *"));
        assert!(host_allowed("10.0.0.1", "*"));
        assert!(!host_allowed("10.0.0.1", "*.0.0.1"));
        assert!(host_allowed("::1", "[::1]"));
        assert!(!host_allowed("api.stripe.com", ""));
        assert!(!host_allowed("api.stripe.com", " , ,"));
        assert!(!host_allowed("example.com", "*."));
        assert_eq!(show_allowed_hosts(" , "), "(none)");
        assert_eq!(show_allowed_hosts("a.com,*.B.com"), "a.com, *.b.com");
    }

    #[test]
    fn a_host_not_allowed_is_refused_before_sending() {
        let request = ApiRequest::get("/v1/customers");
        // The default setting (the GUC is not registered in a unit test).
        let result = block_on(send("http://192.0.2.1", &[], &request, Duration::from_secs(5)), &|| false).unwrap();
        assert!(matches!(&result, Err(TransportError::HostNotAllowed(host)) if host == "192.0.2.1"), "{result:?}");
        let error = result.unwrap_err().into_error("Stripe", &request);
        assert_eq!(error.kind, ErrorKind::InvalidOptionValue);
        assert!(error.hint.unwrap().contains("sequin.allowed_hosts"));
        // A path cannot move the request to another host.
        let sneaky = ApiRequest::get("@evil.example/v1");
        let result = block_on(send("http://127.0.0.1:9", &[], &sneaky, Duration::from_secs(5)), &|| false).unwrap();
        assert!(matches!(&result, Err(TransportError::HostNotAllowed(host)) if host == "evil.example"), "{result:?}");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn host() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,3}",
                "\\PC{0,30}",
                Just("api.stripe.com".to_string()),
                Just("a.salesforce.com".to_string()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn url_checks_never_panic(url in "\\PC{0,60}", allowed in "\\PC{0,60}") {
                let _ = check_url_host(&url, &allowed);
                let _ = show_allowed_hosts(&allowed);
            }

            #[test]
            fn a_wildcard_allows_exactly_the_names_under_it(label in "[a-z0-9-]{1,10}", domain in "[a-z0-9-]{1,10}\\.[a-z]{2,5}", other in host()) {
                let pattern = format!("*.{domain}");
                let under = format!("{label}.{domain}");
                prop_assert!(host_allowed(&under, &pattern));
                prop_assert!(!host_allowed(&domain, &pattern));
                let suffix = format!(".{domain}");
                let under = other.strip_suffix(suffix.as_str()).is_some_and(|label| !label.is_empty());
                let expected = under && other.parse::<std::net::IpAddr>().is_err();
                prop_assert_eq!(host_allowed(&other, &pattern), expected);
            }

            #[test]
            fn an_allowed_url_is_allowed_by_its_own_host(scheme in "https?", name in "[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,3}", path in "(/[a-z0-9@:.]{0,10}){0,3}") {
                let url = format!("{scheme}://{name}{path}");
                if let Some(host) = url_host(&url) {
                    prop_assert_eq!(check_url_host(&url, &host), Ok(()));
                    prop_assert_eq!(check_url_host(&url, ""), Err(HostRefusal::NotAllowed(host)));
                }
            }

            #[test]
            fn form_encoding_is_ascii_and_decodes_back(pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,12}"), 0..6)) {
                let pairs: Vec<(String, String)> = pairs;
                let encoded = encode_form(&pairs);
                prop_assert!(encoded.is_ascii());
                let decode = |text: &str| -> Vec<u8> {
                    let bytes = text.as_bytes();
                    let mut out = Vec::new();
                    let mut i = 0;
                    while i < bytes.len() {
                        match bytes[i] {
                            b'+' => { out.push(b' '); i += 1; }
                            b'%' => { out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap()); i += 3; }
                            b => { out.push(b); i += 1; }
                        }
                    }
                    out
                };
                let decoded: Vec<(Vec<u8>, Vec<u8>)> = if pairs.is_empty() {
                    vec![]
                } else {
                    encoded.split('&').map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap();
                        (decode(k), decode(v))
                    }).collect()
                };
                let expected: Vec<(Vec<u8>, Vec<u8>)> = pairs.iter().map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes())).collect();
                prop_assert_eq!(decoded, expected);
            }
        }
    }
}
