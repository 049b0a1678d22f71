//! Reconciliation sweeps. Next to its change feed, a collection is now and
//! then listed in full (every `sweep_interval`; at its poll interval when
//! the API refuses the feed) and compared with its shadow table: a record
//! that differs or is missing is corrected, and a row the listing did not
//! show, and that did not change while it ran, is gone upstream. What a
//! sweep corrects is drift: changes the feed did not bring (yet). APIs
//! without tombstones learn of deletions this way.
//!
//! A sweep is a lane of its own in the engine, one page in flight at a
//! time; each page is applied with the sweep's cursor in one transaction,
//! so a crash resumes it where it stood.

use super::poll::{in_transaction, load_collection, Target};
use crate::catalog;
use crate::error::{Result, SequinError};
use crate::providers::{Phase, SyncPage};
use crate::shadow::{EncodedRows, Guard};
use pgrx::prelude::*;
use serde_json::Value;
use std::rc::Rc;

/// The collection and where its sweep stands; a sweep that is due but not
/// under way starts from the beginning of the provider's listing.
pub(super) fn load_sweep(foreign_table: pg_sys::Oid) -> Result<(Rc<Target>, Value)> {
    let target = load_collection(foreign_table, false)?;
    let state = match catalog::sweep_state(foreign_table)? {
        Some(state) => state,
        None => {
            let provider = target.collection.config.server.provider;
            catalog::begin_sweep(foreign_table, &provider.listing_cursor(&target.collection.spec))?
        }
    };
    Ok((target, state.cursor))
}

/// Applies a page of the listing fetched at `from`, and either stores the
/// sweep's next cursor or, on its last page, ends the sweep. A page of a
/// sweep that was dropped meanwhile (a resync began) changes nothing.
pub(super) fn apply_sweep_page(target: &Target, from: &Value, page: &SyncPage, encoded: Option<&EncodedRows>) -> Result<()> {
    let foreign_table = target.foreign_table;
    let shadow = &target.collection.shadow;
    let warnings = in_transaction(|| {
        let Some(state) = catalog::sweep_state(foreign_table)? else { return Ok(Vec::new()) };
        if state.cursor != *from {
            return Ok(Vec::new());
        }
        let applied = shadow.apply_page(foreign_table, &page.records, encoded, Guard::Content)?;
        let ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
        catalog::remember_seen(foreign_table, &ids)?;
        let warnings = applied.warnings();
        if page.phase == Phase::Incremental {
            let gone = shadow.sweep_unseen(foreign_table, state.from_idx)?;
            catalog::forget_seen(foreign_table)?;
            catalog::finish_sweep(
                foreign_table,
                applied.changed,
                gone,
                applied.poisoned.len(),
                target.collection.sweep_every(),
                target.collection.config.server.poll_interval,
            )?;
        } else {
            catalog::save_sweep_page(foreign_table, &page.cursor, applied.changed, applied.poisoned.len(), warnings.last().map(String::as_str))?;
        }
        Ok(warnings)
    })?;
    for warning in warnings {
        warning!("sequin sweep of {}: {warning}", shadow.feed_name);
    }
    Ok(())
}

/// Records a failed sweep request or page; the sweep resumes from where it
/// stood after a backoff, or from the start when its cursor can never be
/// continued (`restart`).
pub(super) fn fail(target: Option<&Target>, foreign_table: pg_sys::Oid, error: &SequinError, restart: bool) {
    let message = super::poll::error_text(error);
    log!("sequin sweep of foreign table {}: {message}", u32::from(foreign_table));
    let retry_base = target.map_or(std::time::Duration::from_secs(5), |t| t.collection.config.server.poll_interval);
    let _ = in_transaction(|| catalog::sweep_failed(foreign_table, &message, retry_base, restart));
}
