//! The one place where a failure becomes a Postgres error: every error the
//! extension raises is a `SequinError`, and `ErrorKind::sqlstate` is the
//! SQLSTATE table of DESIGN §5.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The API rejected the data (400, 422, validation).
    Validation,
    /// The API reports a duplicate or conflict (409).
    Conflict,
    /// Credentials refused (401, 403) or missing.
    Unauthorized,
    /// The record no longer exists upstream.
    NotFound,
    /// Rate limited, still after retries.
    RateLimited,
    /// The request did not finish within the server's timeout.
    Timeout,
    /// DNS, connection refused, TLS: the API could not be reached.
    Unreachable,
    /// 5xx or a reply we cannot parse.
    Upstream,
    /// The statement touches more rows than one statement may.
    TooManyRows,
    /// Applied upstream, but the local apply failed.
    LocalApplyFailed,
    /// SQL the extension does not support.
    Unsupported,
    /// Writing a column the API owns (id, standard fields).
    ReadOnlyColumn,
    /// A write to a shadow table from outside the extension.
    ShadowTableWrite,
    /// A control function called by someone who does not own its object.
    NotOwner,
    /// A role without the privilege a function needs (USAGE on a server
    /// for `sequin.request()`).
    NoPrivilege,
    /// A function argument that cannot be used (`sequin.request()`'s
    /// method, path, body or headers), refused before any request.
    InvalidArgument,
    /// A control function named something that is not a sequin_fdw
    /// foreign table or server.
    UndefinedObject,
    /// Changes a rollback could not undo (a WARNING).
    NotRolledBack,
    /// An option name that does not exist in its context.
    InvalidOptionName,
    /// An option whose value is malformed or missing.
    InvalidOptionValue,
    /// A foreign table and its shadow table disagree on a column.
    LayoutMismatch,
    /// The server is in recovery (a hot standby): nothing can be written.
    ReadOnly,
    /// A write was sent but its outcome is not known (no reply in time, a
    /// broken connection, a reply that cannot be read): the sync repairs it.
    OutcomeUnknown,
    /// A bug or an impossible state.
    Internal,
}

impl ErrorKind {
    pub fn sqlstate(self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            ErrorKind::Validation => ERRCODE_CHECK_VIOLATION,
            ErrorKind::Conflict => ERRCODE_UNIQUE_VIOLATION,
            ErrorKind::Unauthorized => ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            ErrorKind::NotFound => ERRCODE_FDW_ERROR,
            ErrorKind::RateLimited => ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            ErrorKind::Timeout => ERRCODE_QUERY_CANCELED,
            ErrorKind::Unreachable => ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
            ErrorKind::Upstream => ERRCODE_SYSTEM_ERROR,
            ErrorKind::TooManyRows => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            ErrorKind::LocalApplyFailed => ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN,
            ErrorKind::Unsupported => ERRCODE_FEATURE_NOT_SUPPORTED,
            ErrorKind::ReadOnlyColumn => ERRCODE_GENERATED_ALWAYS,
            ErrorKind::ShadowTableWrite | ErrorKind::NotOwner | ErrorKind::NoPrivilege => ERRCODE_INSUFFICIENT_PRIVILEGE,
            ErrorKind::InvalidArgument => ERRCODE_INVALID_PARAMETER_VALUE,
            ErrorKind::UndefinedObject => ERRCODE_UNDEFINED_OBJECT,
            ErrorKind::NotRolledBack => ERRCODE_WARNING,
            ErrorKind::InvalidOptionName => ERRCODE_FDW_INVALID_OPTION_NAME,
            ErrorKind::InvalidOptionValue => ERRCODE_FDW_INVALID_STRING_FORMAT,
            ErrorKind::LayoutMismatch => ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION,
            ErrorKind::ReadOnly => ERRCODE_READ_ONLY_SQL_TRANSACTION,
            ErrorKind::OutcomeUnknown => ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN,
            ErrorKind::Internal => ERRCODE_INTERNAL_ERROR,
        }
    }
}

/// An error on its way to the user: message, DETAIL and HINT, never a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SequinError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The API's own error code, when the API refused (e.g. Stripe's
    /// `resource_missing`), for code that must tell refusals apart.
    pub api_code: Option<String>,
    /// The HTTP status of the API's refusal, when the API refused.
    pub http_status: Option<u16>,
}

impl SequinError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SequinError { kind, message: message.into(), detail: None, hint: None, api_code: None, http_status: None }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        SequinError::new(ErrorKind::Internal, message)
    }

    pub fn to_report(&self) -> ErrorReport {
        let mut report =
            ErrorReport::new(self.kind.sqlstate(), self.message.clone(), "sequin_fdw");
        if let Some(detail) = &self.detail {
            report = report.set_detail(detail.clone());
        }
        if let Some(hint) = &self.hint {
            report = report.set_hint(hint.clone());
        }
        report
    }

    /// Raises the error in the calling backend (longjmps out through pgrx).
    pub fn raise(&self) -> ! {
        self.to_report().report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

/// The message of an error caught with `PgTryBuilder`.
pub fn caught_message(caught: &pgrx::pg_sys::panic::CaughtError) -> String {
    use pgrx::pg_sys::panic::CaughtError;
    match caught {
        CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => report.message().to_string(),
        CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
    }
}

pub type Result<T, E = SequinError> = std::result::Result<T, E>;

/// Unwraps a result on the backend's thread, raising the error as an ERROR.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T> {
    fn or_raise(self) -> T {
        match self {
            Ok(value) => value,
            Err(error) => error.raise(),
        }
    }
}
