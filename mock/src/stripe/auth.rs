//! API keys: `Authorization: Bearer sk_…` or HTTP Basic with the key as user;
//! or an OAuth access token `oat_…` (see crate::oauth), which stands for the
//! account it was issued for. A key or token is never echoed in full:
//! messages and logs use `mask_key`.

use hyper::HeaderMap;

use super::errors::ApiError;
use crate::oauth::ACCESS_TOKEN_PREFIX;
use crate::state::App;

const SECRET_PREFIXES: [&str; 2] = ["sk_test_", "sk_live_"];
const KNOWN_PREFIXES: [&str; 7] = [
    "sk_test_",
    "sk_live_",
    "rk_test_",
    "rk_live_",
    "pk_test_",
    "pk_live_",
    ACCESS_TOKEN_PREFIX,
];

/// The key the client presented, valid or not.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.to_string())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(base64_decode(rest)?).ok()?;
        let user = decoded.split_once(':').map_or(&decoded[..], |(u, _)| u);
        Some(user.to_string())
    } else {
        None
    }
}

/// The account key of a request, from its API key or a valid OAuth access
/// token; or Stripe's 401 ("Expired API Key provided: oat_****…" for an
/// expired or unknown token).
pub fn authenticate_with_tokens(app: &App, headers: &HeaderMap) -> Result<String, ApiError> {
    match presented_key(headers) {
        Some(token) if token.starts_with(ACCESS_TOKEN_PREFIX) => app
            .oauth()
            .access(&token)
            .ok_or_else(|| ApiError::expired_api_key(&mask_key(&token))),
        _ => authenticate(headers),
    }
}

/// The account key of a request, or Stripe's 401.
pub fn authenticate(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(raw) = headers.get("authorization") else {
        return Err(ApiError::no_api_key());
    };
    match presented_key(headers) {
        Some(key) if is_valid_key(&key) => Ok(key),
        Some(key) if key.is_empty() => Err(ApiError::no_api_key()),
        Some(key) => Err(ApiError::invalid_api_key(&mask_key(&key))),
        None => Err(ApiError::invalid_api_key(&mask_key(
            raw.to_str().unwrap_or(""),
        ))),
    }
}

/// `sk_test_`/`sk_live_` followed by at least one visible ASCII character.
pub fn is_valid_key(key: &str) -> bool {
    SECRET_PREFIXES
        .iter()
        .any(|p| key.len() > p.len() && key.starts_with(p))
        && key.bytes().all(|b| b.is_ascii_graphic())
}

/// `sk_test_****1234`: the known prefix, four stars, the last four characters.
pub fn mask_key(key: &str) -> String {
    let prefix = KNOWN_PREFIXES
        .iter()
        .find(|p| key.starts_with(*p))
        .copied()
        .unwrap_or("");
    let rest: Vec<char> = key[prefix.len()..].chars().collect();
    if rest.len() > 4 {
        let last4: String = rest[rest.len() - 4..].iter().collect();
        format!("{prefix}****{last4}")
    } else {
        format!("{prefix}****")
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn bearer_and_basic() {
        assert_eq!(
            authenticate(&headers("Bearer sk_test_abc")).unwrap(),
            "sk_test_abc"
        );
        // base64("sk_test_abc:") = c2tfdGVzdF9hYmM6
        assert_eq!(
            authenticate(&headers("Basic c2tfdGVzdF9hYmM6")).unwrap(),
            "sk_test_abc"
        );
    }

    #[test]
    fn bad_keys_are_401_and_masked() {
        let e = authenticate(&headers("Bearer sk_test_secretvalue9876")).ok();
        assert!(e.is_some());
        let e = authenticate(&headers("Bearer pk_test_secretvalue9876")).unwrap_err();
        assert_eq!(e.status, 401);
        assert_eq!(e.message, "Invalid API Key provided: pk_test_****9876");
        assert!(authenticate(&HeaderMap::new())
            .unwrap_err()
            .message
            .starts_with("You did not provide an API key"));
        let e = authenticate(&headers("Token abcdefghijkl")).unwrap_err();
        assert!(!e.message.contains("abcdefgh"));
    }

    #[test]
    fn masking() {
        assert_eq!(mask_key("sk_test_abcdef1234"), "sk_test_****1234");
        assert_eq!(mask_key("sk_live_12"), "sk_live_****");
        assert_eq!(mask_key("whatever-secret"), "****cret");
        assert_eq!(mask_key("abc"), "****");
        assert_eq!(mask_key("oat_secretsecretWXYZ"), "oat_****WXYZ");
    }
}
