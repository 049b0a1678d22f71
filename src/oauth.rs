//! OAuth2 access tokens, shared by every backend and the worker: one cache
//! entry per user mapping in shared memory, refreshed by one process at a
//! time shortly before it expires (the others wait for it), dropped after a
//! 401. A refresh token the provider rotates is kept in memory at once and
//! handed to the sync worker, which writes it into the user mapping in its
//! own transaction, so a restart can still authenticate.

use crate::error::{ErrorKind, Result, SequinError};
use crate::fdw::options::{OAuthGrant, ServerConfig};
use crate::http;
use crate::providers::{ApiRequest, Body, Method};
use crate::time::now_us;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};
use serde_json::Value;
use std::time::Duration;

const ENTRIES: usize = 64;
const MAX_TOKEN: usize = 2048;
/// Longer account ids than this are not kept (Salesforce org ids have 18).
const MAX_ACCOUNT: usize = 64;
/// A refresh that has not finished after this long is taken over.
const STALE_REFRESH_US: i64 = 30_000_000;
/// Lifetime assumed when the token endpoint names none (Salesforce): the
/// token is then refreshed after a 401.
const UNKNOWN_LIFETIME_US: i64 = 3_600_000_000;

#[derive(Clone, Copy)]
struct Text<const N: usize> {
    len: u16,
    bytes: [u8; N],
}

impl<const N: usize> Text<N> {
    const EMPTY: Self = Text { len: 0, bytes: [0; N] };

    fn set(&mut self, text: &str) -> bool {
        if text.len() > N {
            return false;
        }
        self.bytes[..text.len()].copy_from_slice(text.as_bytes());
        self.len = text.len() as u16;
        true
    }

    fn get(&self) -> Option<String> {
        (self.len > 0).then(|| String::from_utf8_lossy(&self.bytes[..self.len as usize]).into_owned())
    }
}

#[derive(Clone, Copy)]
struct Entry {
    database: u32,
    mapping: u32,
    access: Text<MAX_TOKEN>,
    /// The account the token reply said `access` reaches (Salesforce's org),
    /// set and dropped with it; empty when the reply named none.
    account: Text<MAX_ACCOUNT>,
    /// When to refresh (a margin before the token expires), unix µs.
    refresh_at_us: i64,
    /// The newest refresh token, when the provider rotated it.
    refresh: Text<MAX_TOKEN>,
    /// The rotated refresh token still has to be written to the mapping.
    persist: bool,
    refreshing_since_us: i64,
    used_us: i64,
}

#[derive(Clone, Copy)]
pub struct Cache {
    entries: [Entry; ENTRIES],
}

unsafe impl PGRXSharedMemory for Cache {}

const EMPTY_ENTRY: Entry = Entry {
    database: 0,
    mapping: 0,
    access: Text::EMPTY,
    account: Text::EMPTY,
    refresh_at_us: 0,
    refresh: Text::EMPTY,
    persist: false,
    refreshing_since_us: 0,
    used_us: 0,
};

static CACHE: PgLwLock<Cache> = unsafe { PgLwLock::new(c"sequin_fdw oauth tokens") };

pub fn init() {
    pg_shmem_init!(CACHE = Cache { entries: [EMPTY_ENTRY; ENTRIES] });
}

/// The entry of a mapping in this database, claiming (or evicting the least
/// recently used one that is not refreshing or waiting to be persisted).
fn entry_of(cache: &mut Cache, mapping: pg_sys::Oid) -> &mut Entry {
    let database = u32::from(unsafe { pg_sys::MyDatabaseId });
    let mapping = u32::from(mapping);
    let index = cache
        .entries
        .iter()
        .position(|e| e.database == database && e.mapping == mapping)
        .or_else(|| {
            cache
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.persist && e.refreshing_since_us == 0)
                .min_by_key(|(_, e)| e.used_us)
                .map(|(i, _)| i)
        })
        .unwrap_or(0);
    let entry = &mut cache.entries[index];
    if entry.database != database || entry.mapping != mapping {
        *entry = EMPTY_ENTRY;
        entry.database = database;
        entry.mapping = mapping;
    }
    entry
}

/// Forgets the tokens of a user mapping that is dropped: nothing of it
/// stays in shared memory.
pub fn forget(mapping: pg_sys::Oid) {
    let database = u32::from(unsafe { pg_sys::MyDatabaseId });
    let mapping = u32::from(mapping);
    let mut cache = CACHE.exclusive();
    for entry in cache.entries.iter_mut().filter(|e| e.database == database && e.mapping == mapping) {
        *entry = EMPTY_ENTRY;
    }
}

/// A valid access token for the grant, refreshed first when needed.
pub async fn access_token(server: &ServerConfig, grant: &OAuthGrant) -> Result<String> {
    session(server, grant).await.map(|(token, _)| token)
}

/// The account the grant reaches, when the provider's token reply names it
/// (see `Provider::account_from_token_reply`); refreshes like `access_token`.
pub async fn account(server: &ServerConfig, grant: &OAuthGrant) -> Result<Option<String>> {
    session(server, grant).await.map(|(_, account)| account)
}

/// A valid access token and the account its token reply named, read
/// together so that they always belong to the same reply.
async fn session(server: &ServerConfig, grant: &OAuthGrant) -> Result<(String, Option<String>)> {
    loop {
        let now = now_us();
        let refresh_token = {
            let mut cache = CACHE.exclusive();
            let entry = entry_of(&mut cache, grant.mapping);
            entry.used_us = now;
            match entry.access.get() {
                Some(token) if entry.refresh_at_us > now => return Ok((token, entry.account.get())),
                _ => {}
            }
            if entry.refreshing_since_us != 0 && now - entry.refreshing_since_us < STALE_REFRESH_US {
                None
            } else {
                entry.refreshing_since_us = now;
                Some(entry.refresh.get().unwrap_or_else(|| grant.refresh_token.clone()))
            }
        };
        let Some(refresh_token) = refresh_token else {
            // Another process is refreshing this grant: wait for its token.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let refreshing = Refreshing(grant.mapping);
        let outcome = refresh(server, grant, &refresh_token).await;
        drop(refreshing);
        let mut cache = CACHE.exclusive();
        let entry = entry_of(&mut cache, grant.mapping);
        let token = outcome?;
        let lifetime = token.expires_in_us.unwrap_or(UNKNOWN_LIFETIME_US);
        // Refresh a fifth of the lifetime early (at most a minute).
        entry.refresh_at_us = now + lifetime - (lifetime / 5).min(60_000_000);
        if !entry.access.set(&token.access_token) {
            return Err(SequinError::new(ErrorKind::Upstream, "the OAuth access token is longer than 2048 bytes"));
        }
        let account = token.account.filter(|account| entry.account.set(account));
        if account.is_none() {
            entry.account = Text::EMPTY;
        }
        if let Some(rotated) = token.refresh_token.filter(|r| *r != refresh_token) {
            if entry.refresh.set(&rotated) {
                entry.persist = true;
                drop(cache);
                crate::sync::databases::wake_worker();
            }
        }
        return Ok((token.access_token, account));
    }
}

/// Marks the end of this process's refresh of a grant, however it ends
/// (also when the request is abandoned), so others need not wait it out.
struct Refreshing(pg_sys::Oid);

impl Drop for Refreshing {
    fn drop(&mut self) {
        let mut cache = CACHE.exclusive();
        entry_of(&mut cache, self.0).refreshing_since_us = 0;
    }
}

/// Forgets an access token the API refused (401), so the next call refreshes.
pub fn refused(grant: &OAuthGrant, token: &str) {
    let mut cache = CACHE.exclusive();
    let entry = entry_of(&mut cache, grant.mapping);
    if entry.access.get().as_deref() == Some(token) {
        entry.access = Text::EMPTY;
        entry.account = Text::EMPTY;
        entry.refresh_at_us = 0;
    }
}

struct Token {
    access_token: String,
    expires_in_us: Option<i64>,
    refresh_token: Option<String>,
    account: Option<String>,
}

async fn refresh(server: &ServerConfig, grant: &OAuthGrant, refresh_token: &str) -> Result<Token> {
    let label = server.provider.label();
    let Some(token_url) = &server.token_url else {
        return Err(SequinError::new(
            ErrorKind::InvalidOptionValue,
            format!("server \"{}\" has OAuth user mappings but no token_url", server.name),
        )
        .with_hint("ALTER SERVER … OPTIONS (ADD token_url 'https://…');"));
    };
    let request = ApiRequest {
        method: Method::Post,
        path: String::new(),
        body: Some(Body::Form(vec![
            ("grant_type".into(), "refresh_token".into()),
            ("client_id".into(), grant.client_id.clone()),
            ("client_secret".into(), grant.client_secret.clone()),
            ("refresh_token".into(), refresh_token.to_string()),
        ])),
        idempotency_key: None,
        headers: Vec::new(),
    };
    let route = format!("POST {}", token_url.split('?').next().unwrap_or(token_url));
    // GitHub answers form-encoded unless asked for JSON.
    let accept = [("Accept".to_string(), "application/json".to_string())];
    let response = http::send(token_url, &accept, &request, server.timeout)
        .await
        .map_err(|e| e.into_error(label, &request))?;
    let body = response.json();
    // GitHub refuses a refresh with a 200 whose body is an `error`.
    let refused_in_body = body.as_ref().is_some_and(|b| b.get("error").is_some() && b.get("access_token").is_none());
    if !response.is_success() || refused_in_body {
        let text = |key: &str| body.as_ref().and_then(|b| b.get(key)).and_then(Value::as_str).map(str::to_string);
        let why = text("message").or_else(|| text("error_description")).or_else(|| text("error")).map(|w| crate::providers::cut_api_text(&w));
        let kind = if response.status >= 500 { ErrorKind::Upstream } else { ErrorKind::Unauthorized };
        return Err(SequinError::new(
            kind,
            format!("[{label}]: OAuth refresh refused: {}", why.unwrap_or_else(|| format!("HTTP {}", response.status))),
        )
        .with_detail(format!("HTTP {} on {route}", response.status))
        .with_hint("The refresh token may have been revoked: authorize again and set refresh_token in the user mapping."));
    }
    let access_token = body.as_ref().and_then(|b| b.get("access_token")).and_then(Value::as_str);
    let Some(access_token) = access_token.filter(|t| !t.is_empty()) else {
        return Err(SequinError::new(ErrorKind::Upstream, format!("[{label}]: the OAuth token reply has no access_token"))
            .with_detail(format!("HTTP {} on {route}", response.status)));
    };
    let body = body.as_ref();
    Ok(Token {
        access_token: access_token.to_string(),
        // Bounded so that `now + lifetime` cannot overflow (a day at most:
        // a longer-lived token is still refreshed daily).
        expires_in_us: body
            .and_then(|b| b.get("expires_in"))
            .and_then(Value::as_f64)
            .map(|s| (s.clamp(0.0, 86_400.0) * 1e6) as i64),
        refresh_token: body.and_then(|b| b.get("refresh_token")).and_then(Value::as_str).map(str::to_string),
        account: body.and_then(|b| server.provider.account_from_token_reply(b)),
    })
}

/// Rotated refresh tokens of mappings in this database still to be written
/// to their user mappings (for the sync worker).
pub fn take_rotated() -> Vec<(pg_sys::Oid, String)> {
    let database = u32::from(unsafe { pg_sys::MyDatabaseId });
    let mut cache = CACHE.exclusive();
    cache
        .entries
        .iter_mut()
        .filter(|e| e.persist && e.database == database)
        .filter_map(|e| {
            e.persist = false;
            e.refresh.get().map(|token| (pg_sys::Oid::from(e.mapping), token))
        })
        .collect()
}

/// Puts a rotated refresh token back to be persisted later (the write failed).
pub fn persist_later(mapping: pg_sys::Oid, token: &str) {
    let mut cache = CACHE.exclusive();
    let entry = entry_of(&mut cache, mapping);
    if entry.refresh.get().as_deref() == Some(token) {
        entry.persist = true;
    }
}
