//! The write path, provider-neutral: one API request per row, then the API's
//! reply applied to the shadow table in the user's transaction.

use crate::catalog::Collection;
use crate::error::{caught_message, ErrorKind, Result, SequinError};
use crate::fdw::options::{load_credentials, Credentials};
use crate::privilege::run_as;
use crate::providers::{ApiRequest, Record, WriteRow};
use crate::time::now_us;
use crate::rate_limit::Priority;
use crate::upstream;
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde_json::Value;

pub struct Writer {
    pub collection: Collection,
    credentials: Credentials,
}

/// True while Postgres wants the running statement to stop.
fn cancel_pending() -> bool {
    unsafe {
        std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending) != 0
            || std::ptr::read_volatile(&raw const pg_sys::ProcDiePending) != 0
    }
}

impl Writer {
    /// A writer acting with the current user's credentials.
    pub fn for_current_user(collection: Collection) -> Result<Writer> {
        let user = unsafe { pg_sys::GetUserId() };
        let server = &collection.config;
        let credentials = load_credentials(server.server_oid, &server.server.name, user)?;
        Ok(Writer { collection, credentials })
    }

    pub fn insert(&self, row: &WriteRow) -> Result<Record> {
        let provider = self.collection.config.server.provider;
        let request = provider.create_request(self.collection.spec, row)?;
        self.send(&request, None)
    }

    pub fn update(&self, id: &str, row: &WriteRow, old_raw: Option<&Value>) -> Result<Record> {
        let provider = self.collection.config.server.provider;
        let request = provider.update_request(self.collection.spec, id, row, old_raw)?;
        self.send(&request, Some(id))
    }

    pub fn delete(&self, id: &str) -> Result<Record> {
        let provider = self.collection.config.server.provider;
        let request = provider.delete_request(self.collection.spec, id);
        self.send(&request, Some(id))
    }

    fn send(&self, request: &ApiRequest, id: Option<&str>) -> Result<Record> {
        let server = &self.collection.config.server;
        let sent_at = now_us();
        let response = upstream::call(server, &self.credentials, request, Priority::Write, &cancel_pending).inspect_err(|_| {
            // The request was abandoned for a cancel, a statement timeout or
            // a shutdown: Postgres raises its own error for it (and clears
            // the pending interrupt), now that we are back on its stack.
            if cancel_pending() {
                pgrx::check_for_interrupts!();
            }
        })?;
        let parsed = server.provider.write_response(self.collection.spec, id, &response, sent_at);
        upstream::parse(server, request, parsed)
    }

    /// Applies the API's record to the shadow table, as the shadow's owner
    /// (the user writing needs no privilege on it). Any failure here (a
    /// constraint or trigger a DBA added, say) comes back as `40003`: the API
    /// has the change and the next sync brings it.
    pub fn apply_locally(&self, record: &Record) -> Result<()> {
        let shadow = &self.collection.shadow;
        let owner = self.collection.shadow_owner;
        PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
            run_as(owner, || Spi::connect_mut(|client| shadow.apply(client, std::slice::from_ref(record))))
        }))
        .catch_others(|caught| Err(SequinError::internal(caught_message(&caught))))
        .execute()
        .map(|_| ())
        .map_err(|e| {
            SequinError::new(
                ErrorKind::LocalApplyFailed,
                format!(
                    "[{}]: the change to {} was applied upstream but not locally",
                    self.collection.config.server.provider.label(),
                    record.id
                ),
            )
            .with_detail(e.message)
            .with_hint("The API has the change: it appears in the table after the next sync.")
        })
    }
}
