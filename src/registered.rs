//! What `sequin.collections` says of each foreign table (its shadow table
//! and the schema the API described) and the columns of both tables, kept
//! per backend: every write statement and every plan of a foreign scan
//! needs it, and reading it was a tenth of a single-row write.
//!
//! An entry goes when Postgres invalidates the foreign table or its shadow
//! table (any DDL on either, a dropped table, an ANALYZE), and when the
//! described schema changes (`forget`, which says so to every backend at
//! commit, as Postgres's own catalog changes do). A row a restore may still
//! replace (phase `restoring`) is not kept. Entries are read only after the
//! foreign table is locked, when pending invalidations have been taken in.

use crate::kept::Kept;
use crate::providers::CollectionSchema;
use crate::schema::TableColumn;
use pgrx::pg_sys;
use std::cell::Cell;
use std::rc::Rc;

pub struct Registered {
    /// The shadow table's name, schema-qualified.
    pub shadow_table: String,
    pub shadow_oid: pg_sys::Oid,
    pub shadow_owner: pg_sys::Oid,
    /// The schema the API described, for providers that describe their
    /// collections (None for compiled ones, or before the API was asked).
    pub described: Option<CollectionSchema>,
    /// The foreign table's columns.
    pub columns: Vec<TableColumn>,
    /// The shadow table's columns but `updated_idx`, quoted for SQL.
    pub shadow_columns: Vec<String>,
    /// A restore is under way (phase `restoring`): its catalog row is
    /// replaced by the dump's without DDL, so the entry is not kept.
    pub restoring: bool,
}

thread_local! {
    static ENTRIES: Kept<Rc<Registered>> = Kept::new();
    static LISTENING: Cell<bool> = const { Cell::new(false) };
}

/// The foreign table's entry, read with `load` when this backend has none.
pub fn get(
    foreign_table: pg_sys::Oid,
    load: impl FnOnce() -> crate::error::Result<Registered>,
) -> crate::error::Result<Rc<Registered>> {
    listen();
    ENTRIES.with(|entries| entries.get(foreign_table, || load().map(Rc::new), |entry| !entry.restoring))
}

/// Makes every backend read the foreign table's entry again once this
/// transaction commits (its described schema changed).
pub fn forget(foreign_table: pg_sys::Oid) {
    // SAFETY: the relation is looked up first; invalidating one that is
    // gone would be an ERROR (and it has no entry left to forget).
    unsafe {
        if !pg_sys::get_rel_name(foreign_table).is_null() {
            pg_sys::CacheInvalidateRelcacheByRelid(foreign_table);
        }
    }
}

fn listen() {
    if !LISTENING.with(Cell::get) {
        // SAFETY: registered once per process, on its own thread.
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(relation_changed), pg_sys::Datum::from(0)) };
        LISTENING.with(|listening| listening.set(true));
    }
}

/// Postgres's relation cache callback: `relid` changed (InvalidOid: any
/// relation may have).
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn relation_changed(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    ENTRIES.with(|entries| {
        entries.invalidate(|&foreign_table, entry| {
            relid != pg_sys::InvalidOid && foreign_table != relid && entry.shadow_oid != relid
        })
    });
}
