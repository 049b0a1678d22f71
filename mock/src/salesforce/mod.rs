//! The Salesforce subset: the OAuth refresh-token endpoint, SOQL queries
//! (the shapes a sync sends) with query locators, the deleted-records
//! endpoint, single-record CRUD, sObject Collections (writes and retrieve),
//! describeGlobal and describe, for the types of each account's own schema
//! (`default_org.rs` to start with, changed by the admin), the daily API
//! request limit with `Sforce-Limit-Info`. State lives per account; a
//! request's account is that of its access token (see crate::oauth).

pub mod admin;
pub mod collections;
pub mod default_org;
pub mod deleted;
pub mod describe;
pub mod errors;
pub mod ops;
pub mod query;
pub mod records;
pub mod retrieve;
pub mod schema;
pub mod schema_admin;
pub mod sfid;
pub mod soql;
pub mod store;
pub mod time;
pub mod token;
pub mod typed_values;

use std::sync::Arc;

use hyper::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::http::{Reply, Req};
use crate::ids;
use crate::state::{lock, App};
use crate::stripe::form;
use errors::SfError;
use schema::SObject;
use store::TypeStore;

pub use token::TOKEN_PATH;

pub const DATA_PREFIX: &str = "/services/data/";
/// Salesforce keeps deleted records' ids 15 days.
pub const DELETED_RETENTION_MS: i64 = 15 * time::DAY_MS;

/// Per-account knobs, `/_admin/salesforce/settings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// API requests allowed per (UTC) day.
    pub daily_limit: u64,
    /// The deleted endpoint's granularity: Salesforce ignores seconds (60000).
    pub deleted_precision_ms: i64,
    /// Open query locators kept; the oldest is dropped beyond that.
    pub max_cursors: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            daily_limit: 15_000,
            deleted_precision_ms: 60_000,
            max_cursors: 10,
        }
    }
}

/// One account's Salesforce org.
pub struct SalesforceState {
    key: String,
    /// The org's schema. A change replaces a type's `Arc`, so a query
    /// locator keeps the schema its records were read with.
    types: Vec<Arc<SObject>>,
    /// One per type, in the same order.
    stores: Vec<TypeStore>,
    pub cursors: query::Cursors,
    pub settings: Settings,
    pub api_usage: u64,
    usage_day: i64,
    /// Deletions before this are gone (set when the admin expires the window).
    pub deleted_floor_ms: i64,
}

impl SalesforceState {
    pub fn new(key: &str) -> SalesforceState {
        let types: Vec<Arc<SObject>> = default_org::types(time::now_ms())
            .into_iter()
            .map(Arc::new)
            .collect();
        SalesforceState {
            key: key.to_string(),
            stores: types
                .iter()
                .map(|t| TypeStore::new(t, ids::salt(key, t.key_prefix.as_deref().unwrap_or(""))))
                .collect(),
            types,
            cursors: query::Cursors::new(key),
            settings: Settings::default(),
            api_usage: 0,
            usage_day: time::now_ms().div_euclid(time::DAY_MS),
            deleted_floor_ms: i64::MIN,
        }
    }

    fn type_index(&self, t: &SObject) -> usize {
        self.types
            .iter()
            .position(|x| x.name == t.name)
            .expect("a store per type")
    }

    /// Every type of the org, in describeGlobal's order.
    pub fn types(&self) -> &[Arc<SObject>] {
        &self.types
    }

    /// By name, case-insensitively (as the API accepts them).
    pub fn sobject(&self, name: &str) -> Option<Arc<SObject>> {
        self.types
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// The type an 18-character id belongs to, by its key prefix.
    pub fn sobject_of_id(&self, id: &str) -> Option<Arc<SObject>> {
        self.types
            .iter()
            .find(|t| t.key_prefix.as_deref().is_some_and(|p| id.starts_with(p)))
            .cloned()
    }

    /// Puts a changed version of a type in place of the old one.
    pub fn replace_type(&mut self, t: SObject) {
        let i = self.type_index(&t);
        self.types[i] = Arc::new(t);
    }

    pub fn store(&self, t: &SObject) -> &TypeStore {
        &self.stores[self.type_index(t)]
    }

    pub fn store_mut(&mut self, t: &SObject) -> &mut TypeStore {
        let i = self.type_index(t);
        &mut self.stores[i]
    }

    /// The org id (`00D…`) and user id (`005…`) tokens are issued for.
    pub fn org_and_user(&self) -> (String, String) {
        (
            sfid::make("00D", ids::salt(&self.key, "00D"), 0),
            sfid::make("005", ids::salt(&self.key, "005"), 0),
        )
    }

    /// Where the 15-day deleted-records window starts now.
    pub fn earliest_deleted_ms(&self, now_ms: i64) -> i64 {
        self.deleted_floor_ms.max(now_ms - DELETED_RETENTION_MS)
    }

    /// Purges deletions older than the window from every type.
    pub fn purge_deleted(&mut self, now_ms: i64) {
        let floor = self.earliest_deleted_ms(now_ms);
        for s in &mut self.stores {
            s.purge_deleted_before(floor);
        }
    }

    /// Counts one API request, or refuses it when the day's limit is spent.
    fn count_request(&mut self, now_ms: i64) -> Result<(), SfError> {
        let day = now_ms.div_euclid(time::DAY_MS);
        if day != self.usage_day {
            self.usage_day = day;
            self.api_usage = 0;
        }
        if self.api_usage >= self.settings.daily_limit {
            return Err(SfError::request_limit());
        }
        self.api_usage += 1;
        Ok(())
    }

    pub fn limit_info(&self) -> String {
        format!("api-usage={}/{}", self.api_usage, self.settings.daily_limit)
    }
}

/// The access token of `Authorization: Bearer <token>` (or `OAuth <token>`).
pub fn access_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| rest.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Whether a path is one of Salesforce's.
pub fn is_salesforce_path(path: &str) -> bool {
    path == TOKEN_PATH || path.starts_with(DATA_PREFIX)
}

/// Answers one request under `/services/`.
pub fn handle(app: &App, req: &Req) -> Reply {
    if req.path == TOKEN_PATH {
        return token::endpoint(app, req);
    }
    let Some(key) = access_token(&req.headers).and_then(|t| app.oauth().access(&t)) else {
        return SfError::invalid_session().reply();
    };
    let account = app.account(&key);
    let mut account = lock(&account);
    if account.revoked {
        return SfError::invalid_session().reply();
    }
    let sf = &mut account.salesforce;
    let now = time::now_ms();
    let mut reply = match sf.count_request(now) {
        Ok(()) => route(sf, req, now).unwrap_or_else(|e| e.reply()),
        Err(e) => e.reply(),
    };
    reply.set_header("Sforce-Limit-Info", sf.limit_info());
    reply
}

/// `v60.0` and the like.
fn is_version(s: &str) -> bool {
    s.strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && minor == "0"
        })
}

fn method_not_allowed(method: &str, allowed: &str) -> SfError {
    SfError::new(
        405,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    )
}

fn route(sf: &mut SalesforceState, req: &Req, now: i64) -> Result<Reply, SfError> {
    let rest = req.path[DATA_PREFIX.len()..].trim_end_matches('/');
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| form::percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some((version, segments)) = segments.split_first() else {
        return Err(SfError::not_found());
    };
    if !is_version(version) {
        return Err(SfError::not_found());
    }
    let method = req.method.as_str();
    let sobject =
        |sf: &SalesforceState, name: &str| sf.sobject(name).ok_or_else(SfError::not_found);
    match segments {
        ["query"] => match method {
            "GET" => query::run(sf, req, version, now),
            m => Err(method_not_allowed(m, "GET")),
        },
        ["query", locator] => match method {
            "GET" => query::more(sf, locator, version),
            m => Err(method_not_allowed(m, "GET")),
        },
        ["sobjects"] => match method {
            "GET" => Ok(describe::global(sf, version)),
            m => Err(method_not_allowed(m, "GET")),
        },
        ["sobjects", name] => {
            let t = sobject(sf, name)?;
            match method {
                "POST" => records::create(sf, &t, req, now),
                m => Err(method_not_allowed(m, "POST")),
            }
        }
        ["sobjects", name, "describe"] => {
            let t = sobject(sf, name)?;
            match method {
                "GET" => describe::describe(&t, req, version),
                m => Err(method_not_allowed(m, "GET")),
            }
        }
        ["sobjects", name, "deleted"] => {
            let t = sobject(sf, name)?;
            match method {
                "GET" => deleted::list(sf, &t, req, now),
                m => Err(method_not_allowed(m, "GET")),
            }
        }
        ["sobjects", name, id] => {
            let t = sobject(sf, name)?;
            match method {
                "GET" => records::retrieve(sf, &t, id, req, version),
                "PATCH" => records::update(sf, &t, id, req, now),
                "DELETE" => records::delete(sf, &t, id, now),
                m => Err(method_not_allowed(m, "GET,PATCH,DELETE")),
            }
        }
        ["composite", "sobjects"] => match method {
            "POST" => collections::create(sf, req, now),
            "PATCH" => collections::update(sf, req, now),
            "DELETE" => collections::delete(sf, req, now),
            m => Err(method_not_allowed(m, "POST,PATCH,DELETE")),
        },
        ["composite", "sobjects", name] => {
            let t = sobject(sf, name)?;
            match method {
                "GET" | "POST" => retrieve::records(sf, &t, req, version),
                m => Err(method_not_allowed(m, "GET,POST")),
            }
        }
        _ => Err(SfError::not_found()),
    }
}

/// A JSON object body, or Salesforce's parser error.
pub fn json_object(req: &Req) -> Result<Map<String, Value>, SfError> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(SfError::json_parser(format!(
            "Cannot deserialize instance of SObject from {} value",
            if other.is_array() {
                "START_ARRAY"
            } else {
                "scalar"
            }
        ))),
        Err(e) => Err(SfError::json_parser(format!(
            "Unexpected character in JSON body: {e}"
        ))),
    }
}

/// The route for request counts: record ids and query locators replaced.
pub fn route_name(method: &str, path: &str) -> String {
    let Some(rest) = path.strip_prefix(DATA_PREFIX) else {
        return format!("{method} {path}");
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        [v, "query", _] => format!("{method} {DATA_PREFIX}{v}/query/{{locator}}"),
        [v, "sobjects", t, id] if *id != "deleted" && *id != "describe" => {
            format!("{method} {DATA_PREFIX}{v}/sobjects/{t}/{{id}}")
        }
        _ => format!("{method} {}", path.trim_end_matches('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_route_names() {
        assert!(is_version("v60.0") && is_version("v9.0"));
        assert!(!is_version("v60") && !is_version("60.0") && !is_version("v60.1"));
        assert_eq!(
            route_name("GET", "/services/data/v60.0/query/01gAB-2000"),
            "GET /services/data/v60.0/query/{locator}"
        );
        assert_eq!(
            route_name("PATCH", "/services/data/v60.0/sobjects/Contact/003x"),
            "PATCH /services/data/v60.0/sobjects/Contact/{id}"
        );
        assert_eq!(
            route_name("GET", "/services/data/v60.0/sobjects/Contact/deleted/"),
            "GET /services/data/v60.0/sobjects/Contact/deleted"
        );
        assert_eq!(
            route_name("GET", "/services/data/v60.0/query"),
            "GET /services/data/v60.0/query"
        );
    }

    #[test]
    fn daily_limit() {
        let mut s = SalesforceState::new("sk_test_l");
        s.settings.daily_limit = 2;
        let now = time::now_ms();
        assert!(s.count_request(now).is_ok());
        assert!(s.count_request(now).is_ok());
        assert_eq!(
            s.count_request(now).unwrap_err().code,
            "REQUEST_LIMIT_EXCEEDED"
        );
        assert_eq!(s.limit_info(), "api-usage=2/2");
        // A new day starts over.
        assert!(s.count_request(now + time::DAY_MS).is_ok());
        assert_eq!(s.limit_info(), "api-usage=1/2");
    }
}
