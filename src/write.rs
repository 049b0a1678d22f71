//! The write path, provider-neutral: one API request per row, then the API's
//! reply applied to the shadow table in the user's transaction.

use crate::catalog::Collection;
use crate::error::{caught_message, ErrorKind, Result, SequinError};
use crate::fdw::options::{load_credentials, Credentials};
use crate::privilege::run_as;
use crate::providers::{ApiRequest, ApiResponse, BatchRefusal, BatchRow, Record, WriteOp, WriteRow, WriteValue};
use crate::time::now_us;
use crate::rate_limit::Priority;
use crate::upstream;
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde_json::Value;

pub struct Writer {
    pub collection: Collection,
    credentials: Credentials,
    /// What this writer asked the API (for EXPLAIN ANALYZE).
    pub requests: std::cell::RefCell<RequestLog>,
}

/// The API calls of a statement: each route with its count, and the time
/// spent waiting for them (retries and rate-limit waits included).
#[derive(Default)]
pub struct RequestLog {
    pub routes: Vec<(String, u32)>,
    pub time: std::time::Duration,
}

impl RequestLog {
    fn add(&mut self, route: String, took: std::time::Duration) {
        self.time += took;
        match self.routes.iter_mut().find(|(r, _)| *r == route) {
            Some((_, count)) => *count += 1,
            None => self.routes.push((route, 1)),
        }
    }

    pub fn calls(&self) -> u32 {
        self.routes.iter().map(|(_, count)| count).sum()
    }
}

/// Takes a pending query cancel (a cancel request or a statement timeout,
/// not a shutdown) as Postgres' ProcessInterrupts would, and returns its
/// message; None when there is none.
fn consume_cancel() -> Option<&'static str> {
    unsafe {
        let die = std::ptr::read_volatile(&raw const pg_sys::ProcDiePending) != 0;
        let cancel = std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending) != 0;
        if die || !cancel || pg_sys::QueryCancelHoldoffCount != 0 {
            return None;
        }
        std::ptr::write_volatile(&raw mut pg_sys::QueryCancelPending, 0);
        // (timeout.h's indicator is not in pgrx's bindings: the statement
        // has run for its statement_timeout, or it was a cancel request.)
        let timeout_ms = i64::from(pg_sys::StatementTimeout);
        let ran_ms = (pg_sys::GetCurrentTimestamp() - pg_sys::GetCurrentStatementStartTimestamp()) / 1000;
        match timeout_ms > 0 && ran_ms >= timeout_ms {
            true => Some("canceling statement due to statement timeout"),
            false => Some("canceling statement due to user request"),
        }
    }
}

/// True while Postgres wants the running statement to stop.
pub(crate) fn cancel_pending() -> bool {
    unsafe {
        std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending) != 0
            || std::ptr::read_volatile(&raw const pg_sys::ProcDiePending) != 0
    }
}

impl Writer {
    /// A writer acting with the current user's credentials.
    pub fn for_current_user(foreign_table: pg_sys::Oid, collection: Collection) -> Result<Writer> {
        let user = unsafe { pg_sys::GetUserId() };
        let server = &collection.config;
        let credentials = load_credentials(server.server_oid, &server.server.name, user)?;
        crate::account::ensure_same_account(&server.server, server.server_owner, user, &credentials)?;
        // Which columns a statement may set is the API's to say.
        let collection = crate::discovery::ensure_described(foreign_table, collection, &credentials)?;
        Ok(Writer { collection, credentials, requests: Default::default() })
    }

    pub fn insert(&self, row: &WriteRow) -> Result<Record> {
        let provider = self.collection.config.server.provider;
        let request = provider.create_request(&self.collection.spec, row)?;
        self.send(&request, None)
    }

    pub fn update(&self, id: &str, row: &WriteRow, old_raw: Option<&Value>) -> Result<Record> {
        let provider = self.collection.config.server.provider;
        let request = provider.update_request(&self.collection.spec, id, row, old_raw)?;
        self.send(&request, Some(id))
    }

    pub fn delete(&self, id: &str) -> Result<Record> {
        let provider = self.collection.config.server.provider;
        let raw = match provider.needs_synced_record() {
            true => crate::catalog::shadow_raw(&self.collection, id)?,
            false => None,
        };
        let request = provider.delete_request(&self.collection.spec, id, raw.as_ref());
        self.send(&request, Some(id))
    }

    /// Writes a statement's rows in one all-or-nothing request (APIs with a
    /// batch endpoint): the records to apply locally, in order, or the
    /// API's refusal naming the first row at fault, nothing applied.
    pub fn batch(&self, op: WriteOp, rows: &[BatchRow]) -> Result<Vec<Record>> {
        let provider = self.collection.config.server.provider;
        // A DELETE of a record already gone upstream has nothing left to do
        // there: it is taken as done and the others are sent again.
        let mut gone: Vec<Option<Record>> = vec![None; rows.len()];
        loop {
            let pending: Vec<usize> = (0..rows.len()).filter(|&i| gone[i].is_none()).collect();
            if pending.is_empty() {
                return Ok(gone.into_iter().flatten().collect());
            }
            let batch: Vec<BatchRow> = pending.iter().map(|&i| rows[i].clone()).collect();
            let request = provider.batch_request(&self.collection.spec, op, &batch)?;
            let (response, sent_at) = self.exchange(&request, None)?;
            if response.json().is_none() {
                let error = crate::providers::unparseable(&response, "not JSON");
                return Err(self.unreadable_reply(error.into_error(provider.label(), &request)));
            }
            match provider.batch_response(&self.collection.spec, op, &batch, &response, sent_at) {
                Ok(records) => {
                    let mut records = records.into_iter();
                    return Ok(gone.into_iter().map(|g| g.or_else(|| records.next())).flatten().collect());
                }
                Err(refusal) if op == WriteOp::Delete && refusal.error.kind == ErrorKind::NotFound => {
                    let row = &batch[refusal.position];
                    let id = row.id.clone().unwrap_or_default();
                    gone[pending[refusal.position]] = Some(Record::gone(&id, sent_at));
                }
                Err(refusal) => return Err(batch_refused(refusal, &batch, provider.label(), &request)),
            }
        }
    }

    /// The API's current records for these ids, in one request, where the
    /// API has one (None otherwise).
    pub fn fetch_many(&self, ids: &[&str]) -> Result<Option<Vec<Record>>> {
        let provider = self.collection.config.server.provider;
        let Some(request) = provider.fetch_many_request(&self.collection.spec, ids) else {
            return Ok(None);
        };
        let (response, _) = self.exchange(&request, None)?;
        let records = provider.fetch_many_response(&self.collection.spec, &response);
        upstream::parse(&self.collection.config.server, &request, records).map(Some)
    }

    fn send(&self, request: &ApiRequest, id: Option<&str>) -> Result<Record> {
        let server = &self.collection.config.server;
        let (response, sent_at) = self.exchange(request, id)?;
        let parsed = server.provider.write_response(&self.collection.spec, id, &response, sent_at);
        upstream::parse(server, request, parsed).map_err(|e| self.unreadable_reply(e))
    }

    /// A 2xx reply we cannot read: the API applied the write, but we do not
    /// know what it holds now. The sync repairs the row.
    fn unreadable_reply(&self, error: SequinError) -> SequinError {
        let provider = self.collection.config.server.provider.label();
        SequinError::new(ErrorKind::OutcomeUnknown, format!("[{provider}]: the API accepted the write, but its reply could not be read"))
            .with_detail(format!("{}: {}", error.message, error.detail.unwrap_or_default()))
            .with_hint("The change is probably applied upstream: the table shows it after the next sync.")
    }

    /// Sends a write and returns the 2xx reply with the time it was sent.
    /// `id`: the record it is about, which the request log writes `{id}`.
    fn exchange(&self, request: &ApiRequest, id: Option<&str>) -> Result<(ApiResponse, i64)> {
        let server = &self.collection.config.server;
        let sent_at = now_us();
        let started = std::time::Instant::now();
        let response = upstream::call(server, &self.credentials, request, Priority::Write, &cancel_pending);
        let route = match id {
            Some(id) if !id.is_empty() => request.route().replace(id, "{id}"),
            _ => request.route().to_string(),
        };
        self.requests.borrow_mut().add(format!("{} {route}", request.method.as_str()), started.elapsed());
        let response = response.map_err(|error| match consume_cancel() {
            // A cancel or statement timeout ends the statement as Postgres
            // would, but through the write path's error, whose DETAIL lists
            // the rows this statement already wrote upstream.
            Some(message) => SequinError::new(ErrorKind::Timeout, message),
            None => {
                // A shutdown: Postgres ends the session its own way, now
                // that we are back on its stack.
                if cancel_pending() {
                    pgrx::check_for_interrupts!();
                }
                error
            }
        })?;
        Ok((response, sent_at))
    }

    pub fn apply_locally(&self, records: &[Record]) -> Result<()> {
        apply_locally(&self.collection, records)
    }
}

/// Applies the API's records to the collection's shadow table, as the
/// shadow's owner (the user writing needs no privilege on it). Any failure
/// here (a constraint or trigger a DBA added, say) comes back as `40003`:
/// the API has the change and the next sync brings it.
pub fn apply_locally(collection: &Collection, records: &[Record]) -> Result<()> {
    let shadow = &collection.shadow;
    let owner = collection.shadow_owner;
    PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        run_as(owner, || Spi::connect_mut(|client| shadow.apply(client, records)))
    }))
    .catch_others(|caught| Err(SequinError::internal(caught_message(&caught))))
    .execute()
    .map(|_| ())
    .map_err(|e| {
        SequinError::new(
            ErrorKind::LocalApplyFailed,
            format!(
                "[{}]: the change to {} was applied upstream but not locally",
                collection.config.server.provider.label(),
                match records {
                    [record] => record.id.clone(),
                    _ => format!("{} records", records.len()),
                }
            ),
        )
        .with_detail(e.message)
        .with_hint("The API has the change: it appears in the table after the next sync.")
    })
}

/// The user's error for a refused batch: the API's message for the first row
/// at fault, which row it is (position, id, the values the API names) and
/// that nothing was applied.
fn batch_refused(refusal: BatchRefusal, rows: &[BatchRow], provider: &str, request: &ApiRequest) -> SequinError {
    let position = refusal.position;
    let fields: Vec<String> = refusal.error.field.iter().flat_map(|f| f.split(", ")).map(str::to_lowercase).collect();
    let error = refusal.error.into_error(provider, request);
    let mut which = format!("Row {} of {}", position + 1, rows.len());
    if let Some(row) = rows.get(position) {
        if let Some(id) = &row.id {
            which.push_str(&format!(" (id {id})"));
        }
        let named: Vec<&(String, WriteValue)> = row
            .row
            .iter()
            .filter(|(name, _)| fields.is_empty() || fields.iter().any(|f| f.replace('_', "") == name.replace('_', "")))
            .take(4)
            .collect();
        if !named.is_empty() {
            let names = named.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
            let values = named.iter().map(|(_, v)| value_text(v)).collect::<Vec<_>>().join(", ");
            which.push_str(&format!(": ({names})=({values})"));
        }
    }
    let detail = format!(
        "{which}. No row was applied: the API takes the statement's rows all or none. {}",
        error.detail.clone().unwrap_or_default()
    );
    error.with_detail(detail)
}

fn value_text(value: &WriteValue) -> String {
    match value {
        WriteValue::Null => "null".into(),
        WriteValue::Text(text) => text.clone(),
        WriteValue::Json(json) => json.to_string(),
    }
}
