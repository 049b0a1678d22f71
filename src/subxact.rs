//! Subtransactions: try something inside the current transaction and, when
//! Postgres raises an ERROR, undo just that part and carry on (what a
//! plpgsql `BEGIN … EXCEPTION` block does).

use crate::error::{caught_message, SequinError};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;

/// Why an attempt failed: the SQLSTATE (five characters) and the message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub sqlstate: String,
    pub message: String,
}

impl Failure {
    /// Class 22 (data exception: a value that does not fit its column's
    /// type): the data is at fault, and trying again will not help.
    pub fn is_data_error(&self) -> bool {
        self.sqlstate.starts_with("22")
    }

    /// The record itself cannot be stored, in any form: a value Postgres
    /// cannot hold (class 22, e.g. `\u0000` in jsonb) or a limit it exceeds
    /// (class 54, e.g. an id too long for the primary key's index).
    pub fn is_record_error(&self) -> bool {
        self.is_data_error() || self.sqlstate.starts_with("54")
    }
}

fn sqlstate_of(caught: &CaughtError) -> String {
    sqlstate_text(match caught {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report.sql_error_code(),
        CaughtError::RustPanic { ereport, .. } => ereport.sql_error_code(),
    })
}

fn sqlstate_text(code: pgrx::PgSqlErrorCode) -> String {
    let code = code as i32;
    // Postgres packs the five characters six bits each (MAKE_SQLSTATE).
    (0..5).map(|i| char::from(((code >> (6 * i)) & 0x3F) as u8 + b'0')).collect()
}

/// Runs `body` in a subtransaction. An ERROR inside (or an `Err`) rolls
/// back what `body` did and comes back as `Err`; the transaction goes on.
pub fn attempt<R>(body: impl FnOnce() -> Result<R, SequinError>) -> Result<R, Failure> {
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let outcome = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
            body().map_err(|e| Failure { sqlstate: sqlstate_text(e.kind.sqlstate()), message: e.message })
        }))
        .catch_others(|caught| Err(Failure { sqlstate: sqlstate_of(&caught), message: caught_message(&caught) }))
        .execute();
        if outcome.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_unpack_to_their_five_characters() {
        assert_eq!(sqlstate_text(pgrx::PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE), "22003");
        assert_eq!(sqlstate_text(pgrx::PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE), "55P03");
        let failure = |sqlstate: &str| Failure { sqlstate: sqlstate.into(), message: String::new() };
        assert!(failure("22P02").is_data_error());
        assert!(!failure("23514").is_data_error() && !failure("55P03").is_data_error());
    }
}
