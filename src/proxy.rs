//! `sequin.proxy_request()`: the SQL end of the HTTP proxy (`proxy/`).
//! The proxy hands over what its client sent — the credential it presented,
//! the method, path, headers and body bytes — and gets back the API's reply
//! as it came. The credential picks the role: the one whose user mapping for
//! the server holds it as `api_key` or `proxy_token` (compared in constant
//! time); the request then runs as that role, with its rights, exactly as
//! its own `sequin.request()` would. The reply's records are applied before
//! the function returns; when the API accepted the request but that apply
//! fails, the reply still comes back, with the reason in `database_behind`,
//! and the sync brings the change.

use crate::error::{ErrorKind, Result, SequinError};
use crate::privilege::{catalog_owner, run_as};
use crate::request::{apply_reply, find_sequin_server, parse_method, send, Outgoing, OutgoingBody};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use serde_json::Value;
use subtle::ConstantTimeEq;

/// Header names and values, in order.
type Headers = Vec<(String, String)>;

/// The options of a user mapping a proxy client may present.
const CREDENTIAL_OPTIONS: [&str; 2] = ["api_key", "proxy_token"];

/// Hop-by-hop headers of the client's connection to the proxy, which end
/// there. (What the extension sets itself, the credential and the framing
/// are `http::is_reserved_header`.) Matched in lower case.
const HOP_BY_HOP: &[&str] = &["keep-alive", "te", "trailer", "upgrade", "expect"];

/// The API's reply as the proxy sends it on.
pub struct Forwarded {
    pub status: i32,
    /// `[name, value]` pairs in the order the API sent them.
    pub headers: Value,
    pub body: Option<Vec<u8>>,
    /// Why the database does not show the reply yet (the local apply failed).
    pub database_behind: Option<String>,
}

/// What the proxy received from its client.
pub struct Received<'a> {
    pub server: &'a str,
    pub credential: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Option<&'a Value>,
    pub body: Option<Vec<u8>>,
}

pub fn proxy_request(received: Received) -> Result<Forwarded> {
    let server_oid = find_sequin_server(received.server)?;
    let role = role_of_credential(server_oid, received.server, received.credential)?;
    run_as(role, || forward(received))
}

fn forward(received: Received) -> Result<Forwarded> {
    let (headers, content_type) = forwarded_headers(received.headers)?;
    let body = received.body.filter(|bytes| !bytes.is_empty()).map(|bytes| OutgoingBody::Raw {
        content_type: content_type.unwrap_or_else(|| "application/octet-stream".into()),
        bytes,
    });
    let outgoing =
        Outgoing { server: received.server, method: parse_method(received.method)?, path: received.path, headers, body };
    let sent = send(&outgoing)?;
    let mut database_behind = None;
    if sent.response.is_success() {
        database_behind = match crate::subxact::attempt(|| apply_reply(&sent)) {
            Ok(behind) => behind,
            Err(failure) => {
                let why = format!(
                    "the API accepted {} {} but its records could not be applied here: {} ({}); the sync brings them",
                    received.method.to_ascii_uppercase(),
                    route_of(received.path),
                    failure.message,
                    failure.sqlstate
                );
                crate::reconcile::poll_all_soon();
                Some(why)
            }
        };
        if let Some(why) = &database_behind {
            pgrx::warning!("{why}");
        }
    }
    let response = &sent.response;
    let headers = response.headers.iter().map(|(name, value)| Value::from(vec![name.as_str(), value.as_str()])).collect();
    let body = (!response.body.is_empty()).then(|| response.body.clone());
    Ok(Forwarded { status: i32::from(response.status), headers: Value::Array(headers), body, database_behind })
}

/// The path without its query string, which may carry personal data.
fn route_of(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// The role whose own user mapping for the server holds the credential.
/// Every mapping is compared, in constant time per value, so the reply
/// time does not tell how much of a key matched. A credential must belong
/// to one role alone: PUBLIC's mapping names no role.
fn role_of_credential(server_oid: pg_sys::Oid, server: &str, credential: &str) -> Result<pg_sys::Oid> {
    let refused = |why: &str| {
        SequinError::new(ErrorKind::Unauthorized, format!("the credential does not authenticate a role on server \"{server}\""))
            .with_detail(why.to_string())
            .with_hint(format!(
                "ALTER USER MAPPING FOR <role> SERVER {server} OPTIONS (ADD proxy_token '…'); then present that token as the client's API key."
            ))
    };
    if credential.is_empty() {
        return Err(refused("No credential was presented."));
    }
    let mut matched: Vec<pg_sys::Oid> = Vec::new();
    let mut matched_public = false;
    for (user, options) in mappings(server_oid)? {
        let mut holds = false;
        for option in &options {
            let Some((name, value)) = option.split_once('=') else { continue };
            if CREDENTIAL_OPTIONS.contains(&name) && !value.is_empty() {
                holds |= bool::from(value.as_bytes().ct_eq(credential.as_bytes()));
            }
        }
        match (holds, user == pg_sys::InvalidOid) {
            (true, true) => matched_public = true,
            (true, false) if !matched.contains(&user) => matched.push(user),
            _ => {}
        }
    }
    match (matched.as_slice(), matched_public) {
        ([role], false) => Ok(*role),
        ([], true) => Err(refused(
            "It is the PUBLIC user mapping's, which names no role to act as; the proxy needs a role's own mapping.",
        )),
        ([], false) => Err(refused("No user mapping of the server holds it as api_key or proxy_token.")),
        // A key every role may use (PUBLIC's) or several roles hold says
        // nothing about who presents it.
        _ => Err(refused("The user mappings of several roles (or PUBLIC's) hold it; give each role a proxy_token of its own.")),
    }
}

/// Every user mapping of the server: its role (InvalidOid for PUBLIC) and
/// its options as `name=value`. Read as the catalog's owner: only
/// superusers may read other roles' mappings.
fn mappings(server_oid: pg_sys::Oid) -> Result<Vec<(pg_sys::Oid, Vec<String>)>> {
    let args: [DatumWithOid; 1] = [server_oid.into()];
    let failed = |e: pgrx::spi::Error| SequinError::internal(format!("could not read the user mappings: {e}"));
    run_as(catalog_owner(), || {
        Spi::connect(|client| {
            let rows = client
                .select("SELECT umuser, coalesce(umoptions, '{}') FROM pg_catalog.pg_user_mapping WHERE umserver = $1", None, &args)
                .map_err(failed)?;
            let mut out = Vec::new();
            for row in rows {
                let user = row.get::<pg_sys::Oid>(1).map_err(failed)?.unwrap_or(pg_sys::InvalidOid);
                let options = row.get::<Vec<String>>(2).map_err(failed)?.unwrap_or_default();
                out.push((user, options));
            }
            Ok(out)
        })
    })
}

/// The client's headers (`[name, value]` pairs) that go on to the API, and
/// its Content-Type, which describes the body. A header the extension sets
/// itself (for every request, or for this provider) is not passed on.
fn forwarded_headers(headers: Option<&Value>) -> Result<(Headers, Option<String>)> {
    let invalid = |why: String| {
        SequinError::new(ErrorKind::InvalidArgument, format!("sequin.proxy_request(): {why}")).with_detail("No request was sent.")
    };
    let pairs = match headers {
        None | Some(Value::Null) => return Ok((Vec::new(), None)),
        Some(Value::Array(pairs)) => pairs,
        Some(_) => return Err(invalid("headers must be a JSON array of [name, value] pairs".into())),
    };
    let mut out = Vec::with_capacity(pairs.len());
    let mut content_type = None;
    for pair in pairs {
        let (name, value) = match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(name), Value::String(value)]) => (name, value),
            _ => return Err(invalid("headers must be a JSON array of [name, value] pairs".into())),
        };
        let lower = name.to_ascii_lowercase();
        if lower == "content-type" {
            content_type = Some(value.clone());
        }
        if HOP_BY_HOP.contains(&lower.as_str()) || crate::http::is_reserved_header(&lower) {
            continue;
        }
        crate::http::check_header(name, value).map_err(|why| invalid(crate::providers::cut_api_text(&why)))?;
        out.push((name.clone(), value.clone()));
    }
    Ok((out, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn the_transport_and_the_credential_stay_behind() {
        let headers = json!([
            ["Authorization", "Bearer sk_test_1"],
            ["Content-Type", "application/x-www-form-urlencoded"],
            ["Stripe-Version", "2024-06-20"],
            ["Idempotency-Key", "k1"],
            ["Connection", "keep-alive"],
            ["Accept-Encoding", "gzip"],
            ["X-Stripe-Client-User-Agent", "{\"lang\": \"python\"}"],
        ]);
        let (out, content_type) = forwarded_headers(Some(&headers)).unwrap();
        assert_eq!(content_type.as_deref(), Some("application/x-www-form-urlencoded"));
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Stripe-Version", "Idempotency-Key", "X-Stripe-Client-User-Agent"]);
    }

    #[test]
    fn headers_are_pairs_of_text() {
        for bad in [json!({"a": "b"}), json!([["a"]]), json!([["a", 1]]), json!([["bad name", "x"]]), json!([["x", "a\nb"]])] {
            assert_eq!(forwarded_headers(Some(&bad)).unwrap_err().kind, ErrorKind::InvalidArgument, "{bad}");
        }
        assert_eq!(forwarded_headers(None).unwrap(), (vec![], None));
    }

    #[test]
    fn routes_leave_the_query_out() {
        assert_eq!(route_of("/v1/customers?email=a@b"), "/v1/customers");
        assert_eq!(route_of("/v1/customers"), "/v1/customers");
    }

    proptest! {
        #[test]
        fn any_header_list_is_checked_without_panicking(pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..6)) {
            let headers = Value::Array(pairs.into_iter().map(|(n, v)| json!([n, v])).collect());
            let _ = forwarded_headers(Some(&headers));
        }
    }
}
