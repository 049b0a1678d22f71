//! Re-reading queued records (see `reconcile.rs`): each is fetched from the
//! API and applied like a sync page, so a rolled-back write or a write with
//! an unknown outcome leaves the shadow table equal to the API again.

use super::poll::{in_transaction, load_target, Target};
use crate::catalog;
use crate::error::{ErrorKind, Result};
use crate::providers::Record;
use crate::shadow::Guard;
use crate::rate_limit::Priority;
use crate::reconcile;
use crate::time::now_us;
use crate::upstream;
use pgrx::prelude::*;

/// The queued records, by foreign table. When the queue overflowed, every
/// collection is polled at once instead (its change feed brings the same
/// records).
pub fn take_queued() -> Vec<(pg_sys::Oid, Vec<String>)> {
    let (queued, overflowed) = reconcile::take();
    if overflowed {
        if let Err(error) = in_transaction(catalog::poll_all_now) {
            log!("sequin sync: could not schedule a poll after the re-read queue overflowed: {}", error.message);
        }
    }
    let mut by_table: Vec<(pg_sys::Oid, Vec<String>)> = Vec::new();
    for (foreign_table, id) in queued {
        match by_table.iter_mut().find(|(t, _)| *t == foreign_table) {
            Some((_, ids)) => ids.push(id),
            None => by_table.push((foreign_table, vec![id])),
        }
    }
    by_table
}

pub async fn reread(work: Vec<(pg_sys::Oid, Vec<String>)>) {
    for (foreign_table, ids) in work {
        if let Err(error) = reread_table(foreign_table, &ids).await {
            // The collection's change feed still brings these records.
            log!("sequin sync of foreign table {}: re-read failed: {}", u32::from(foreign_table), error.message);
        }
    }
}

async fn reread_table(foreign_table: pg_sys::Oid, ids: &[String]) -> Result<()> {
    let target = match in_transaction(|| load_target(foreign_table)) {
        Ok((target, _)) => target,
        // Dropped since: nothing to repair.
        Err(_) => return Ok(()),
    };
    // The records as last synced, for APIs that address them by another key.
    let raws: Vec<Option<serde_json::Value>> = match target.collection.config.server.provider.needs_synced_record() {
        true => in_transaction(|| ids.iter().map(|id| catalog::shadow_raw(&target.collection, id)).collect())?,
        false => vec![None; ids.len()],
    };
    let mut records = Vec::with_capacity(ids.len());
    for (id, raw) in ids.iter().zip(&raws) {
        match fetch(&target, id, raw.as_ref()).await {
            Ok(record) => records.push(record),
            // One record failing must not cost the others their re-read.
            Err(error) => log!(
                "sequin sync of foreign table {}: re-read of {id} failed: {}",
                u32::from(foreign_table),
                error.message
            ),
        }
    }
    let applied = in_transaction(|| target.collection.shadow.apply_page(target.foreign_table, &records, None, Guard::Version))?;
    for warning in applied.warnings() {
        warning!("sequin sync of {}: {warning}", target.collection.shadow.feed_name);
    }
    Ok(())
}

async fn fetch(target: &Target, id: &str, raw: Option<&serde_json::Value>) -> Result<Record> {
    let server = &target.collection.config.server;
    let spec = &target.collection.spec;
    let request = server.provider.fetch_request(spec, id, raw);
    let sent_at = now_us();
    match upstream::send(server, &target.credentials, &request, Priority::Sync).await {
        Ok(response) => upstream::parse(server, &request, server.provider.fetch_response(spec, id, &response, sent_at)),
        Err(error) if error.kind == ErrorKind::NotFound => Ok(Record::gone(id, sent_at)),
        Err(error) => Err(error),
    }
}
