//! FDW options: the validator, and the typed configs the rest of the
//! extension reads. Every option is parsed here and only here, so the
//! validator refuses at CREATE/ALTER time exactly what would fail later.

use crate::error::{ErrorKind, OrRaise, Result, SequinError};
use crate::providers::{self, Provider};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::CStr;
use std::ops::RangeInclusive;
use std::time::Duration;

const SERVER_OPTIONS: &[&str] =
    &["provider", "base_url", "rate_limit", "burst", "poll_interval", "timeout", "token_url", "external_id", "metadata"];
const USER_MAPPING_OPTIONS: &[&str] = &["api_key", "client_id", "client_secret", "refresh_token", "proxy_token"];
const TABLE_OPTIONS: &[&str] =
    &["collection", "delete_mode", "max_rows_per_statement", "sweep_interval", "shadow_table", "backfill_ranges"];
/// How many parts of one collection's backfill may be fetched at once.
pub const BACKFILL_RANGES_BOUNDS: std::ops::RangeInclusive<usize> = 1..=16;
/// `field`: the API's name of the field a column holds (DESIGN §4a).
const COLUMN_OPTIONS: &[&str] = &["field"];

const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

// The bounds of every numeric option, quoted by the validator's HINTs (and
// the README). Each keeps the arithmetic done with the value far from
// overflow, and refuses what can only be a typo: a poll more often than 10
// times a second, a request allowed to hang for hours.
pub const POLL_INTERVAL_BOUNDS: RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(24 * 3600);
pub const TIMEOUT_BOUNDS: RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(3600);
/// Requests per second.
pub const RATE_LIMIT_BOUNDS: RangeInclusive<f64> = 0.01..=100_000.0;
/// Requests saved up.
pub const BURST_BOUNDS: RangeInclusive<f64> = 1.0..=100_000.0;
pub const MAX_ROWS_PER_STATEMENT_BOUNDS: RangeInclusive<usize> = 1..=10_000;
/// A sweep lists the whole collection: more often than every second is a
/// typo, and a month is as rare as a check is still worth it.
pub const SWEEP_INTERVAL_BOUNDS: RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(30 * 24 * 3600);

#[derive(Clone)]
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
    /// The provider's own options (GitHub's `repository`), checked by it.
    pub settings: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    Soft,
    Hard,
}

#[derive(Clone)]
pub struct TableConfig {
    pub collection: String,
    pub delete_mode: DeleteMode,
    /// Lowers the provider's per-statement row limit (never raises it).
    pub max_rows_per_statement: Option<usize>,
    pub sweep_interval: SweepInterval,
    /// Ranges of the backfill fetched at once (1: one page after another).
    pub backfill_ranges: usize,
    /// The shadow table, as registration recorded it (`sequin_shadow.x`):
    /// a dump carries it, so a restore finds the restored shadow table.
    pub shadow_table: Option<String>,
    /// Options of one provider (GitHub's `close_reason`): checked against
    /// the server's provider when the table is loaded.
    pub settings: Vec<(String, String)>,
}

/// How often a table is compared in full with the API (a reconciliation
/// sweep): the `sweep_interval` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepInterval {
    /// Not given: the provider's default for the collection.
    ProviderDefault,
    Off,
    Every(Duration),
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

/// `1h`, `2min`, `5s` or `500ms`, whichever is exact: the way the HINTs
/// write the bounds, in the units `parse_duration` reads.
fn show_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}min", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

fn duration_option(
    options: &[(String, String)],
    name: &str,
    default: Duration,
    bounds: &RangeInclusive<Duration>,
) -> Result<Duration> {
    match get(options, name) {
        None => Ok(default),
        Some(text) => crate::time::parse_duration(text).filter(|d| bounds.contains(d)).ok_or_else(|| {
            let (low, high) = (show_duration(*bounds.start()), show_duration(*bounds.end()));
            invalid_value(name, text, &format!("Use a duration from {low} to {high}, such as '5s', '500ms' or '2min'."))
        }),
    }
}

/// A number within `bounds` (NaN and infinities are in no range).
fn number_option(
    options: &[(String, String)],
    name: &str,
    bounds: &RangeInclusive<f64>,
    what: &str,
) -> Result<Option<f64>> {
    match get(options, name) {
        None => Ok(None),
        Some(text) => match text.trim().parse::<f64>() {
            Ok(number) if bounds.contains(&number) => Ok(Some(number)),
            _ => Err(invalid_value(
                name,
                text,
                &format!("Use a number of {what} from {} to {}.", bounds.start(), bounds.end()),
            )),
        },
    }
}

/// The host a URL option names must be in `sequin.allowed_hosts`
/// (`allowed`, the setting's text).
fn check_host(option: &str, url: &str, allowed: &str) -> Result<()> {
    match crate::http::check_url_host(url, allowed) {
        Ok(()) => Ok(()),
        Err(crate::http::HostRefusal::NoHost) => {
            Err(invalid_value(option, url, "Use an absolute http:// or https:// URL with a host name."))
        }
        Err(crate::http::HostRefusal::NotAllowed(host)) => Err(SequinError::new(
            ErrorKind::InvalidOptionValue,
            format!("host \"{host}\" of option \"{option}\" is not allowed"),
        )
        .with_hint(format!(
            "A superuser can allow it in the setting sequin.allowed_hosts, which now lists: {}.",
            crate::http::show_allowed_hosts(allowed)
        ))),
    }
}

/// Checks the hosts of a server's base_url and token_url against
/// `sequin.allowed_hosts` (`allowed`, the setting's text).
pub fn check_server_hosts(config: &ServerConfig, allowed: &str) -> Result<()> {
    check_host("base_url", &config.base_url, allowed)?;
    match &config.token_url {
        Some(url) => check_host("token_url", url, allowed),
        None => Ok(()),
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
    if crate::http::url_host(&base_url).is_none() {
        return Err(invalid_value("base_url", &base_url, "Use an absolute http:// or https:// URL with a host name."));
    }
    let rate_limit = number_option(options, "rate_limit", &RATE_LIMIT_BOUNDS, "requests per second")?;
    let burst = number_option(options, "burst", &BURST_BOUNDS, "requests")?.unwrap_or(1.0);
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
    let settings: Vec<(String, String)> =
        options.iter().filter(|(name, _)| provider.server_options().contains(&name.as_str())).cloned().collect();
    provider.check_settings(&settings, true)?;
    Ok(ServerConfig {
        oid: pg_sys::InvalidOid,
        name: name.to_string(),
        provider,
        base_url,
        poll_interval: duration_option(options, "poll_interval", DEFAULT_POLL_INTERVAL, &POLL_INTERVAL_BOUNDS)?,
        timeout: duration_option(options, "timeout", DEFAULT_TIMEOUT, &TIMEOUT_BOUNDS)?,
        rate_limit,
        burst,
        token_url: get(options, "token_url").map(str::to_string),
        external_id: get(options, "external_id").map(str::to_string),
        metadata,
        settings,
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
            Ok(n) if MAX_ROWS_PER_STATEMENT_BOUNDS.contains(&n) => Some(n),
            _ => {
                let (low, high) = (MAX_ROWS_PER_STATEMENT_BOUNDS.start(), MAX_ROWS_PER_STATEMENT_BOUNDS.end());
                return Err(invalid_value("max_rows_per_statement", text, &format!("Use a number of rows from {low} to {high}.")));
            }
        },
    };
    let sweep_interval = match get(options, "sweep_interval") {
        None => SweepInterval::ProviderDefault,
        Some("off") => SweepInterval::Off,
        Some(_) => SweepInterval::Every(duration_option(options, "sweep_interval", Duration::ZERO, &SWEEP_INTERVAL_BOUNDS).map_err(
            |error| {
                let hint = format!("{} Or 'off'.", error.hint.as_deref().unwrap_or_default());
                error.with_hint(hint)
            },
        )?),
    };
    let backfill_ranges = match get(options, "backfill_ranges") {
        None => 1,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if BACKFILL_RANGES_BOUNDS.contains(&n) => n,
            _ => {
                let (low, high) = (BACKFILL_RANGES_BOUNDS.start(), BACKFILL_RANGES_BOUNDS.end());
                return Err(invalid_value(
                    "backfill_ranges",
                    text,
                    &format!("Use a number of ranges fetched at once from {low} to {high}."),
                ));
            }
        },
    };
    let shadow_table = get(options, "shadow_table").map(str::to_string);
    let settings = options.iter().filter(|(name, _)| !TABLE_OPTIONS.contains(&name.as_str())).cloned().collect();
    Ok(TableConfig {
        collection: collection.to_string(),
        delete_mode,
        max_rows_per_statement,
        sweep_interval,
        backfill_ranges,
        shadow_table,
        settings,
    })
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

/// The options a server takes: the common ones and its provider's.
fn server_options(options: &[(String, String)]) -> Vec<&'static str> {
    let provider = get(options, "provider").and_then(providers::by_name);
    SERVER_OPTIONS.iter().copied().chain(provider.map_or(&[][..], |p| p.server_options()).iter().copied()).collect()
}

/// The options a foreign table takes: the common ones and every provider's
/// (the validator does not know the table's server; its provider checks
/// them when the table is loaded).
fn table_options() -> Vec<&'static str> {
    let providers = providers::PROVIDER_NAMES.iter().filter_map(|name| providers::by_name(name));
    TABLE_OPTIONS.iter().copied().chain(providers.flat_map(|p| p.table_options().iter().copied())).collect()
}

/// Checks the options of one catalog object; raised by the validator.
fn validate(options: &[(String, String)], catalog: pg_sys::Oid) -> Result<()> {
    let (valid, context): (&[&str], &str) = match catalog {
        pg_sys::ForeignServerRelationId => (&server_options(options)[..], "server"),
        pg_sys::UserMappingRelationId => (USER_MAPPING_OPTIONS, "user mapping"),
        pg_sys::ForeignTableRelationId => (&table_options()[..], "foreign table"),
        pg_sys::AttributeRelationId => (COLUMN_OPTIONS, "column"),
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
        // Only here and before each request (http::exchange): a server
        // loaded from the catalog still parses after the setting changed, so
        // the error names the host when a request is made.
        pg_sys::ForeignServerRelationId => check_server_hosts(&parse_server("", options)?, &crate::gucs::allowed_hosts()),
        pg_sys::ForeignTableRelationId => parse_table(options).map(|_| ()),
        pg_sys::AttributeRelationId => match options.iter().find(|(_, v)| v.trim().is_empty()) {
            Some((name, _)) => Err(SequinError::new(ErrorKind::InvalidOptionValue, format!("option \"{name}\" of a column must name an API field"))),
            None => Ok(()),
        },
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
        let sweep = |value: &str| parse_table(&opts(&[("collection", "customers"), ("sweep_interval", value)])).map(|t| t.sweep_interval);
        assert_eq!(parse_table(&opts(&[("collection", "customers")])).unwrap().sweep_interval, SweepInterval::ProviderDefault);
        assert_eq!(sweep("off").unwrap(), SweepInterval::Off);
        assert_eq!(sweep("1h").unwrap(), SweepInterval::Every(Duration::from_secs(3600)));
        for bad in ["500ms", "31d", "1e30h", "never", ""] {
            let error = sweep(bad).unwrap_err();
            assert_eq!(error.hint.as_deref(), Some("Use a duration from 1s to 720h, such as '5s', '500ms' or '2min'. Or 'off'."), "{bad}");
        }
        let ranges = |value: &str| parse_table(&opts(&[("collection", "customers"), ("backfill_ranges", value)])).map(|t| t.backfill_ranges);
        assert_eq!(parse_table(&opts(&[("collection", "customers")])).unwrap().backfill_ranges, 1);
        assert_eq!(ranges("4").unwrap(), 4);
        for bad in ["0", "17", "-1", "four", ""] {
            assert_eq!(ranges(bad).unwrap_err().kind, ErrorKind::InvalidOptionValue, "{bad}");
        }
        let limited = parse_table(&opts(&[("collection", "customers"), ("max_rows_per_statement", "5")])).unwrap();
        assert_eq!(limited.max_rows_per_statement, Some(5));
        assert!(parse_table(&opts(&[("collection", "customers"), ("max_rows_per_statement", "0")])).is_err());
    }

    fn server_with(name: &str, value: &str) -> Result<ServerConfig> {
        parse_server("s", &opts(&[("provider", "stripe"), (name, value)]))
    }

    /// Refused with HV00A and a HINT that quotes both bounds.
    fn assert_refused(name: &str, value: &str, low: &str, high: &str) {
        let error = match name {
            "max_rows_per_statement" => parse_table(&opts(&[("collection", "customers"), (name, value)])).err(),
            _ => server_with(name, value).err(),
        };
        let error = error.unwrap_or_else(|| panic!("{name} = {value} was accepted"));
        assert_eq!(error.kind, ErrorKind::InvalidOptionValue, "{name} = {value}");
        assert_eq!(error.kind.sqlstate(), pgrx::PgSqlErrorCode::ERRCODE_FDW_INVALID_STRING_FORMAT);
        assert_eq!(error.message, format!("invalid value for option \"{name}\": \"{value}\""));
        let hint = error.hint.unwrap();
        assert!(hint.contains(&format!("from {low} to {high}")), "{name}: {hint}");
    }

    #[test]
    fn durations_are_bounded() {
        let poll = |v: &str| server_with("poll_interval", v).map(|c| c.poll_interval).ok();
        assert_eq!(poll("1s"), Some(Duration::from_secs(1)));
        assert_eq!(poll("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(poll("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(poll("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(poll("1440min"), Some(Duration::from_secs(86_400)));
        for outside in ["99ms", "0.09", "24.001h", "1441min", "99999999999999999999999h", "0s", "-1s", "NaN", "inf"] {
            assert_refused("poll_interval", outside, "100ms", "24h");
        }
        let timeout = |v: &str| server_with("timeout", v).map(|c| c.timeout).ok();
        assert_eq!(timeout("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(timeout("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(timeout("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("3600"), Some(Duration::from_secs(3600)));
        for outside in ["99ms", "3601s", "2h", "-1s", "99999999999999999999999h"] {
            assert_refused("timeout", outside, "100ms", "1h");
        }
    }

    #[test]
    fn rates_and_bursts_are_bounded() {
        let rate = |v: &str| server_with("rate_limit", v).map(|c| c.rate_limit).ok();
        assert_eq!(rate("10"), Some(Some(10.0)));
        assert_eq!(rate("0.01"), Some(Some(0.01)));
        assert_eq!(rate("100000"), Some(Some(100_000.0)));
        for outside in ["0.009", "0", "-3", "100000.5", "1e300", "NaN", "inf", "fast"] {
            assert_refused("rate_limit", outside, "0.01", "100000");
        }
        let burst = |v: &str| server_with("burst", v).map(|c| c.burst).ok();
        assert_eq!(burst("2"), Some(2.0));
        assert_eq!(burst("1"), Some(1.0));
        assert_eq!(burst("100000"), Some(100_000.0));
        assert_eq!(parse_server("s", &opts(&[("provider", "stripe")])).unwrap().burst, 1.0);
        for outside in ["0.5", "100001", "NaN", "-inf"] {
            assert_refused("burst", outside, "1", "100000");
        }
    }

    #[test]
    fn row_limits_are_bounded() {
        let rows = |v: &str| parse_table(&opts(&[("collection", "customers"), ("max_rows_per_statement", v)])).ok().map(|t| t.max_rows_per_statement);
        assert_eq!(rows("1"), Some(Some(1)));
        assert_eq!(rows("10000"), Some(Some(10_000)));
        assert_eq!(rows(" 3 "), Some(Some(3)));
        for outside in ["0", "10001", "-1", "99999999999999999999999", "many", "1.5"] {
            assert_refused("max_rows_per_statement", outside, "1", "10000");
        }
    }

    #[test]
    fn bounds_read_as_the_hints_write_them() {
        assert_eq!(show_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(show_duration(Duration::from_secs(90)), "90s");
        assert_eq!(show_duration(Duration::from_secs(120)), "2min");
        assert_eq!(show_duration(Duration::from_secs(86_400)), "24h");
        for bound in [POLL_INTERVAL_BOUNDS.start(), POLL_INTERVAL_BOUNDS.end(), TIMEOUT_BOUNDS.start(), TIMEOUT_BOUNDS.end()] {
            assert_eq!(crate::time::parse_duration(&show_duration(*bound)), Some(*bound));
        }
    }

    #[test]
    fn url_hosts_are_checked_against_the_setting() {
        let allowed = "api.stripe.com, *.salesforce.com, 127.0.0.1";
        let config = parse_server("s", &opts(&[("provider", "stripe")])).unwrap();
        assert!(check_server_hosts(&config, allowed).is_ok());
        let mock = parse_server("s", &opts(&[("provider", "stripe"), ("base_url", "http://127.0.0.1:4000")])).unwrap();
        assert!(check_server_hosts(&mock, allowed).is_ok());
        let evil = parse_server("s", &opts(&[("provider", "stripe"), ("base_url", "https://api.stripe.com@evil.example")])).unwrap();
        let error = check_server_hosts(&evil, allowed).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidOptionValue);
        assert_eq!(error.message, "host \"evil.example\" of option \"base_url\" is not allowed");
        assert!(error.hint.unwrap().contains("sequin.allowed_hosts, which now lists: api.stripe.com, *.salesforce.com, 127.0.0.1."));
        let token = parse_server(
            "s",
            &opts(&[("provider", "salesforce"), ("base_url", "https://a.my.salesforce.com"), ("token_url", "https://evil.example/token")]),
        )
        .unwrap();
        assert!(check_server_hosts(&token, allowed).unwrap_err().message.contains("\"token_url\""));
        assert!(check_server_hosts(&config, "").unwrap_err().hint.unwrap().ends_with("now lists: (none)."));
        assert!(server_with("base_url", "https://").is_err());
        assert!(server_with("base_url", "http://[::1").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\PC{0,24}",
                any::<f64>().prop_map(|f| f.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                (0u64..100_000_000, "(|s|ms|min|h|x)").prop_map(|(n, unit)| format!("{n}{unit}")),
                (0u64..100_000, "(|s|ms|min|h)").prop_map(|(n, unit)| format!("{}.{n}{unit}", n % 100)),
                "https?://[a-z0-9.@:\\[\\]-]{0,20}(/[a-z]{0,5})?",
            ]
        }

        fn option(names: &'static [&'static str]) -> impl Strategy<Value = (String, String)> {
            (prop::sample::select(names), value()).prop_map(|(n, v)| (n.to_string(), v))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn server_options_never_panic_and_stay_in_bounds(
                provider in prop::sample::select(vec!["stripe", "salesforce", "paypal"]),
                rest in prop::collection::vec(option(SERVER_OPTIONS), 0..6),
            ) {
                let mut options = vec![("provider".to_string(), provider.to_string())];
                options.extend(rest);
                if let Ok(config) = parse_server("s", &options) {
                    prop_assert!(POLL_INTERVAL_BOUNDS.contains(&config.poll_interval));
                    prop_assert!(TIMEOUT_BOUNDS.contains(&config.timeout));
                    prop_assert!(config.rate_limit.is_none_or(|r| RATE_LIMIT_BOUNDS.contains(&r)));
                    prop_assert!(BURST_BOUNDS.contains(&config.burst));
                    prop_assert!(crate::http::url_host(&config.base_url).is_some());
                    let _ = check_server_hosts(&config, "api.stripe.com, *.salesforce.com, 127.0.0.1");
                }
            }

            #[test]
            fn table_options_never_panic_and_stay_in_bounds(rest in prop::collection::vec(option(TABLE_OPTIONS), 0..4)) {
                if let Ok(table) = parse_table(&rest) {
                    prop_assert!(table.max_rows_per_statement.is_none_or(|n| MAX_ROWS_PER_STATEMENT_BOUNDS.contains(&n)));
                    if let SweepInterval::Every(every) = table.sweep_interval {
                        prop_assert!(SWEEP_INTERVAL_BOUNDS.contains(&every));
                    }
                }
            }
        }
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
#[derive(Clone)]
pub struct ForeignTableConfig {
    pub server_oid: pg_sys::Oid,
    pub server_owner: pg_sys::Oid,
    pub server: ServerConfig,
    pub table: TableConfig,
}

/// The parsed options of a foreign table and its server (as this backend
/// keeps them: `kept_options`).
pub fn load_foreign_table(relid: pg_sys::Oid) -> Result<ForeignTableConfig> {
    super::kept_options::get(relid, || parse_foreign_table(relid))
}

/// Reads and parses the options of a foreign table and its server.
fn parse_foreign_table(relid: pg_sys::Oid) -> Result<ForeignTableConfig> {
    unsafe {
        let table = pg_sys::GetForeignTable(relid);
        let (server, server_owner) = load_server((*table).serverid)?;
        let table = parse_table(&options_from_list((*table).options))?;
        server.provider.check_settings(&table.settings, false)?;
        Ok(ForeignTableConfig { server_oid: server.oid, server_owner, server, table })
    }
}

/// Reads and parses the options of a server; also its owner.
pub fn load_server(server_oid: pg_sys::Oid) -> Result<(ServerConfig, pg_sys::Oid)> {
    unsafe {
        let server = pg_sys::GetForeignServer(server_oid);
        let name = CStr::from_ptr((*server).servername).to_string_lossy().into_owned();
        let config = ServerConfig { oid: (*server).serverid, ..parse_server(&name, &options_from_list((*server).options))? };
        Ok((config, (*server).owner))
    }
}

/// The sequin_fdw server of this name, if there is one.
pub fn find_server(name: &str) -> Option<pg_sys::Oid> {
    let name = std::ffi::CString::new(name).ok()?;
    let server = unsafe { pg_sys::GetForeignServerByName(name.as_ptr(), true) };
    // SAFETY: checked for NULL (missing_ok) before it is read.
    let oid = (!server.is_null()).then(|| unsafe { (*server).serverid })?;
    is_sequin_server(oid).then_some(oid)
}

/// Whether the foreign server (which exists) is one of this wrapper's.
pub fn is_sequin_server(server_oid: pg_sys::Oid) -> bool {
    // SAFETY: both lookups raise an ERROR rather than return NULL.
    unsafe {
        let server = pg_sys::GetForeignServer(server_oid);
        let wrapper = pg_sys::GetForeignDataWrapper((*server).fdwid);
        CStr::from_ptr((*wrapper).fdwname) == c"sequin_fdw"
    }
}

/// Whether `user` (InvalidOid: PUBLIC) has a user mapping of its own for
/// the server.
pub fn has_own_mapping(server_oid: pg_sys::Oid, user: pg_sys::Oid) -> bool {
    unsafe {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::USERMAPPINGUSERSERVER as i32,
            user.into(),
            server_oid.into(),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    }
}

/// The credentials of `user` for a server, falling back to the PUBLIC
/// mapping; a clear 28000 when there is neither.
pub fn load_credentials(server_oid: pg_sys::Oid, server_name: &str, user: pg_sys::Oid) -> Result<Credentials> {
    unsafe {
        let has_mapping = |user: pg_sys::Oid| has_own_mapping(server_oid, user);
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
