//! `Authorization: Bearer <token>` or `token <token>`. A personal token
//! (`ghp_…`, `github_pat_…`) or user token (`ghu_…`) is an account key, like
//! Stripe's `sk_test_…`; a `ghu_…` issued by the app token endpoint (see
//! `token.rs`) stands for its grant's account until it expires.

use hyper::HeaderMap;

use super::errors::GhError;
use crate::state::App;

const ACCOUNT_KEY_PREFIXES: [&str; 3] = ["ghp_", "github_pat_", "ghu_"];

/// The token the client presented, valid or not.
pub fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| rest.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A GitHub-looking token: a known prefix and at least one visible ASCII character.
pub fn is_account_key(key: &str) -> bool {
    ACCOUNT_KEY_PREFIXES
        .iter()
        .any(|p| key.len() > p.len() && key.starts_with(p))
        && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The account a request is for, or 401 Bad credentials (unknown,
/// malformed or expired token; revocation is checked on the account).
pub fn authenticate(app: &App, headers: &HeaderMap) -> Result<String, GhError> {
    let token = presented_token(headers).ok_or_else(GhError::bad_credentials)?;
    if app.oauth().account_of_access_token(&token).is_some() {
        return app
            .oauth()
            .access(&token)
            .ok_or_else(GhError::bad_credentials);
    }
    if is_account_key(&token) {
        Ok(token)
    } else {
        Err(GhError::bad_credentials())
    }
}

/// The account a request is counted and faulted under: that of an issued
/// token (expired or not), or the presented account key.
pub fn account_of_request(app: &App, headers: &HeaderMap) -> Option<String> {
    let token = presented_token(headers)?;
    app.oauth()
        .account_of_access_token(&token)
        .or_else(|| is_account_key(&token).then_some(token))
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
    fn bearer_token_and_keys() {
        let app = App::new(false);
        assert_eq!(
            authenticate(&app, &headers("Bearer ghp_a")).unwrap(),
            "ghp_a"
        );
        assert_eq!(
            authenticate(&app, &headers("token github_pat_b")).unwrap(),
            "github_pat_b"
        );
        assert_eq!(
            authenticate(&app, &headers("Bearer sk_test_a"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            authenticate(&app, &headers("Basic Z2hwX2E6"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            authenticate(&app, &HeaderMap::new()).unwrap_err().status,
            401
        );
        assert!(!is_account_key("ghp_"));
    }
}
