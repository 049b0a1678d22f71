//! Everything the server remembers: accounts (one per API key), OAuth grants
//! and tokens, faults, the request log and the global config. Each account has its own lock so tests
//! using different keys never wait on each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::faults::Faults;
use crate::github::GithubState;
use crate::ids::RequestIds;
use crate::oauth::OAuth;
use crate::reqlog::RequestLog;
use crate::salesforce::SalesforceState;
use crate::stripe::StripeState;

/// A panic in one handler must not wedge the whole server.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Account {
    pub revoked: bool,
    pub stripe: StripeState,
    pub salesforce: SalesforceState,
    pub github: GithubState,
}

impl Account {
    pub fn new(key: &str) -> Account {
        Account {
            revoked: false,
            stripe: StripeState::new(key),
            salesforce: SalesforceState::new(key),
            github: GithubState::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Added before every non-admin request.
    #[serde(default)]
    pub latency_ms: u64,
}

pub struct App {
    accounts: Mutex<HashMap<String, Arc<Mutex<Account>>>>,
    faults: Mutex<Faults>,
    requests: Mutex<RequestLog>,
    config: Mutex<Config>,
    oauth: Mutex<OAuth>,
    pub request_ids: RequestIds,
    /// `SEQUIN_MOCK_LOG=1`: one line per API request on stderr.
    pub log_requests: bool,
}

impl App {
    pub fn new(log_requests: bool) -> App {
        App {
            accounts: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(RequestLog::default()),
            config: Mutex::new(Config::default()),
            oauth: Mutex::new(OAuth::default()),
            request_ids: RequestIds::default(),
            log_requests,
        }
    }

    /// The account for this key, created empty on first use.
    pub fn account(&self, key: &str) -> Arc<Mutex<Account>> {
        lock(&self.accounts)
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Account::new(key))))
            .clone()
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub fn requests(&self) -> MutexGuard<'_, RequestLog> {
        lock(&self.requests)
    }

    pub fn oauth(&self) -> MutexGuard<'_, OAuth> {
        lock(&self.oauth)
    }

    pub fn config(&self) -> Config {
        lock(&self.config).clone()
    }

    pub fn set_config(&self, config: Config) {
        *lock(&self.config) = config;
    }

    /// Forgets everything: accounts, OAuth grants and tokens, faults, request log, config.
    pub fn reset_all(&self) {
        lock(&self.accounts).clear();
        self.oauth().clear();
        self.faults().clear();
        self.requests().clear(None);
        self.set_config(Config::default());
    }

    /// Forgets one account's data, revocation, OAuth grants and tokens,
    /// request log and the faults aimed at it.
    pub fn reset_account(&self, key: &str) {
        lock(&self.accounts).remove(key);
        self.oauth().reset_account(key);
        self.faults().clear_account(key);
        self.requests().clear(Some(key));
    }
}
