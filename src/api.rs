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
