//! The parsed options of each foreign table and its server, kept per
//! backend: a write statement reads them three times (plan, updatable
//! check, start) and a scan once, and parsing them (the base URL, the
//! provider's settings) was a twentieth of a single-row write.
//!
//! All entries go when Postgres invalidates any foreign table's or server's
//! catalog row (ALTER … OPTIONS, OWNER TO, RENAME, DROP): such changes are
//! rare, and the invalidation says only which hash changed. Entries are
//! read after the foreign table is locked, when pending invalidations have
//! been taken in.

use super::options::ForeignTableConfig;
use crate::kept::Kept;
use pgrx::pg_sys;
use std::cell::Cell;

thread_local! {
    static ENTRIES: Kept<ForeignTableConfig> = Kept::new();
    static LISTENING: Cell<bool> = const { Cell::new(false) };
}

/// The foreign table's options, parsed by `load` when this backend keeps
/// none. Errors are not kept: the next statement reports them again.
pub fn get(
    foreign_table: pg_sys::Oid,
    load: impl FnOnce() -> crate::error::Result<ForeignTableConfig>,
) -> crate::error::Result<ForeignTableConfig> {
    listen();
    ENTRIES.with(|entries| entries.get(foreign_table, load, |_| true))
}

fn listen() {
    if !LISTENING.with(Cell::get) {
        // SAFETY: registered once per process, on its own thread; two of
        // Postgres's 64 syscache callback slots.
        unsafe {
            for cache in [pg_sys::SysCacheIdentifier::FOREIGNTABLEREL, pg_sys::SysCacheIdentifier::FOREIGNSERVEROID] {
                pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(options_changed), pg_sys::Datum::from(0));
            }
        }
        LISTENING.with(|listening| listening.set(true));
    }
}

/// Postgres's syscache callback: a row of pg_foreign_table or
/// pg_foreign_server changed (or all may have).
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn options_changed(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    ENTRIES.with(|entries| entries.invalidate(|_, _| false));
}
