//! OAuth2 refresh tokens, modelled on HubSpot's `POST /oauth/v1/token`
//! (form-encoded `grant_type=refresh_token&client_id&client_secret&refresh_token`
//! → `{"access_token","refresh_token","expires_in","token_type":"bearer"}`).
//!
//! A grant (created through the admin interface) belongs to one account (API
//! key). Refreshing it issues an access token `oat_…` that the Stripe routes
//! accept in place of the account's key until it expires; with `rotate` every
//! refresh also replaces the refresh token (`ort_…`) and the old one stops
//! working. Tokens are random, unlike object ids.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::admin::json_body;
use crate::http::{Reply, Req};
use crate::ids::mix;
use crate::state::App;
use crate::stripe::errors::ApiError;
use crate::stripe::form;

/// The token endpoint; an API route (counted, faultable), not an admin one.
pub const TOKEN_PATH: &str = "/oauth/v1/token";
pub const ACCESS_TOKEN_PREFIX: &str = "oat_";
pub const REFRESH_TOKEN_PREFIX: &str = "ort_";
/// The prefixes of the tokens a grant issues: `oat_`/`ort_` unless a
/// provider's own look is wanted (GitHub's `ghu_`/`ghr_`).
#[derive(Debug, Clone, Copy)]
pub struct TokenPrefixes {
    pub access: &'static str,
    pub refresh: &'static str,
}

pub const DEFAULT_PREFIXES: TokenPrefixes = TokenPrefixes {
    access: ACCESS_TOKEN_PREFIX,
    refresh: REFRESH_TOKEN_PREFIX,
};

/// HubSpot's access tokens live 30 minutes.
const DEFAULT_EXPIRES_IN: u64 = 1800;

/// The body of `POST /_admin/oauth/grants`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of each access token, in seconds.
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
    /// Every refresh issues a new refresh token and invalidates the old one.
    #[serde(default)]
    pub rotate: bool,
}

fn default_expires_in() -> u64 {
    DEFAULT_EXPIRES_IN
}

struct Grant {
    account: String,
    spec: GrantSpec,
    /// The one refresh token that works now.
    refresh_token: String,
    revoked: bool,
    prefixes: TokenPrefixes,
}

struct AccessToken {
    account: String,
    expires_at: Instant,
}

#[derive(Default)]
struct Stats {
    refreshes: u64,
    refresh_failures: u64,
}

/// Why a token request failed: HubSpot's `status` and `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    BadGrantType,
    BadRefreshToken,
    BadClientId,
    BadClientSecret,
}

impl TokenError {
    pub fn status(self) -> &'static str {
        match self {
            TokenError::BadGrantType => "BAD_GRANT_TYPE",
            TokenError::BadRefreshToken => "BAD_REFRESH_TOKEN",
            TokenError::BadClientId => "BAD_CLIENT_ID",
            TokenError::BadClientSecret => "BAD_CLIENT_SECRET",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            TokenError::BadGrantType => "unsupported grant_type",
            TokenError::BadRefreshToken => "missing or invalid refresh token",
            TokenError::BadClientId => "missing or unknown client id",
            TokenError::BadClientSecret => "missing or invalid client secret",
        }
    }

    pub fn body(self) -> Value {
        json!({ "status": self.status(), "message": self.message() })
    }
}

/// A successful refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

pub struct OAuth {
    next_grant: u64,
    grants: BTreeMap<u64, Grant>,
    /// Every refresh token ever issued (rotated-away ones too) → its grant,
    /// so a stale token still tells whose account a request was for.
    refresh_tokens: HashMap<String, u64>,
    /// Every access token issued (expired ones too) until its account is reset.
    access_tokens: HashMap<String, AccessToken>,
    stats: HashMap<String, Stats>,
    tokens: TokenGen,
}

impl Default for OAuth {
    fn default() -> OAuth {
        OAuth {
            next_grant: 1,
            grants: BTreeMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            stats: HashMap::new(),
            tokens: TokenGen::new(),
        }
    }
}

impl OAuth {
    /// A new grant for `account`; returns its first refresh token.
    pub fn create_grant(&mut self, account: &str, spec: GrantSpec) -> String {
        self.create_grant_with(account, spec, DEFAULT_PREFIXES)
    }

    /// A new grant whose tokens carry these prefixes; returns its first refresh token.
    pub fn create_grant_with(
        &mut self,
        account: &str,
        spec: GrantSpec,
        prefixes: TokenPrefixes,
    ) -> String {
        let id = self.next_grant;
        self.next_grant += 1;
        let refresh_token = self.tokens.next(prefixes.refresh);
        self.refresh_tokens.insert(refresh_token.clone(), id);
        self.grants.insert(
            id,
            Grant {
                account: account.to_string(),
                spec,
                refresh_token: refresh_token.clone(),
                revoked: false,
                prefixes,
            },
        );
        refresh_token
    }

    /// Revokes the grant any of whose refresh tokens (current or rotated away)
    /// is `token`. Access tokens already issued stay valid until they expire.
    pub fn revoke(&mut self, token: &str) -> bool {
        let grant = self
            .refresh_tokens
            .get(token)
            .and_then(|id| self.grants.get_mut(id));
        match grant {
            Some(grant) => {
                grant.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Expires every still-valid access token of the account; returns how many.
    pub fn expire_account(&mut self, account: &str) -> u64 {
        let now = Instant::now();
        let mut expired = 0;
        for token in self.access_tokens.values_mut() {
            if token.account == account && token.expires_at > now {
                token.expires_at = now;
                expired += 1;
            }
        }
        expired
    }

    /// `{"refreshes","refresh_failures","current_refresh_token"}`: the current
    /// token is the working refresh token of the account's newest grant (null
    /// without a grant or when that grant is revoked).
    pub fn stats(&self, account: &str) -> Value {
        let stats = self.stats.get(account);
        let current = self
            .grants
            .values()
            .rev()
            .find(|g| g.account == account)
            .filter(|g| !g.revoked)
            .map(|g| g.refresh_token.clone());
        json!({
            "refreshes": stats.map_or(0, |s| s.refreshes),
            "refresh_failures": stats.map_or(0, |s| s.refresh_failures),
            "current_refresh_token": current,
        })
    }

    /// The account whose grant issued this refresh token (valid or not).
    pub fn account_of_refresh_token(&self, token: &str) -> Option<String> {
        let id = self.refresh_tokens.get(token)?;
        Some(self.grants.get(id)?.account.clone())
    }

    /// The account this access token was issued for, expired or not.
    pub fn account_of_access_token(&self, token: &str) -> Option<String> {
        self.access_tokens.get(token).map(|t| t.account.clone())
    }

    /// The account of a valid, unexpired access token.
    pub fn access(&self, token: &str) -> Option<String> {
        self.access_tokens
            .get(token)
            .filter(|t| Instant::now() < t.expires_at)
            .map(|t| t.account.clone())
    }

    /// One token request, given its form params. Counts a success or failure
    /// for the account the refresh token belongs to (when it is known).
    pub fn refresh(&mut self, params: &HashMap<String, String>) -> Result<Tokens, TokenError> {
        let param = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
        let grant_id = self.refresh_tokens.get(param("refresh_token")).copied();
        let result = self.try_refresh(grant_id, &param);
        if let Some(grant) = grant_id.and_then(|id| self.grants.get(&id)) {
            let stats = self.stats.entry(grant.account.clone()).or_default();
            match result {
                Ok(_) => stats.refreshes += 1,
                Err(_) => stats.refresh_failures += 1,
            }
        }
        result
    }

    fn try_refresh<'a>(
        &mut self,
        grant_id: Option<u64>,
        param: &impl Fn(&str) -> &'a str,
    ) -> Result<Tokens, TokenError> {
        if param("grant_type") != "refresh_token" {
            return Err(TokenError::BadGrantType);
        }
        let id = grant_id.ok_or(TokenError::BadRefreshToken)?;
        let grant = self
            .grants
            .get_mut(&id)
            .ok_or(TokenError::BadRefreshToken)?;
        if param("client_id") != grant.spec.client_id {
            return Err(TokenError::BadClientId);
        }
        if param("client_secret") != grant.spec.client_secret {
            return Err(TokenError::BadClientSecret);
        }
        if grant.revoked || param("refresh_token") != grant.refresh_token {
            return Err(TokenError::BadRefreshToken);
        }
        if grant.spec.rotate {
            grant.refresh_token = self.tokens.next(grant.prefixes.refresh);
            self.refresh_tokens.insert(grant.refresh_token.clone(), id);
        }
        let access_token = self.tokens.next(grant.prefixes.access);
        let expires_in = grant.spec.expires_in;
        self.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                account: grant.account.clone(),
                expires_at: Instant::now() + Duration::from_secs(expires_in),
            },
        );
        Ok(Tokens {
            access_token,
            refresh_token: grant.refresh_token.clone(),
            expires_in,
        })
    }

    /// Drops the account's grants, their refresh tokens, its access tokens and counts.
    pub fn reset_account(&mut self, account: &str) {
        self.grants.retain(|_, g| g.account != account);
        let grants = &self.grants;
        self.refresh_tokens.retain(|_, id| grants.contains_key(id));
        self.access_tokens.retain(|_, t| t.account != account);
        self.stats.remove(account);
    }

    pub fn clear(&mut self) {
        self.grants.clear();
        self.refresh_tokens.clear();
        self.access_tokens.clear();
        self.stats.clear();
    }
}

/// Unpredictable-looking, unique tokens: `<prefix>` + 33 base62 characters.
/// The first 11 encode `mix(n ^ seed)` in full (a bijection of the counter),
/// so tokens never repeat within a run; the seed differs per run.
struct TokenGen {
    seed: u64,
    n: u64,
}

impl TokenGen {
    fn new() -> TokenGen {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        TokenGen {
            seed: RandomState::new().hash_one(nanos),
            n: 0,
        }
    }

    fn next(&mut self, prefix: &str) -> String {
        const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        self.n += 1;
        let unique = mix(self.n ^ self.seed);
        let mut out = String::with_capacity(prefix.len() + 33);
        out.push_str(prefix);
        for word in [
            unique,
            mix(unique ^ self.seed.rotate_left(21)),
            mix(unique ^ self.seed.rotate_left(42) ^ 0x9e37_79b9_7f4a_7c15),
        ] {
            let mut rest = word;
            for _ in 0..11 {
                out.push(BASE62[(rest % 62) as usize] as char);
                rest /= 62;
            }
        }
        out
    }
}

/// `POST /oauth/v1/token` (form-encoded body; the query string is ignored).
pub fn token_endpoint(app: &App, req: &Req) -> Reply {
    if req.method != "POST" {
        return Reply::json(
            405,
            &json!({ "status": "error", "message": "Method Not Allowed" }),
        )
        .with_header("Allow", "POST");
    }
    let params: HashMap<String, String> = form::pairs(&String::from_utf8_lossy(&req.body))
        .into_iter()
        .collect();
    match app.oauth().refresh(&params) {
        Ok(t) => Reply::json(
            200,
            &json!({
                "access_token": t.access_token,
                "refresh_token": t.refresh_token,
                "expires_in": t.expires_in,
                "token_type": "bearer",
            }),
        ),
        Err(e) => Reply::json(400, &e.body()),
    }
}

/// The account a token request is for: that of its refresh token, if known.
pub fn account_of_token_request(app: &App, req: &Req) -> Option<String> {
    let body = String::from_utf8_lossy(&req.body);
    let token = form::pairs(&body)
        .into_iter()
        .rev()
        .find(|(name, _)| name == "refresh_token")?
        .1;
    app.oauth().account_of_refresh_token(&token)
}

/// `/_admin/oauth/…`; `segments` is the path after `/_admin/oauth/`.
pub fn admin(
    app: &App,
    req: &Req,
    segments: &[&str],
    account: Option<&str>,
) -> Result<Reply, ApiError> {
    let require_account = || account.ok_or_else(|| ApiError::missing_param("account"));
    let ok = |v: Value| Ok(Reply::json(200, &v));
    match (req.method.as_str(), segments) {
        ("POST", ["grants"]) => {
            let account = require_account()?;
            let spec: GrantSpec = json_body(req)?;
            if spec.client_id.is_empty() || spec.client_secret.is_empty() {
                return Err(ApiError::invalid(
                    "client_id and client_secret must not be empty",
                ));
            }
            let refresh_token = app.oauth().create_grant(account, spec);
            ok(json!({ "refresh_token": refresh_token }))
        }
        ("DELETE", ["grants", token]) => {
            let token = form::percent_decode(token, false);
            if !app.oauth().revoke(&token) {
                return Err(ApiError::invalid("No such refresh token").status(404));
            }
            ok(json!({ "revoked": true }))
        }
        ("POST", ["expire"]) => {
            ok(json!({ "expired": app.oauth().expire_account(require_account()?) }))
        }
        ("GET", ["stats"]) => ok(app.oauth().stats(require_account()?)),
        _ => Err(ApiError::invalid(format!(
            "Unknown admin endpoint: {} {}",
            req.method, req.path
        ))
        .status(404)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rotate: bool) -> GrantSpec {
        GrantSpec {
            client_id: "cid".into(),
            client_secret: "secret".into(),
            expires_in: 60,
            rotate,
        }
    }

    fn params(refresh_token: &str, secret: &str) -> HashMap<String, String> {
        [
            ("grant_type", "refresh_token"),
            ("client_id", "cid"),
            ("client_secret", secret),
            ("refresh_token", refresh_token),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn refresh_issues_access_tokens_for_the_account() {
        let mut o = OAuth::default();
        let rt = o.create_grant("sk_test_a", spec(false));
        assert!(rt.starts_with("ort_") && rt.len() == 4 + 33);
        let t = o.refresh(&params(&rt, "secret")).unwrap();
        assert!(t.access_token.starts_with("oat_"));
        assert_eq!((t.refresh_token.as_str(), t.expires_in), (rt.as_str(), 60));
        assert_eq!(o.access(&t.access_token).as_deref(), Some("sk_test_a"));
        // Without rotation the same refresh token keeps working.
        let t2 = o.refresh(&params(&rt, "secret")).unwrap();
        assert_ne!(t2.access_token, t.access_token);
        assert_eq!(o.expire_account("sk_test_a"), 2);
        assert_eq!(o.access(&t.access_token), None);
        assert_eq!(
            o.account_of_access_token(&t.access_token).as_deref(),
            Some("sk_test_a")
        );
        assert_eq!(o.stats("sk_test_a")["refreshes"], 2);
    }

    #[test]
    fn rotation_revocation_and_bad_credentials() {
        let mut o = OAuth::default();
        let rt = o.create_grant("sk_test_a", spec(true));
        let t = o.refresh(&params(&rt, "secret")).unwrap();
        assert_ne!(t.refresh_token, rt);
        assert_eq!(
            o.refresh(&params(&rt, "secret")),
            Err(TokenError::BadRefreshToken)
        );
        assert_eq!(
            o.refresh(&params(&t.refresh_token, "wrong")),
            Err(TokenError::BadClientSecret)
        );
        let mut p = params(&t.refresh_token, "secret");
        p.insert("client_id".into(), "other".into());
        assert_eq!(o.refresh(&p), Err(TokenError::BadClientId));
        p = params(&t.refresh_token, "secret");
        p.insert("grant_type".into(), "authorization_code".into());
        assert_eq!(o.refresh(&p), Err(TokenError::BadGrantType));
        assert_eq!(
            o.refresh(&params("ort_unknown", "secret")),
            Err(TokenError::BadRefreshToken)
        );
        assert_eq!(
            o.stats("sk_test_a"),
            json!({"refreshes":1,"refresh_failures":4,"current_refresh_token":t.refresh_token})
        );
        // Revoking by an old token revokes the grant; issued access tokens stay.
        assert!(o.revoke(&rt));
        assert_eq!(
            o.refresh(&params(&t.refresh_token, "secret")),
            Err(TokenError::BadRefreshToken)
        );
        assert_eq!(o.access(&t.access_token).as_deref(), Some("sk_test_a"));
        assert_eq!(o.stats("sk_test_a")["current_refresh_token"], Value::Null);
        assert!(!o.revoke("ort_unknown"));
    }

    #[test]
    fn reset_drops_one_account() {
        let mut o = OAuth::default();
        let a = o.create_grant("sk_test_a", spec(false));
        let b = o.create_grant("sk_test_b", spec(false));
        let ta = o.refresh(&params(&a, "secret")).unwrap();
        let tb = o.refresh(&params(&b, "secret")).unwrap();
        o.reset_account("sk_test_a");
        assert_eq!(o.access(&ta.access_token), None);
        assert_eq!(o.account_of_refresh_token(&a), None);
        assert_eq!(o.access(&tb.access_token).as_deref(), Some("sk_test_b"));
        assert_eq!(o.stats("sk_test_a")["refreshes"], 0);
        o.clear();
        assert_eq!(o.access(&tb.access_token), None);
    }

    #[test]
    fn zero_lifetime_tokens_are_expired_at_once() {
        let mut o = OAuth::default();
        let rt = o.create_grant(
            "sk_test_a",
            GrantSpec {
                expires_in: 0,
                ..spec(false)
            },
        );
        let t = o.refresh(&params(&rt, "secret")).unwrap();
        assert_eq!(o.access(&t.access_token), None);
    }
}
