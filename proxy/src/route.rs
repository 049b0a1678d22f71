//! What a request says before any SQL: which database and server, the path
//! handed to the extension, the credential and the headers worth passing on.
//! Everything here is pure and total: any input gives a value or an error.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hyper::header::{
    HeaderMap, HeaderName, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, EXPECT, HOST,
};
use hyper::{Method, Uri};

use crate::errors::ProxyError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub database: String,
    pub server: String,
    /// `/<rest>` plus `?query`, still percent-encoded: the extension joins it
    /// to the API's base URL, and re-encoding could change what the API sees.
    pub path: String,
}

/// `/<database>/<server>/<rest>`. `/db/srv/` is accepted (rest "/"): it is
/// what a client whose base URL ends in a slash sends for the API's root.
pub fn parse_route(uri: &Uri) -> Result<Route, ProxyError> {
    let not_found =
        || ProxyError::not_found("the path must look like /<database>/<server>/<api path>");
    let path = uri.path();
    let rest = path.strip_prefix('/').ok_or_else(not_found)?;
    let (database, rest) = rest.split_once('/').ok_or_else(not_found)?;
    let (server, rest) = rest.split_once('/').ok_or_else(not_found)?;
    if database.is_empty() || server.is_empty() {
        return Err(not_found());
    }
    let database = decode_name(database, "database")?;
    let server = decode_name(server, "server")?;
    let mut api_path = String::with_capacity(rest.len() + 1);
    api_path.push('/');
    api_path.push_str(rest);
    if let Some(query) = uri.query() {
        api_path.push('?');
        api_path.push_str(query);
    }
    Ok(Route {
        database,
        server,
        path: api_path,
    })
}

/// Percent-decodes a database or server name. Postgres names cannot hold NUL
/// and are text, so both are refused here rather than as an obscure SQL error.
fn decode_name(raw: &str, what: &str) -> Result<String, ProxyError> {
    let bad = || ProxyError::bad_request(format!("the {what} name in the path is not valid"));
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| hex(*b)).ok_or_else(bad)?;
            let lo = bytes.get(i + 2).and_then(|b| hex(*b)).ok_or_else(bad)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err(bad());
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub fn check_method(method: &Method) -> Result<(), ProxyError> {
    match *method {
        Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE => Ok(()),
        _ => Err(ProxyError::new(
            hyper::StatusCode::METHOD_NOT_ALLOWED,
            "only GET, POST, PUT, PATCH and DELETE are proxied",
        )),
    }
}

/// The API key or token a client sent. Its Debug never shows the value, so
/// a stray `{:?}` in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// Lenient about padding: some clients strip the `=`s.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `Bearer X` / `token X` (GitHub) → X; `Basic base64(user:pass)` → user,
/// or pass when user is empty (the API key is the user for Stripe's
/// `-u sk_test_…:`, the password for some other clients).
pub fn credential(headers: &HeaderMap) -> Result<Credential, ProxyError> {
    let missing = || ProxyError::forbidden("missing or unreadable Authorization header");
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or_else(missing)?;
    if values.next().is_some() {
        return Err(missing());
    }
    let value = std::str::from_utf8(value.as_bytes()).map_err(|_| missing())?;
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).ok_or_else(missing)?;
    let rest = rest.trim();
    let secret = if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        rest.to_string()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASE64.decode(rest).map_err(|_| missing())?;
        let decoded = String::from_utf8(decoded).map_err(|_| missing())?;
        let (user, pass) = decoded.split_once(':').ok_or_else(missing)?;
        if user.is_empty() {
            pass.to_string()
        } else {
            user.to_string()
        }
    } else {
        return Err(missing());
    };
    if secret.is_empty() || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(missing());
    }
    Ok(Credential(secret))
}

/// Headers that describe one hop of the connection, not the message.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Header names listed in `Connection: a, b` are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn dropped(name: &HeaderName, listed: &[String], also: &[HeaderName]) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
        || also.contains(name)
        || listed.iter().any(|l| l == name.as_str())
}

/// The request headers sent as `$5`: order kept, a repeated header
/// repeated. Host, Authorization (already `$2`) and Content-Length (the body
/// is `$6`) mean nothing past the proxy; Expect (curl's `100-continue` for
/// large bodies) was answered by the proxy already, and the body is complete
/// by the time the extension sends it on.
pub fn request_headers(headers: &HeaderMap) -> Result<Vec<(String, String)>, ProxyError> {
    let listed = connection_listed(headers);
    let also = [HOST, AUTHORIZATION, CONTENT_LENGTH, EXPECT];
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if dropped(name, &listed, &also) {
            continue;
        }
        let value = std::str::from_utf8(value.as_bytes()).map_err(|_| {
            ProxyError::bad_request(format!("the value of header {name} is not valid UTF-8"))
        })?;
        out.push((name.as_str().to_string(), value.to_string()));
    }
    Ok(out)
}

/// The response headers worth passing back from the extension's row. hyper
/// frames the body itself, so Content-Length / Transfer-Encoding from the
/// API would contradict it.
pub fn response_header_allowed(name: &HeaderName, listed: &[String]) -> bool {
    !dropped(name, listed, &[CONTENT_LENGTH])
}

/// The `Connection` tokens of the extension's header list.
pub fn listed_in_connection(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use proptest::prelude::*;

    fn route(s: &str) -> Result<Route, u16> {
        let uri: Uri = s.parse().expect("test URI");
        parse_route(&uri).map_err(|e| e.status.as_u16())
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("/app/stripe/v1/customers?limit=3&starting_after=cus_%41"),
            Ok(Route {
                database: "app".into(),
                server: "stripe".into(),
                path: "/v1/customers?limit=3&starting_after=cus_%41".into()
            })
        );
        assert_eq!(
            route("/my%20db/str%69pe/a%2Fb/c"),
            Ok(Route {
                database: "my db".into(),
                server: "stripe".into(),
                path: "/a%2Fb/c".into()
            })
        );
        assert_eq!(route("/db/srv/").map(|r| r.path), Ok("/".into()));
        assert_eq!(route("/db/srv/?x").map(|r| r.path), Ok("/?x".into()));
        assert_eq!(route("/db/srv/x?").map(|r| r.path), Ok("/x?".into()));
        assert_eq!(route("/db/srv//x").map(|r| r.path), Ok("//x".into()));
        assert_eq!(
            route("http://proxy:1/db/srv/x?q=1").map(|r| r.path),
            Ok("/x?q=1".into())
        );
        assert_eq!(
            route("/%C3%A9t%C3%A9/s/x").map(|r| r.database),
            Ok("été".into())
        );
    }

    #[test]
    fn bad_routes() {
        for s in [
            "/",
            "/x",
            "/db/srv",
            "/db/srv?x=1",
            "//srv/x",
            "/db//x",
            "*",
        ] {
            assert_eq!(route(s), Err(404), "{s}");
        }
        for s in [
            "/d%00b/s/x",
            "/db/%zz/x",
            "/db%/s/x",
            "/db%4/s/x",
            "/%ff/s/x",
        ] {
            assert_eq!(route(s), Err(400), "{s}");
        }
    }

    #[test]
    fn methods() {
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            assert!(check_method(&m.parse().unwrap()).is_ok());
        }
        for m in ["HEAD", "OPTIONS", "CONNECT", "TRACE", "PROPFIND"] {
            assert_eq!(
                check_method(&m.parse().unwrap())
                    .unwrap_err()
                    .status
                    .as_u16(),
                405
            );
        }
    }

    fn auth(value: &[u8]) -> Result<String, u16> {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        credential(&h)
            .map(|c| c.expose().to_string())
            .map_err(|e| e.status.as_u16())
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn credentials() {
        assert_eq!(auth(b"Bearer sk_test_1"), Ok("sk_test_1".into()));
        assert_eq!(auth(b"bearer  sk_test_1 "), Ok("sk_test_1".into()));
        assert_eq!(auth(b"BEARER\tx"), Ok("x".into()));
        assert_eq!(auth(b"token ghp_abc"), Ok("ghp_abc".into()));
        // Any UTF-8 is passed on; the extension decides whether it matches.
        assert_eq!(auth("Bearer é".as_bytes()), Ok("é".into()));
        assert_eq!(auth(b"Token ghp_abc"), Ok("ghp_abc".into()));
        let basic = |s: &str| format!("Basic {}", b64(s)).into_bytes();
        assert_eq!(auth(&basic("sk_test_2:")), Ok("sk_test_2".into()));
        assert_eq!(auth(&basic(":secret")), Ok("secret".into()));
        assert_eq!(auth(&basic("user:pass")), Ok("user".into()));
        assert_eq!(auth(&basic("user:pa:ss")), Ok("user".into()));
        // Unpadded base64 ("sk_test_2:" encodes with one '=').
        let unpadded = format!("basic {}", b64("sk_test_2:").trim_end_matches('='));
        assert_eq!(auth(unpadded.as_bytes()), Ok("sk_test_2".into()));
    }

    #[test]
    fn bad_credentials() {
        let mut h = HeaderMap::new();
        assert_eq!(credential(&h).unwrap_err().status.as_u16(), 403);
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(credential(&h).unwrap_err().status.as_u16(), 403);
        let basic = |s: &str| format!("Basic {}", b64(s)).into_bytes();
        for v in [
            b"".to_vec(),
            b"Bearer".to_vec(),
            b"Bearer ".to_vec(),
            b"sk_test_1".to_vec(),
            b"Digest abc".to_vec(),
            b"Basic".to_vec(),
            b"Basic !!!not base64".to_vec(),
            b"Basic @@@@".to_vec(),
            basic(":"),
            basic("nocolon"),
            basic(""),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, 0x3a])
            )
            .into_bytes(),
            b"Bearer a b".to_vec(),
            b"Bearer \xff".to_vec(),
        ] {
            assert_eq!(auth(&v), Err(403), "{}", String::from_utf8_lossy(&v));
        }
    }

    #[test]
    fn credential_debug_is_redacted() {
        let c = Credential("sk_live_secret".into());
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn header_filtering() {
        let mut h = HeaderMap::new();
        h.append("content-type", HeaderValue::from_static("application/json"));
        h.append("host", HeaderValue::from_static("proxy"));
        h.append("authorization", HeaderValue::from_static("Bearer x"));
        h.append("content-length", HeaderValue::from_static("3"));
        h.append("connection", HeaderValue::from_static("keep-alive, X-Hop"));
        h.append("keep-alive", HeaderValue::from_static("timeout=5"));
        h.append("x-hop", HeaderValue::from_static("1"));
        h.append("te", HeaderValue::from_static("trailers"));
        h.append("transfer-encoding", HeaderValue::from_static("chunked"));
        h.append("upgrade", HeaderValue::from_static("h2c"));
        h.append("expect", HeaderValue::from_static("100-continue"));
        h.append(
            "proxy-authorization",
            HeaderValue::from_static("Basic eDp5"),
        );
        h.append("stripe-version", HeaderValue::from_static("2024-06-20"));
        h.append("accept", HeaderValue::from_static("a"));
        h.append("accept", HeaderValue::from_static("b"));
        h.append(
            "idempotency-key",
            HeaderValue::from_bytes("é".as_bytes()).unwrap(),
        );
        let got = request_headers(&h).unwrap();
        let want: Vec<(String, String)> = [
            ("content-type", "application/json"),
            ("stripe-version", "2024-06-20"),
            ("accept", "a"),
            ("accept", "b"),
            ("idempotency-key", "é"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);

        h.append("x-bad", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(request_headers(&h).unwrap_err().status.as_u16(), 400);
    }

    #[test]
    fn response_header_filtering() {
        let pairs = vec![
            ("Connection".to_string(), "close, X-Secret-Hop".to_string()),
            ("x-other".to_string(), "1".to_string()),
        ];
        let listed = listed_in_connection(&pairs);
        let ok = |n: &str| {
            response_header_allowed(&HeaderName::from_bytes(n.as_bytes()).unwrap(), &listed)
        };
        assert!(ok("content-type"));
        assert!(ok("request-id"));
        assert!(ok("x-other"));
        assert!(!ok("x-secret-hop"));
        assert!(!ok("content-length"));
        assert!(!ok("transfer-encoding"));
        assert!(!ok("connection"));
        assert!(!ok("keep-alive"));
    }

    proptest! {
        #[test]
        fn any_path_is_total(path in "/[ -~]{0,80}", query in proptest::option::of("[ -~]{0,40}")) {
            let s = match &query { Some(q) => format!("{path}?{q}"), None => path.clone() };
            if let Ok(uri) = s.parse::<Uri>() {
                if let Ok(r) = parse_route(&uri) {
                    prop_assert!(r.path.starts_with('/'));
                    prop_assert!(!r.database.is_empty() && !r.server.is_empty());
                }
            }
        }

        #[test]
        fn any_segments_are_total(db in "[%0-9a-fA-F/ -~]{0,20}", srv in "[%0-9a-fA-F -~]{0,20}", rest in "[ -~]{0,20}") {
            let s = format!("/{db}/{srv}/{rest}");
            if let Ok(uri) = s.parse::<Uri>() {
                let _ = parse_route(&uri);
            }
        }

        #[test]
        fn any_authorization_is_total(value in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                let mut h = HeaderMap::new();
                h.insert(AUTHORIZATION, v);
                if let Ok(c) = credential(&h) {
                    prop_assert!(!c.expose().is_empty());
                }
            }
        }

        #[test]
        fn any_scheme_and_basic_payload_is_total(scheme in "(?i)(basic|bearer|token|x)", payload in proptest::collection::vec(any::<u8>(), 0..60), raw in any::<bool>()) {
            let rest = if raw { String::from_utf8_lossy(&payload).into_owned() } else { base64::engine::general_purpose::STANDARD.encode(&payload) };
            if let Ok(v) = HeaderValue::from_str(&format!("{scheme} {rest}")) {
                let mut h = HeaderMap::new();
                h.insert(AUTHORIZATION, v);
                let _ = credential(&h);
            }
        }

        #[test]
        fn any_header_set_is_total(pairs in proptest::collection::vec(("[a-zA-Z0-9-]{1,20}", proptest::collection::vec(any::<u8>(), 0..40)), 0..20)) {
            let mut h = HeaderMap::new();
            for (name, value) in &pairs {
                if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
                    h.append(n, v);
                }
            }
            if let Ok(out) = request_headers(&h) {
                for (n, _) in &out {
                    prop_assert!(n != "host" && n != "authorization" && n != "content-length" && n != "connection");
                }
            }
        }
    }
}
