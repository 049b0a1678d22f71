//! SQL functions of the extension (schema `sequin`).

use crate::catalog;
use crate::error::OrRaise;
use pgrx::prelude::*;

/// Creates the shadow table and sync state of a sequin_fdw foreign table.
/// Called by the DDL event trigger; idempotent for users who call it.
#[pg_extern]
fn register_foreign_table(foreign_table: pg_sys::Oid) {
    let registered = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM sequin.collections WHERE foreign_table = $1)",
        &[foreign_table.into()],
    );
    if registered.ok().flatten() != Some(true) {
        catalog::register(foreign_table).or_raise();
    }
}

/// Every server's shared request budget (behind `sequin.rate_limit_status`).
#[pg_extern]
#[allow(clippy::type_complexity)]
fn rate_limits() -> TableIterator<
    'static,
    (
        name!(server_oid, pg_sys::Oid),
        name!(rate_limit, Option<f64>),
        name!(burst, f64),
        name!(writes_last_minute, i64),
        name!(sync_last_minute, i64),
        name!(waited_ms, i64),
        name!(paused_until_epoch, Option<f64>),
    ),
> {
    let rows: Vec<_> = crate::rate_limit::status()
        .into_iter()
        .map(|s| {
            (
                s.server,
                s.rate,
                s.burst,
                s.writes_last_minute,
                s.sync_last_minute,
                s.waited_ms,
                s.paused_until_us.map(|us| us as f64 / 1e6),
            )
        })
        .collect();
    TableIterator::new(rows)
}
