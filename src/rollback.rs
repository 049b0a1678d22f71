//! API writes that a rollback cannot undo. Every change applied upstream is
//! remembered with the subtransaction that made it; when that transaction or
//! savepoint rolls back, Postgres undoes the shadow change but the API keeps
//! it, so the user is warned and the records are queued for a re-read (the
//! shadow table matches the API again within one poll interval).

use crate::error::{ErrorKind, SequinError};
use crate::reconcile;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeMap;

struct Change {
    what: Changed,
    provider: &'static str,
    subtransaction: pg_sys::SubTransactionId,
}

enum Changed {
    /// A record of a synced table (its foreign table and id).
    Record(pg_sys::Oid, String),
    /// A `sequin.request()` whose reply held no synced record (`POST /v1/…`).
    Request(String),
}

thread_local! {
    static CHANGES: RefCell<Vec<Change>> = const { RefCell::new(Vec::new()) };
}

/// Ids listed in a WARNING before the rest are only counted.
const LISTED_IDS: usize = 10;

/// Remembers a change the API has applied in the current (sub)transaction.
pub fn remember(foreign_table: pg_sys::Oid, provider: &'static str, id: &str) {
    push(Changed::Record(foreign_table, id.to_string()), provider);
}

/// Remembers a request the API accepted in the current (sub)transaction
/// whose changes are in no synced table (`route`: `POST /v1/refunds`).
pub fn remember_request(provider: &'static str, route: &str) {
    push(Changed::Request(route.to_string()), provider);
}

fn push(what: Changed, provider: &'static str) {
    let subtransaction = unsafe { pg_sys::GetCurrentSubTransactionId() };
    CHANGES.with(|c| c.borrow_mut().push(Change { what, provider, subtransaction }));
}

pub fn register_callbacks() {
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction_end), std::ptr::null_mut());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => {
            CHANGES.with(|c| c.borrow_mut().clear());
        }
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => {
            let undone = CHANGES.with(|c| std::mem::take(&mut *c.borrow_mut()));
            report(undone);
        }
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction_end(
    event: pg_sys::SubXactEvent::Type,
    subtransaction: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_COMMIT_SUB => CHANGES.with(|c| {
            for change in c.borrow_mut().iter_mut().filter(|c| c.subtransaction == subtransaction) {
                change.subtransaction = parent;
            }
        }),
        SUBXACT_EVENT_ABORT_SUB => {
            // Subtransaction ids only grow: ours and its children's are >= ours.
            let undone = CHANGES.with(|c| {
                let (undone, kept) = std::mem::take(&mut *c.borrow_mut())
                    .into_iter()
                    .partition(|c| c.subtransaction >= subtransaction);
                *c.borrow_mut() = kept;
                undone
            });
            report(undone);
        }
        _ => {}
    }
}

/// Warns about changes a rollback did not undo, one WARNING per provider,
/// and queues the records for a re-read.
fn report(undone: Vec<Change>) {
    if undone.is_empty() {
        return;
    }
    let records: Vec<(pg_sys::Oid, String)> = undone
        .iter()
        .filter_map(|c| match &c.what {
            Changed::Record(table, id) => Some((*table, id.clone())),
            Changed::Request(_) => None,
        })
        .collect();
    reconcile::request(&records);
    // Per provider: the record ids, and the requests that changed no record.
    let mut by_provider: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for change in &undone {
        let (ids, requests) = by_provider.entry(change.provider).or_default();
        let (list, item) = match &change.what {
            Changed::Record(_, id) => (ids, id.as_str()),
            Changed::Request(route) => (requests, route.as_str()),
        };
        if !list.contains(&item) {
            list.push(item);
        }
    }
    for (provider, (ids, requests)) in by_provider {
        warning(provider, &ids, &requests).to_report().report(PgLogLevel::WARNING);
    }
}

/// "a, b, c and 2 more".
fn listed(items: &[&str]) -> String {
    let mut listed = items.iter().take(LISTED_IDS).copied().collect::<Vec<_>>().join(", ");
    if items.len() > LISTED_IDS {
        listed.push_str(&format!(" and {} more", items.len() - LISTED_IDS));
    }
    listed
}

fn warning(provider: &str, ids: &[&str], requests: &[&str]) -> SequinError {
    let n = ids.len() + requests.len();
    let changes = if n == 1 { "1 change" } else { &format!("{n} changes") };
    let verb = if n == 1 { "was" } else { "were" };
    let mut detail = Vec::new();
    if !ids.is_empty() {
        detail.push(format!("Records: {}.", listed(ids)));
    }
    if !requests.is_empty() {
        detail.push(format!("Requests: {}.", listed(requests)));
    }
    let hint = match ids.is_empty() {
        false => "The API keeps them; they are re-read so the table matches the API again within one poll interval.",
        true => "The API keeps them; synced tables show what they changed within one poll interval.",
    };
    SequinError::new(
        ErrorKind::NotRolledBack,
        format!("{changes} already applied to {provider} {verb} not rolled back"),
    )
    .with_detail(detail.join(" "))
    .with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_counts_and_lists_the_records() {
        let one = warning("Stripe", &["cus_1"], &[]);
        assert_eq!(one.message, "1 change already applied to Stripe was not rolled back");
        assert_eq!(one.detail.as_deref(), Some("Records: cus_1."));
        let ids: Vec<String> = (1..=12).map(|n| format!("cus_{n}")).collect();
        let many = warning("Stripe", &ids.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        assert_eq!(many.message, "12 changes already applied to Stripe were not rolled back");
        assert!(many.detail.unwrap().ends_with("cus_10 and 2 more."));
        let both = warning("Stripe", &["cus_1"], &["POST /v1/refunds"]);
        assert_eq!(both.message, "2 changes already applied to Stripe were not rolled back");
        assert_eq!(both.detail.as_deref(), Some("Records: cus_1. Requests: POST /v1/refunds."));
        let request = warning("Salesforce", &[], &["PATCH /services/data/v60.0/sobjects/Contact/003"]);
        assert!(request.hint.unwrap().contains("synced tables show"));
    }
}
