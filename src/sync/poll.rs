//! One page of one collection: ask the API for the changes after the stored
//! cursor, then apply them and advance the cursor in one transaction. HTTP
//! runs between transactions, so no lock is held while the API answers.

use crate::catalog::{self, Collection};
use crate::error::{caught_message, Result, SequinError};
use crate::fdw::options::{load_credentials, Credentials};
use crate::providers::{ApiRequest, ApiResponse, Phase, Record, SyncPage};
use crate::shadow::{EncodedRows, Guard, RowStamp};
use crate::rate_limit::Priority;
use crate::time::now_us;
use crate::{discovery, offload, upstream};
use pgrx::prelude::*;
use serde_json::Value;
use std::rc::Rc;
use std::time::Duration;

/// Runs `body` in its own transaction; an ERROR rolls it back and comes back
/// as `Err` instead of ending the worker.
pub(super) fn in_transaction<R>(body: impl FnOnce() -> Result<R>) -> Result<R> {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    // (The worker's session runs with a lock timeout and without waiting
    // for the disk at commit: see worker::session_settings.)
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

/// A collection with what it takes to call its API, loaded once per turn.
pub(super) struct Target {
    pub foreign_table: pg_sys::Oid,
    pub collection: Collection,
    pub credentials: Credentials,
    /// The API refuses the change feed: once the backfill is done, sweeps
    /// keep the table current instead (`sweep.rs`).
    pub feed_refused: bool,
    /// The API is to be asked for the collection's fields before its next
    /// page (`with_current_schema`).
    pub schema_due: bool,
}

/// A collection and its change feed's cursor.
pub(super) fn load_target(foreign_table: pg_sys::Oid) -> Result<(Rc<Target>, Value)> {
    let (cursor, feed_refused) = catalog::cursor(foreign_table)?;
    Ok((load_collection(foreign_table, feed_refused)?, cursor))
}

pub(super) fn load_collection(foreign_table: pg_sys::Oid, feed_refused: bool) -> Result<Rc<Target>> {
    let collection = catalog::load_collection(foreign_table)?;
    let config = &collection.config;
    let credentials = load_credentials(config.server_oid, &config.server.name, config.server_owner)?;
    let describes_itself = config.server.provider.describes_itself();
    let schema_due = describes_itself
        && (collection.schema.is_none() || catalog::schema_check_due(foreign_table, crate::gucs::schema_check_interval())?);
    Ok(Rc::new(Target { foreign_table, collection, credentials, feed_refused, schema_due }))
}

/// The target with its collection's schema as the API describes it now,
/// when it is time to ask (or the API was never asked): kept in the catalog
/// with what differs from the table (sync_status.schema_drift), which a
/// WARNING reports when it changes. A column whose field is gone stays,
/// NULL from then on.
pub(super) async fn with_current_schema(target: Rc<Target>) -> Result<Rc<Target>> {
    if !target.schema_due {
        return Ok(target);
    }
    let config = &target.collection.config;
    let schema = discovery::collection(&config.server, &target.credentials, Priority::Sync, &config.table.collection).await?;
    let foreign_table = target.foreign_table;
    in_transaction(|| {
        let before = catalog::load_collection(foreign_table)?;
        let old_drift = discovery::drift(&before);
        let first = before.schema.is_none();
        let collection = before.with_schema(schema);
        discovery::check_first_use(first, &collection)?;
        let new_drift = discovery::drift(&collection);
        if let (Some(drift), true) = (&new_drift, new_drift != old_drift) {
            warning!("sequin sync of {}: {drift}", collection.shadow.feed_name);
        }
        catalog::store_schema(foreign_table, &collection)?;
        Ok(())
    })?;
    in_transaction(|| load_collection(foreign_table, target.feed_refused))
}

pub(super) enum Fetched {
    /// The page (its records are in `Rows`).
    Page(SyncPage, Rows),
    /// The cursor can never be continued (the reason): backfill again.
    CursorExpired(String),
    /// The change feed is refused for good (the reason): go on from the
    /// cursor without it, kept current by sweeps.
    FeedRefused { reason: String, cursor: Value },
}

/// The page after `cursor`, as the API returns it. A page that goes on
/// from one that said there is more (`continued`) is read on the reader
/// thread as soon as it comes, and its rows encoded as jsonb on the encoder
/// thread (`offload`) while the engine asks for the next one.
pub(super) async fn fetch_page(target: &Target, cursor: &Value, continued: bool) -> Result<Fetched> {
    let server = &target.collection.config.server;
    let spec = &target.collection.spec;
    let request = server.provider.sync_request(spec, cursor);
    let sent_at = now_us();
    let (provider, shared_spec, stamp, at) = (server.provider, target.collection.spec.clone(), target.collection.shadow.stamp.clone(), cursor.clone());
    let read = move |response: &ApiResponse| {
        let mut page = provider.sync_response(&shared_spec, &at, response, sent_at)?;
        let followups = provider.page_followups(&shared_spec, &page);
        // A page with follow-ups is encoded once they are merged.
        let rows = followups.is_empty().then(|| Rows::encode(stamp.clone(), std::mem::take(&mut page.records)));
        Ok((page, followups, rows))
    };
    match upstream::send_and_read(server, &target.credentials, &request, Priority::Sync, read, continued).await {
        Ok(read) => {
            let (mut page, followups, rows) = upstream::parse(server, &request, read)?;
            if let Some(rows) = rows {
                return Ok(Fetched::Page(page, rows));
            }
            complete(target, &mut page, followups).await?;
            let rows = Rows::encode(target.collection.shadow.stamp.clone(), std::mem::take(&mut page.records));
            Ok(Fetched::Page(page, rows))
        }
        Err(error) => {
            // A field the query names is gone upstream: ask for the fields
            // again before the next try.
            if error.api_code.as_deref() == Some("INVALID_FIELD") {
                let foreign_table = target.foreign_table;
                in_transaction(|| catalog::forget_schema_check(foreign_table))?;
            }
            if let Some(reason) = server.provider.cursor_expired(spec, cursor, &error) {
                return Ok(Fetched::CursorExpired(reason));
            }
            match server.provider.feed_refused(spec, cursor, &error) {
                Some(cursor) => Ok(Fetched::FeedRefused { reason: feed_refusal(&error), cursor }),
                None => Err(error),
            }
        }
    }
}

/// What sync_status says of a refused change feed.
fn feed_refusal(error: &SequinError) -> String {
    let status = error.http_status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "refused".into());
    format!("the change feed is refused ({status}): {}", error.message)
}

/// Applies a page and stores its cursor, both or neither.
pub(super) fn apply_page(target: &Target, page: &SyncPage, encoded: Option<&EncodedRows>) -> Result<()> {
    let warnings = in_transaction(|| store_page(target, page, encoded))?;
    for warning in warnings {
        warning!("sequin sync of {}: {warning}", target.collection.shadow.feed_name);
    }
    Ok(())
}

/// What the engine does after a range's page of a split backfill.
pub(super) enum RangeApplied {
    /// Applied; the cursor now (still split, or incremental), and whether
    /// the server's sync is paused.
    Stored { cursor: Value, paused: bool },
    /// The cursor no longer holds the range (its backfill started over):
    /// the page is dropped.
    Stale,
}

/// Applies a range's page of a split backfill with the range's progress
/// taken into the cursor as it is now (other ranges may have moved since
/// this one's request went out), both or neither.
pub(super) fn apply_range_page(target: &Target, range: u64, mut fetched: RangePage) -> Result<RangeApplied> {
    let provider = target.collection.config.server.provider;
    let ranges = target.collection.config.table.backfill_ranges;
    let outcome = in_transaction(|| {
        let (current, _) = catalog::cursor(target.foreign_table)?;
        if !provider.backfill_ranges(&current).is_some_and(|ids| ids.contains(&range)) {
            return Ok((RangeApplied::Stale, Vec::new()));
        }
        let cursor = provider.merge_range(&current, range, &fetched.progress, ranges);
        let phase = match provider.backfill_ranges(&cursor) {
            Some(_) => Phase::Backfill,
            None => Phase::Incremental,
        };
        let page = SyncPage { records: std::mem::take(&mut fetched.records), cursor: cursor.clone(), phase, more: true };
        let warnings = store_page(target, &page, fetched.encoded.as_ref())?;
        offload::discard(page.records);
        let paused = catalog::server_paused(target.foreign_table)?;
        Ok((RangeApplied::Stored { cursor, paused }, warnings))
    })?;
    for warning in outcome.1 {
        warning!("sequin sync of {}: {warning}", target.collection.shadow.feed_name);
    }
    offload::discard(fetched);
    Ok(outcome.0)
}

/// Sends a page's follow-ups (the fields a wide sObject's query could not
/// name) and merges their replies into its records, on the encoder thread:
/// on the worker's, a page of 2,000 records of 800 fields held up every
/// other collection for a second.
async fn complete(target: &Target, page: &mut SyncPage, followups: Vec<ApiRequest>) -> Result<()> {
    let server = &target.collection.config.server;
    for followup in followups {
        let response = upstream::send(server, &target.credentials, &followup, Priority::Sync).await?;
        let placeholder = SyncPage { records: Vec::new(), cursor: Value::Null, phase: page.phase, more: page.more };
        let (provider, spec, mut taken) = (server.provider, target.collection.spec.clone(), std::mem::replace(page, placeholder));
        let (merged, outcome) = offload::start_job(move || {
            let outcome = provider.merge_followup(&spec, &mut taken, &response);
            (taken, outcome)
        })
        .wait()
        .await?;
        *page = merged;
        upstream::parse(server, &followup, outcome)?;
    }
    Ok(())
}

/// The records of a range of a split backfill (read on the reader thread,
/// with their upserts encoded), and the range's progress.
pub(super) async fn fetch_range(target: &Target, cursor: &Value, range: u64) -> Result<RangePage> {
    let server = &target.collection.config.server;
    let request = server.provider.range_request(&target.collection.spec, cursor, range);
    let sent_at = now_us();
    let (provider, spec, stamp) = (server.provider, target.collection.spec.clone(), target.collection.shadow.stamp.clone());
    let read = move |response: &ApiResponse| {
        let (records, progress) = provider.range_response(&spec, response, sent_at)?;
        let page = SyncPage { records, cursor: Value::Null, phase: Phase::Backfill, more: true };
        let followups = provider.page_followups(&spec, &page);
        let encoded = if followups.is_empty() { stamp.encode_upserts(&page.records) } else { None };
        Ok((RangePage { records: page.records, progress, encoded }, followups))
    };
    let read = upstream::send_and_read(server, &target.credentials, &request, Priority::Sync, read, true).await?;
    let (mut fetched, followups) = upstream::parse(server, &request, read)?;
    if !followups.is_empty() {
        let mut page = SyncPage { records: fetched.records, cursor: Value::Null, phase: Phase::Backfill, more: true };
        complete(target, &mut page, followups).await?;
        (fetched.records, fetched.encoded) = Rows::encode(target.collection.shadow.stamp.clone(), page.records).ready().await?;
    }
    Ok(fetched)
}

/// A page's records, and their upserts encoded as jsonb (None: they
/// could not be, and the page is applied from text), being encoded on the
/// encoder thread.
pub(super) struct Rows(offload::Job<(Vec<Record>, Option<EncodedRows>)>);

impl Rows {
    /// Starts encoding `records` on the encoder thread.
    fn encode(stamp: RowStamp, records: Vec<Record>) -> Rows {
        Rows(offload::start_job(move || {
            let encoded = stamp.encode_upserts(&records);
            (records, encoded)
        }))
    }

    /// The records and their encoding, once the encoder is done. Its
    /// failure fails the page (it is fetched again).
    pub async fn ready(self) -> Result<(Vec<Record>, Option<EncodedRows>)> {
        self.0.wait().await
    }
}

/// A page of one range of a split backfill.
pub(super) struct RangePage {
    pub records: Vec<Record>,
    /// The range's progress, for `Provider::merge_range`.
    pub progress: Value,
    pub encoded: Option<EncodedRows>,
}

/// `apply_page` in the caller's transaction; the WARNINGs to report.
fn store_page(target: &Target, page: &SyncPage, encoded: Option<&EncodedRows>) -> Result<Vec<String>> {
    let poll_interval = target.collection.config.server.poll_interval;
    {
        let applied = target.collection.shadow.apply_page(target.foreign_table, &page.records, encoded, Guard::Version)?;
        // A backfill over existing rows: what it does not see (and what did
        // not change meanwhile) was deleted upstream.
        let mut swept = 0;
        if let Some(from_idx) = catalog::backfill_from_idx(target.foreign_table)? {
            let ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
            catalog::remember_seen(target.foreign_table, &ids)?;
            if page.phase == Phase::Incremental {
                swept = target.collection.shadow.sweep_unseen(target.foreign_table, from_idx)?;
                catalog::forget_seen(target.foreign_table)?;
            }
        }
        let warnings = applied.warnings();
        catalog::save_page(
            target.foreign_table,
            page,
            applied.changed + swept,
            applied.poisoned.len(),
            warnings.last().map(String::as_str),
            poll_interval,
            target.collection.sweep_every(),
        )?;
        Ok(warnings)
    }
}

/// Records a failed page; the collection is retried with backoff.
pub(super) fn fail(foreign_table: pg_sys::Oid, error: &SequinError, retry_base: Duration) {
    let message = error_text(error);
    log!("sequin sync of foreign table {}: {message}", u32::from(foreign_table));
    let _ = in_transaction(|| catalog::record_failure(foreign_table, &message, retry_base));
}

/// An error as the catalog and the log keep it: the message, and the
/// DETAIL in parentheses.
pub(super) fn error_text(error: &SequinError) -> String {
    match &error.detail {
        Some(detail) => format!("{} ({detail})", error.message),
        None => error.message.clone(),
    }
}
