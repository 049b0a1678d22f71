//! sequin_fdw: SaaS API collections as tables of the user's own database.
//! Reads come from local shadow tables a background worker keeps in sync;
//! writes go to the API first and then to the shadow table.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

mod account;
mod allocator;
mod attributes;
mod api;
mod catalog;
mod discovery;
mod error;
mod fdw;
mod gucs;
mod http;
mod jsonb;
mod kept;
mod privilege;
mod oauth;
mod offload;
mod plans;
mod providers;
mod proxy;
mod rate_limit;
mod reconcile;
mod registered;
mod request;
mod resolver;
mod rollback;
mod schema;
mod shadow;
mod shadow_guard;
mod subxact;
mod sql;
mod sync;
mod threads;
mod upstream;
mod write;
mod time;

pgrx::extension_sql_file!("../sql/catalog.sql", name = "catalog", bootstrap);
pgrx::extension_sql_file!("../sql/objects.sql", name = "objects", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // A panic's report (pgrx puts it in the error's DETAIL) must not carry
    // a backtrace: it leaks code layout and buries the message. std's
    // Backtrace::capture reads RUST_LIB_BACKTRACE before RUST_BACKTRACE, so
    // this wins over a RUST_BACKTRACE=1 in the postmaster's environment. Set
    // first, while the postmaster is still single-threaded (set_var is only
    // sound then), and inherited by every backend it forks.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    // Shared memory and the sync worker only exist when the library is
    // preloaded; anything else would half-work, so refuse (as pg_cron does).
    if unsafe { !pg_sys::process_shared_preload_libraries_in_progress } {
        let level = if unsafe { pg_sys::IsBinaryUpgrade } { PgLogLevel::WARNING } else { PgLogLevel::ERROR };
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "sequin_fdw must be loaded via shared_preload_libraries",
            "sequin_fdw",
        )
        .set_hint("Add sequin_fdw to shared_preload_libraries in postgresql.conf and restart the server.")
        .report(level);
        return;
    }
    gucs::register();
    reconcile::init();
    sync::databases::init();
    sync::databases::register_callbacks();
    sync::statements::install();
    rate_limit::init();
    oauth::init();
    rollback::register_callbacks();
    fdw::on_conflict::install();
    fdw::stats::install();
    sync::launcher::register();
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("pg_tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'sequin_fdw'"]
    }
}
