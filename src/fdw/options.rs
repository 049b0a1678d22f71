//! FDW options: the validator, and the typed configs the rest of the
//! extension reads. Every option is parsed here and only here, so the
//! validator refuses at CREATE/ALTER time exactly what would fail later.

use crate::error::{ErrorKind, OrRaise, Result, SequinError};
use crate::providers::{self, Provider};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::CStr;
use std::time::Duration;

const SERVER_OPTIONS: &[&str] =
    &["provider", "base_url", "rate_limit", "burst", "poll_interval", "timeout", "token_url", "external_id", "metadata"];
const USER_MAPPING_OPTIONS: &[&str] = &["api_key", "client_id", "client_secret", "refresh_token"];
const TABLE_OPTIONS: &[&str] = &["collection", "delete_mode", "max_rows_per_statement"];

const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ServerConfig {
    /// Set when loaded from the catalog (InvalidOid while validating).
    pub oid: pg_sys::Oid,
    pub name: String,
    pub provider: &'static dyn Provider,
    pub base_url: String,
    pub poll_interval: Duration,
    pub timeout: Duration,
    /// Requests per second, shared by all backends and the worker.
    pub rate_limit: Option<f64>,
    /// Requests that may be saved up and sent at once.
    pub burst: f64,
    /// Where OAuth user mappings exchange their refresh token.
    pub token_url: Option<String>,
    pub external_id: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    Soft,
    Hard,
}

pub struct TableConfig {
    pub collection: String,
    pub delete_mode: DeleteMode,
    /// Lowers the provider's per-statement row limit (never raises it).
    pub max_rows_per_statement: Option<usize>,
}

/// What a request needs to authenticate. Never printed.
pub enum Credentials {
    /// An API key or personal access token, sent as it is.
    ApiKey(String),
    /// An OAuth2 grant: access tokens come from the server's `token_url`.
    OAuth(OAuthGrant),
}

pub struct OAuthGrant {
    /// The user mapping the grant belongs to (its tokens are cached under it).
    pub mapping: pg_sys::Oid,
    pub client_id: String,
    pub client_secret: String,
    /// As stored in the user mapping (a rotated one may be newer in memory).
    pub refresh_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ApiKey(_) => f.write_str("Credentials::ApiKey(<redacted>)"),
            Credentials::OAuth(grant) => write!(f, "Credentials::OAuth(mapping {}, <redacted>)", u32::from(grant.mapping)),
        }
    }
}

fn invalid_value(option: &str, value: &str, expected: &str) -> SequinError {
    SequinError::new(ErrorKind::InvalidOptionValue, format!("invalid value for option \"{option}\": \"{value}\""))
        .with_hint(expected.to_string())
}

fn missing(option: &str, context: &str) -> SequinError {
    SequinError::new(ErrorKind::InvalidOptionValue, format!("option \"{option}\" is required for a {context}"))
}

fn get<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn duration_option(options: &[(String, String)], name: &str, default: Duration) -> Result<Duration> {
    match get(options, name) {
        None => Ok(default),
        Some(text) => crate::time::parse_duration(text)
            .ok_or_else(|| invalid_value(name, text, "Use a positive duration such as '5s', '500ms' or '2min'.")),
    }
}

pub fn parse_provider(name: &str) -> Result<&'static dyn Provider> {
    providers::by_name(name).ok_or_else(|| {
        invalid_value("provider", name, &format!("Valid providers: {}.", providers::PROVIDER_NAMES.join(", ")))
    })
}

pub fn parse_server(name: &str, options: &[(String, String)]) -> Result<ServerConfig> {
    let provider = parse_provider(get(options, "provider").ok_or_else(|| missing("provider", "sequin_fdw server"))?)?;
    let base_url = get(options, "base_url").unwrap_or(provider.default_base_url()).to_string();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) || base_url.len() < 10 {
        return Err(invalid_value("base_url", &base_url, "Use an absolute http:// or https:// URL."));
    }
    let rate_limit = match get(options, "rate_limit") {
        None => None,
        Some(text) => match text.trim().parse::<f64>() {
            Ok(rate) if rate.is_finite() && rate > 0.0 => Some(rate),
            _ => return Err(invalid_value("rate_limit", text, "Use a positive number of requests per second.")),
        },
    };
    let burst = match get(options, "burst") {
        None => 1.0,
        Some(text) => match text.trim().parse::<f64>() {
            Ok(burst) if burst.is_finite() && burst >= 1.0 => burst,
            _ => return Err(invalid_value("burst", text, "Use a number of requests, at least 1.")),
        },
    };
    if let Some(url) = get(options, "token_url") {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid_value("token_url", url, "Use the absolute http:// or https:// URL of the OAuth token endpoint."));
        }
    }
    let metadata = match get(options, "metadata") {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value @ serde_json::Value::Object(_)) => Some(value),
            _ => return Err(invalid_value("metadata", text, "Use a JSON object, e.g. '{\"team\":\"billing\"}'.")),
        },
    };
    Ok(ServerConfig {
        oid: pg_sys::InvalidOid,
        name: name.to_string(),
        provider,
        base_url,
        poll_interval: duration_option(options, "poll_interval", DEFAULT_POLL_INTERVAL)?,
        timeout: duration_option(options, "timeout", DEFAULT_TIMEOUT)?,
        rate_limit,
        burst,
        token_url: get(options, "token_url").map(str::to_string),
        external_id: get(options, "external_id").map(str::to_string),
        metadata,
    })
}

pub fn parse_table(options: &[(String, String)]) -> Result<TableConfig> {
    let collection = get(options, "collection").ok_or_else(|| missing("collection", "sequin_fdw foreign table"))?;
    let delete_mode = match get(options, "delete_mode").unwrap_or("soft") {
        "soft" => DeleteMode::Soft,
        "hard" => DeleteMode::Hard,
        other => return Err(invalid_value("delete_mode", other, "Use 'soft' (flag deleted rows) or 'hard' (remove them).")),
    };
    let max_rows_per_statement = match get(options, "max_rows_per_statement") {
        None => None,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(invalid_value("max_rows_per_statement", text, "Use a positive number of rows.")),
        },
    };
    Ok(TableConfig { collection: collection.to_string(), delete_mode, max_rows_per_statement })
}

pub fn parse_credentials(server: &str, mapping: pg_sys::Oid, options: &[(String, String)]) -> Result<Credentials> {
    let nonempty = |name: &str| get(options, name).filter(|v| !v.is_empty());
    if let Some(key) = nonempty("api_key") {
        return Ok(Credentials::ApiKey(key.to_string()));
    }
    match (nonempty("client_id"), nonempty("client_secret"), nonempty("refresh_token")) {
        (Some(client_id), Some(client_secret), Some(refresh_token)) => Ok(Credentials::OAuth(OAuthGrant {
            mapping,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            refresh_token: refresh_token.to_string(),
        })),
        (None, None, None) => Err(SequinError::new(
            ErrorKind::Unauthorized,
            format!("the user mapping for server \"{server}\" has no api_key"),
        )
        .with_hint(format!(
            "ALTER USER MAPPING FOR CURRENT_USER SERVER {server} OPTIONS (ADD api_key '…'); or, for OAuth, client_id, client_secret and refresh_token."
        ))),
        _ => Err(SequinError::new(
            ErrorKind::Unauthorized,
            format!("the user mapping for server \"{server}\" has an incomplete OAuth grant"),
        )
        .with_hint("An OAuth user mapping needs client_id, client_secret and refresh_token.")),
    }
}

/// Checks the options of one catalog object; raised by the validator.
fn validate(options: &[(String, String)], catalog: pg_sys::Oid) -> Result<()> {
    let (valid, context): (&[&str], &str) = match catalog {
        pg_sys::ForeignServerRelationId => (SERVER_OPTIONS, "server"),
        pg_sys::UserMappingRelationId => (USER_MAPPING_OPTIONS, "user mapping"),
        pg_sys::ForeignTableRelationId => (TABLE_OPTIONS, "foreign table"),
        pg_sys::AttributeRelationId => (&[], "column"),
        _ => (&[], "foreign-data wrapper"),
    };
    for (name, _) in options {
        if !valid.contains(&name.as_str()) {
            let hint = if valid.is_empty() {
                format!("A sequin_fdw {context} takes no options.")
            } else {
                format!("Valid options in this context are: {}.", valid.join(", "))
            };
            return Err(SequinError::new(ErrorKind::InvalidOptionName, format!("invalid option \"{name}\""))
                .with_hint(hint));
        }
    }
    match catalog {
        pg_sys::ForeignServerRelationId => parse_server("", options).map(|_| ()),
        pg_sys::ForeignTableRelationId => parse_table(options).map(|_| ()),
        // An ALTER USER MAPPING may drop the key on its way to adding another.
        _ => Ok(()),
    }
}

#[pg_extern]
fn sequin_fdw_validator(options: Vec<Option<String>>, catalog: pg_sys::Oid) {
    let options: Vec<(String, String)> = options
        .into_iter()
        .flatten()
        .map(|item| match item.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (item, String::new()),
        })
        .collect();
    validate(&options, catalog).or_raise();
}

/// A catalog option list (`List *` of `DefElem`) as name/value pairs.
///
/// # Safety
/// `list` must be a valid options list from a catalog lookup.
pub unsafe fn options_from_list(list: *mut pg_sys::List) -> Vec<(String, String)> {
    let list = PgList::<pg_sys::DefElem>::from_pg(list);
    list.iter_ptr()
        .map(|def| {
            let name = CStr::from_ptr((*def).defname).to_string_lossy().into_owned();
            let value = CStr::from_ptr(pg_sys::defGetString(def)).to_string_lossy().into_owned();
            (name, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn server_options_parse_with_defaults() {
        let config = parse_server("s", &opts(&[("provider", "stripe"), ("poll_interval", "1s")])).unwrap();
        assert_eq!(config.base_url, "https://api.stripe.com");
        assert_eq!(config.poll_interval, Duration::from_secs(1));
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_server_options_are_refused_with_a_hint() {
        let error = parse_server("s", &opts(&[("provider", "paypal")])).err().unwrap();
        assert_eq!(error.kind, ErrorKind::InvalidOptionValue);
        assert!(error.hint.unwrap().contains("stripe"));
        assert!(parse_server("s", &opts(&[])).is_err());
        assert!(parse_server("s", &opts(&[("provider", "stripe"), ("poll_interval", "soon")])).is_err());
        assert!(parse_server("s", &opts(&[("provider", "stripe"), ("metadata", "[1]")])).is_err());
        assert!(parse_server("s", &opts(&[("provider", "stripe"), ("rate_limit", "-3")])).is_err());
        assert!(parse_server("s", &opts(&[("provider", "stripe"), ("burst", "0.5")])).is_err());
        assert!(parse_server("s", &opts(&[("provider", "stripe"), ("base_url", "ftp://x")])).is_err());
    }

    #[test]
    fn table_options_need_a_collection() {
        assert!(parse_table(&opts(&[])).is_err());
        assert_eq!(parse_table(&opts(&[("collection", "customers"), ("delete_mode", "hard")])).unwrap().delete_mode, DeleteMode::Hard);
        assert!(parse_table(&opts(&[("collection", "customers"), ("delete_mode", "maybe")])).is_err());
        let limited = parse_table(&opts(&[("collection", "customers"), ("max_rows_per_statement", "5")])).unwrap();
        assert_eq!(limited.max_rows_per_statement, Some(5));
        assert!(parse_table(&opts(&[("collection", "customers"), ("max_rows_per_statement", "0")])).is_err());
    }

    #[test]
    fn missing_api_key_is_an_authorization_error() {
        let error = parse_credentials("stripe", pg_sys::InvalidOid, &opts(&[])).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unauthorized);
        assert!(error.message.contains("\"stripe\""));
        let partial = parse_credentials("stripe", pg_sys::InvalidOid, &opts(&[("client_id", "c")])).unwrap_err();
        assert!(partial.message.contains("incomplete OAuth grant"));
        let grant = &[("client_id", "c"), ("client_secret", "s"), ("refresh_token", "r")];
        assert!(matches!(parse_credentials("stripe", pg_sys::InvalidOid, &opts(grant)), Ok(Credentials::OAuth(_))));
    }
}

/// The server, with its parsed options, that a foreign table belongs to.
pub struct ForeignTableConfig {
    pub server_oid: pg_sys::Oid,
    pub server_owner: pg_sys::Oid,
    pub server: ServerConfig,
    pub table: TableConfig,
}

/// Reads and parses the options of a foreign table and its server.
pub fn load_foreign_table(relid: pg_sys::Oid) -> Result<ForeignTableConfig> {
    unsafe {
        let table = pg_sys::GetForeignTable(relid);
        let server = pg_sys::GetForeignServer((*table).serverid);
        let name = CStr::from_ptr((*server).servername).to_string_lossy().into_owned();
        Ok(ForeignTableConfig {
            server_oid: (*server).serverid,
            server_owner: (*server).owner,
            server: ServerConfig {
                oid: (*server).serverid,
                ..parse_server(&name, &options_from_list((*server).options))?
            },
            table: parse_table(&options_from_list((*table).options))?,
        })
    }
}

/// The credentials of `user` for a server, falling back to the PUBLIC
/// mapping; a clear 28000 when there is neither.
pub fn load_credentials(server_oid: pg_sys::Oid, server_name: &str, user: pg_sys::Oid) -> Result<Credentials> {
    unsafe {
        let has_mapping = |user: pg_sys::Oid| {
            pg_sys::SearchSysCacheExists(
                pg_sys::SysCacheIdentifier::USERMAPPINGUSERSERVER as i32,
                user.into(),
                server_oid.into(),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
            )
        };
        if !has_mapping(user) && !has_mapping(pg_sys::InvalidOid) {
            let role = CStr::from_ptr(pg_sys::GetUserNameFromId(user, true).cast_const());
            return Err(SequinError::new(
                ErrorKind::Unauthorized,
                format!("no user mapping for role \"{}\" on server \"{server_name}\"", role.to_string_lossy()),
            )
            .with_hint(format!("CREATE USER MAPPING FOR CURRENT_USER SERVER {server_name} OPTIONS (api_key '…');")));
        }
        let mapping = pg_sys::GetUserMapping(user, server_oid);
        parse_credentials(server_name, (*mapping).umid, &options_from_list((*mapping).options))
    }
}
