//! One poll of one collection: ask the API for the next page of changes,
//! then apply the page and advance the cursor in one transaction. HTTP runs
//! between transactions, so no lock is held while the API answers.

use super::worker::stop_requested;
use crate::catalog::{self, Collection};
use crate::error::{caught_message, Result, SequinError};
use crate::fdw::options::{load_credentials, Credentials};
use crate::providers::SyncPage;
use crate::time::now_us;
use crate::rate_limit::Priority;
use crate::upstream;
use pgrx::prelude::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long one collection may keep the worker before the others get a turn.
const TURN: Duration = Duration::from_secs(2);

/// Runs `body` in its own transaction; an ERROR rolls it back and comes back
/// as `Err` instead of ending the worker.
pub(super) fn in_transaction<R>(body: impl FnOnce() -> Result<R>) -> Result<R> {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    // A user's open transaction that wrote a row must not stall the worker:
    // the page fails and is retried later instead.
    let body = move || {
        Spi::run("SET LOCAL lock_timeout = '2s'").map_err(|e| SequinError::internal(e.to_string()))?;
        body()
    };
    let outcome = PgTryBuilder::new(std::panic::AssertUnwindSafe(body))
        .catch_others(|caught| Err(SequinError::internal(caught_message(&caught))))
        .execute();
    unsafe {
        if outcome.is_ok() {
            pg_sys::PopActiveSnapshot();
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
        }
    }
    outcome
}

/// Polls every due collection; returns the time until the next one is due.
pub fn poll_due_collections() -> Option<Duration> {
    let due = in_transaction(|| {
        if !catalog::extension_installed() {
            return Ok(Vec::new());
        }
        catalog::due_collections()
    });
    for foreign_table in due.unwrap_or_default() {
        if stop_requested() {
            return None;
        }
        poll_collection(foreign_table);
    }
    in_transaction(|| Ok(catalog::extension_installed().then(catalog::time_until_next_poll).flatten()))
        .ok()
        .flatten()
}

pub(super) struct PollTarget {
    pub collection: Collection,
    pub credentials: Credentials,
    pub cursor: Value,
}

pub(super) fn load_target(foreign_table: pg_sys::Oid) -> Result<PollTarget> {
    let collection = catalog::load_collection(foreign_table)?;
    let config = &collection.config;
    let credentials = load_credentials(config.server_oid, &config.server.name, config.server_owner)?;
    let cursor = catalog::cursor(foreign_table)?;
    Ok(PollTarget { collection, credentials, cursor })
}

/// Fetches and applies pages until the collection is caught up or its turn
/// is over. A failure is recorded on the collection and retried later.
fn poll_collection(foreign_table: pg_sys::Oid) {
    let started = Instant::now();
    loop {
        let target = match in_transaction(|| load_target(foreign_table)) {
            Ok(target) => target,
            Err(error) => {
                fail(foreign_table, &error, Duration::from_secs(5));
                return;
            }
        };
        let poll_interval = target.collection.config.server.poll_interval;
        let page = match fetch_page(&target) {
            Ok(page) => page,
            Err(error) => {
                fail(foreign_table, &error, poll_interval);
                return;
            }
        };
        let more = page.more;
        let saved = in_transaction(|| {
            let applied = Spi::connect_mut(|client| target.collection.shadow.apply(client, &page.records))?;
            // A page cut short by the turn is continued at once next time.
            catalog::save_page(foreign_table, &page, applied, poll_interval)
        });
        if let Err(error) = saved {
            fail(foreign_table, &error, poll_interval);
            return;
        }
        if !more || stop_requested() || started.elapsed() > TURN {
            return;
        }
    }
}

fn fetch_page(target: &PollTarget) -> Result<SyncPage> {
    let server = &target.collection.config.server;
    let spec = target.collection.spec;
    let request = server.provider.sync_request(spec, &target.cursor);
    let sent_at = now_us();
    let response = upstream::call(server, &target.credentials, &request, Priority::Sync, &stop_requested)?;
    upstream::parse(server, &request, server.provider.sync_response(spec, &target.cursor, &response, sent_at))
}

fn fail(foreign_table: pg_sys::Oid, error: &SequinError, retry_base: Duration) {
    let message = match &error.detail {
        Some(detail) => format!("{} ({detail})", error.message),
        None => error.message.clone(),
    };
    log!("sequin sync of foreign table {}: {message}", u32::from(foreign_table));
    let _ = in_transaction(|| catalog::record_failure(foreign_table, &message, retry_base));
}
