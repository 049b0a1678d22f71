//! Every setting of the extension.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::{CStr, CString};

/// Obsolete (0.1.0 synced only the database it named): kept so that an old
/// postgresql.conf still starts the server; the launcher warns when set.
pub static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// How many databases get a sync worker at most (DESIGN §7).
pub static MAX_DATABASES: GucSetting<i32> = GucSetting::<i32>::new(8);

/// Longest the worker sleeps between looks at the catalog, in milliseconds.
pub static WORKER_NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// How often the sync asks an API that describes itself (Salesforce) for
/// each collection's fields, in seconds: a field added upstream reaches
/// `raw` and sync_status within this time.
pub static SCHEMA_CHECK_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(600);

/// How many foreign servers get a request budget in shared memory.
pub static MAX_SERVERS: GucSetting<i32> = GucSetting::<i32>::new(64);

/// The hosts a server's base_url and token_url may name (DESIGN §8): a
/// superuser's choice, so that owning a foreign server is no way to make the
/// database send credentials or requests to any host it can reach.
pub static ALLOWED_HOSTS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(DEFAULT_ALLOWED_HOSTS));

pub const DEFAULT_ALLOWED_HOSTS: &CStr =
    c"api.stripe.com, *.salesforce.com, *.force.com, api.hubapi.com, api.airtable.com, api.github.com, localhost, 127.0.0.1, ::1";

/// The text of `sequin.allowed_hosts` (matched by `http::host_allowed`);
/// unset means no host.
pub fn allowed_hosts() -> String {
    // Unit tests run on many threads, and pgrx refuses GUC reads from all
    // but one: they get the default, which is what an unset GUC holds.
    if cfg!(test) {
        return DEFAULT_ALLOWED_HOSTS.to_string_lossy().into_owned();
    }
    ALLOWED_HOSTS.get().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

pub fn max_servers() -> usize {
    MAX_SERVERS.get().max(1) as usize
}

pub fn register() {
    GucRegistry::define_int_guc(
        c"sequin.max_servers",
        c"Number of foreign servers whose request rate is shared across all backends.",
        c"Each server's rate_limit budget lives in shared memory; a slot idle for a minute is reused.",
        &MAX_SERVERS,
        1,
        100_000,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"sequin.database",
        c"Obsolete: every database that has sequin_fdw is synced.",
        c"Ignored since 0.2.0; sequin.max_databases bounds the number of synced databases.",
        &DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sequin.max_databases",
        c"Most databases that get a sequin_fdw sync worker.",
        c"Each takes one background worker process (max_worker_processes, shared with the launcher and parallel queries). A database beyond the bound is not synced, and says so in sequin.sync_status.",
        &MAX_DATABASES,
        1,
        crate::sync::databases::SLOTS as i32,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"sequin.allowed_hosts",
        c"Hosts that the base_url and token_url of sequin_fdw servers may name.",
        c"Comma-separated host names or IP addresses; '*.example.com' allows every name under example.com, '*' any host. Checked by CREATE/ALTER SERVER and before every request.",
        &ALLOWED_HOSTS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sequin.worker_naptime",
        c"Longest time the sync worker sleeps before looking for due collections.",
        c"New collections and sync_now requests are noticed within this time.",
        &WORKER_NAPTIME_MS,
        50,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"sequin.schema_check_interval",
        c"How often the sync asks an API that describes its own fields (Salesforce) for them.",
        c"A field added or removed upstream shows in raw and in sequin.sync_status (schema_drift) within this time; each check is one request per collection.",
        &SCHEMA_CHECK_INTERVAL_S,
        1,
        7 * 86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
}

pub fn schema_check_interval() -> std::time::Duration {
    std::time::Duration::from_secs(SCHEMA_CHECK_INTERVAL_S.get().max(1) as u64)
}

pub fn obsolete_database_setting() -> String {
    DATABASE.get().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

pub fn max_databases() -> usize {
    MAX_DATABASES.get().max(1) as usize
}
