//! One account per server (DESIGN §8): a user mapping whose key or grant
//! reaches another account than the one the sync reads is refused (28000)
//! before its first write. Otherwise its inserts would never show up in the
//! sync, and its deletes of the synced account's records would get a 404 and
//! be taken as done.

use crate::error::{ErrorKind, Result, SequinError};
use crate::fdw::options::{load_credentials, Credentials, ServerConfig};
use crate::http::{self, TransportError};
use crate::oauth;
use crate::providers::ApiRequest;
use crate::rate_limit::Priority;
use crate::upstream;
use crate::write::cancel_pending;
use pgrx::pg_sys;
use std::collections::HashMap;
use std::ffi::CStr;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{LazyLock, Mutex};

/// The account each credential reaches, learned once per process: keyed by
/// user mapping and a fingerprint of its secret, so a changed key or grant
/// is asked about again.
static ACCOUNTS: LazyLock<Mutex<HashMap<(u32, u64), String>>> = LazyLock::new(Default::default);

/// Keyed per process: the fingerprints of secrets stay in this process's memory
/// and are no digest anyone could look a key up by.
static FINGERPRINT_KEYS: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// One side of the comparison: a user mapping, its credentials and whose it is.
struct Side<'a> {
    mapping: pg_sys::Oid,
    credentials: &'a Credentials,
    /// e.g. `the user mapping of role "bob"`, `the PUBLIC user mapping`.
    described: String,
}

/// Refuses (28000) when `credentials`, the mapping `user` writes with,
/// reaches another account than the server's sync mapping (the owner's, else
/// PUBLIC's). Free when both are one mapping or hold the same secret;
/// otherwise at most one request per credential and process.
pub fn ensure_same_account(server: &ServerConfig, server_owner: pg_sys::Oid, user: pg_sys::Oid, credentials: &Credentials) -> Result<()> {
    let sync_credentials = load_credentials(server.oid, &server.name, server_owner).map_err(|e| {
        SequinError::new(
            ErrorKind::Unauthorized,
            format!("[{}]: server \"{}\" has no user mapping for its sync to compare accounts with", server.provider.label(), server.name),
        )
        .with_detail(e.message)
        .with_hint("Create a user mapping for the server's owner or for PUBLIC, with a key of the account to sync.")
    })?;
    let (writer_mapping, sync_mapping) = (mapping_of(server.oid, user), mapping_of(server.oid, server_owner));
    // Checked on every write statement: this much is catalog lookups only.
    if writer_mapping == sync_mapping || fingerprint(credentials) == fingerprint(&sync_credentials) {
        return Ok(());
    }
    let writer = Side { mapping: writer_mapping, credentials, described: describe(server.oid, user, true) };
    let sync = Side {
        mapping: sync_mapping,
        credentials: &sync_credentials,
        described: describe(server.oid, server_owner, false),
    };
    let writer_account = account_of(server, &writer)?;
    let sync_account = account_of(server, &sync).map_err(|e| {
        let detail = format!("While asking which account {} (the sync's) reaches: {}", sync.described, e.detail.clone().unwrap_or_default());
        e.with_detail(detail)
    })?;
    match (writer_account, sync_account) {
        (Some(theirs), Some(ours)) if theirs == ours => Ok(()),
        (Some(theirs), Some(ours)) => Err(another_account(server, &writer, &theirs, &sync, &ours)),
        (None, _) => Err(unknown_account(server, &writer)),
        (_, None) => Err(unknown_account(server, &sync)),
    }
}

/// The account of one side, from this process's cache or the API.
fn account_of(server: &ServerConfig, side: &Side) -> Result<Option<String>> {
    let key = (u32::from(side.mapping), fingerprint(side.credentials));
    if let Some(account) = cache().get(&key) {
        return Ok(Some(account.clone()));
    }
    let asked = http::block_on(ask_account(server, side.credentials), &cancel_pending).unwrap_or_else(|| {
        let request = server.provider.account_request().unwrap_or_else(|| ApiRequest::get(""));
        Err(TransportError::Interrupted.into_error(server.provider.label(), &request))
    });
    if asked.is_err() && cancel_pending() {
        // Cancelled, a statement timeout or a shutdown: Postgres raises its
        // own error now that we are back on its stack.
        pgrx::check_for_interrupts!();
    }
    let account = asked?;
    if let Some(account) = &account {
        cache().insert(key, account.clone());
    }
    Ok(account)
}

/// The account the API says these credentials reach: from the OAuth token
/// reply when it names one, else from the provider's account request; None
/// when the API tells neither way.
async fn ask_account(server: &ServerConfig, credentials: &Credentials) -> Result<Option<String>> {
    if let Credentials::OAuth(grant) = credentials {
        if let Some(account) = oauth::account(server, grant).await? {
            return Ok(Some(account));
        }
    }
    let Some(request) = server.provider.account_request() else {
        return Ok(None);
    };
    let response = upstream::send(server, credentials, &request, Priority::Write).await?;
    upstream::parse(server, &request, server.provider.parse_account(&response)).map(Some)
}

fn cache() -> std::sync::MutexGuard<'static, HashMap<(u32, u64), String>> {
    ACCOUNTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Equal for equal secrets (the same key, or the same grant as stored).
fn fingerprint(credentials: &Credentials) -> u64 {
    let mut hasher = FINGERPRINT_KEYS.build_hasher();
    match credentials {
        Credentials::ApiKey(key) => ("api_key", key).hash(&mut hasher),
        Credentials::OAuth(grant) => ("oauth", &grant.client_id, &grant.client_secret, &grant.refresh_token).hash(&mut hasher),
    }
    hasher.finish()
}

/// The user mapping `user` gets for the server: its own, else PUBLIC's. Only
/// called once `load_credentials` found one (GetUserMapping raises otherwise).
fn mapping_of(server_oid: pg_sys::Oid, user: pg_sys::Oid) -> pg_sys::Oid {
    unsafe { (*pg_sys::GetUserMapping(user, server_oid)).umid }
}

/// Which mapping `user` gets, in words; `writer`: name the role also when
/// it falls back to PUBLIC's mapping (the sync's role is the server owner).
fn describe(server_oid: pg_sys::Oid, user: pg_sys::Oid, writer: bool) -> String {
    // GetUserMapping reports the role asked for, not the mapping's: look
    // for a mapping of the role's own.
    let own = crate::fdw::options::has_own_mapping(server_oid, user);
    let role = unsafe { CStr::from_ptr(pg_sys::GetUserNameFromId(user, true).cast_const()) };
    describe_mapping(&role.to_string_lossy(), own, writer)
}

fn describe_mapping(role: &str, own: bool, writer: bool) -> String {
    match (own, writer) {
        (true, _) => format!("the user mapping of role \"{role}\""),
        (false, true) => format!("the PUBLIC user mapping (used by role \"{role}\")"),
        (false, false) => "the PUBLIC user mapping".to_string(),
    }
}

fn another_account(server: &ServerConfig, writer: &Side, theirs: &str, sync: &Side, ours: &str) -> SequinError {
    SequinError::new(
        ErrorKind::Unauthorized,
        format!("[{}]: {} reaches another account than server \"{}\" syncs", server.provider.label(), writer.described, server.name),
    )
    .with_detail(format!("It reaches account {theirs}; the sync, with {}, reaches account {ours}.", sync.described))
    .with_hint(format!("Use a key (or an OAuth grant) of account {ours} in this user mapping: one server syncs and writes one account."))
}

fn unknown_account(server: &ServerConfig, side: &Side) -> SequinError {
    SequinError::new(
        ErrorKind::Unauthorized,
        format!("[{}]: cannot tell which account {} reaches", server.provider.label(), side.described),
    )
    .with_detail(format!("{} names the account only in an OAuth token reply, and this mapping holds an api_key.", server.provider.label()))
    .with_hint("Use an OAuth grant (client_id, client_secret, refresh_token) in the user mapping, or the same api_key as the server's sync mapping.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdw::options::OAuthGrant;

    fn grant(refresh_token: &str) -> Credentials {
        Credentials::OAuth(OAuthGrant {
            mapping: pg_sys::InvalidOid,
            client_id: "cid".into(),
            client_secret: "shh".into(),
            refresh_token: refresh_token.into(),
        })
    }

    #[test]
    fn equal_secrets_have_equal_fingerprints() {
        let key = |k: &str| Credentials::ApiKey(k.into());
        assert_eq!(fingerprint(&key("sk_test_a")), fingerprint(&key("sk_test_a")));
        assert_ne!(fingerprint(&key("sk_test_a")), fingerprint(&key("sk_test_b")));
        assert_eq!(fingerprint(&grant("ort_1")), fingerprint(&grant("ort_1")));
        assert_ne!(fingerprint(&grant("ort_1")), fingerprint(&grant("ort_2")));
    }

    #[test]
    fn a_mismatch_names_both_accounts_and_no_secret() {
        let server = crate::fdw::options::parse_server("stripe", &[("provider".into(), "stripe".into())]).unwrap();
        let (bob_key, sync_key) = (Credentials::ApiKey("sk_test_bobsecret".into()), Credentials::ApiKey("sk_test_syncsecret".into()));
        let bob = Side { mapping: pg_sys::InvalidOid, credentials: &bob_key, described: describe_mapping("bob", true, true) };
        let sync = Side { mapping: pg_sys::InvalidOid, credentials: &sync_key, described: describe_mapping("alice", false, false) };
        let error = another_account(&server, &bob, "acct_B", &sync, "acct_A");
        assert_eq!(error.kind, ErrorKind::Unauthorized);
        assert_eq!(error.message, "[Stripe]: the user mapping of role \"bob\" reaches another account than server \"stripe\" syncs");
        let detail = error.detail.clone().unwrap();
        assert!(detail.contains("acct_B") && detail.contains("acct_A") && detail.contains("PUBLIC"), "{detail}");
        assert!(error.hint.clone().unwrap().contains("acct_A"));
        let text = format!("{error:?}");
        assert!(!text.contains("secret"), "{text}");
        let unknown = unknown_account(&server, &bob);
        assert!(unknown.message.contains("cannot tell which account the user mapping of role \"bob\""));
    }
}
