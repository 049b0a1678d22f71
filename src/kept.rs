//! What a backend keeps of the catalogs between statements, by relation or
//! server oid, until a Postgres cache invalidation says it changed
//! (`registered`, `fdw::kept_options`). The invalidation callbacks run in
//! the middle of Postgres calls, so no borrow of the entries is ever held
//! across one.

use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

pub struct Kept<V> {
    entries: RefCell<HashMap<pg_sys::Oid, V>>,
    /// Counts the invalidations taken in: an entry read while one came is
    /// not kept (it may predate the change).
    generation: Cell<u64>,
    /// Set should an invalidation find the entries borrowed: all go.
    stale: Cell<bool>,
}

impl<V: Clone> Kept<V> {
    pub fn new() -> Kept<V> {
        Kept { entries: RefCell::new(HashMap::new()), generation: Cell::new(0), stale: Cell::new(false) }
    }

    /// The entry of `key`, read with `load` when none is kept; kept when
    /// `keep` says so. Errors are never kept.
    pub fn get(
        &self,
        key: pg_sys::Oid,
        load: impl FnOnce() -> crate::error::Result<V>,
        keep: impl FnOnce(&V) -> bool,
    ) -> crate::error::Result<V> {
        if self.stale.replace(false) {
            self.entries.borrow_mut().clear();
        }
        if let Some(entry) = self.entries.borrow().get(&key).cloned() {
            return Ok(entry);
        }
        let generation = self.generation.get();
        let entry = load()?;
        if keep(&entry) && self.generation.get() == generation {
            self.entries.borrow_mut().insert(key, entry.clone());
        }
        Ok(entry)
    }

    /// For an invalidation callback: keeps only the entries `retain` keeps.
    pub fn invalidate(&self, retain: impl FnMut(&pg_sys::Oid, &mut V) -> bool) {
        self.generation.set(self.generation.get().wrapping_add(1));
        match self.entries.try_borrow_mut() {
            Ok(mut entries) => entries.retain(retain),
            Err(_) => self.stale.set(true),
        }
    }
}
