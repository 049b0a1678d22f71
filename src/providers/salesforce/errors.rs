//! Salesforce's refusals: an array of `{"message","errorCode","fields"}`
//! (sObject Collections: per-record `statusCode`), mapped to error kinds.

use crate::error::ErrorKind;
use crate::providers::{kind_for_status, retry_after, ApiError, ApiResponse, BatchRefusal};
use serde_json::Value;

const ROLLED_BACK: &str = "ALL_OR_NONE_OPERATION_ROLLED_BACK";


/// One Salesforce error object, top-level (`errorCode`) or inside a
/// collection's result (`statusCode`).
pub(super) fn api_error(error: Option<&Value>, status: u16, fallback: String) -> ApiError {
    let text = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str).map(str::to_string);
    // The OAuth endpoints answer `{"error","error_description"}` instead.
    let code = text("errorCode").or_else(|| text("statusCode")).or_else(|| text("error"));
    let fields = error
        .and_then(|e| e.get("fields"))
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .filter(|f| !f.is_empty());
    ApiError {
        kind: kind_for_code(code.as_deref(), status),
        status,
        message: text("message").or_else(|| text("error_description")).unwrap_or(fallback),
        code,
        field: fields,
        request_id: None,
        retry_after: None,
    }
}

fn kind_for_code(code: Option<&str>, status: u16) -> ErrorKind {
    match code {
        Some("DUPLICATES_DETECTED" | "DUPLICATE_VALUE") => ErrorKind::Conflict,
        Some("INVALID_SESSION_ID") => ErrorKind::Unauthorized,
        Some("REQUEST_LIMIT_EXCEEDED") => ErrorKind::RateLimited,
        Some("NOT_FOUND" | "ENTITY_IS_DELETED") => ErrorKind::NotFound,
        Some(
            "REQUIRED_FIELD_MISSING"
            | "STRING_TOO_LONG"
            | "FIELD_INTEGRITY_EXCEPTION"
            | "MALFORMED_ID"
            | "JSON_PARSER_ERROR"
            | "MISSING_ARGUMENT",
        ) => ErrorKind::Validation,
        Some(code) if code.starts_with("INVALID_") => ErrorKind::Validation,
        _ => kind_for_status(status),
    }
}

/// The first record a collection reply refused, by its own error (the others
/// only say they were rolled back).
pub(super) fn first_refusal(response: &ApiResponse, results: &[Value]) -> Option<BatchRefusal> {
    let failed = |r: &&Value| r.get("success").and_then(Value::as_bool) != Some(true);
    let errors = |r: &Value| r.get("errors").and_then(Value::as_array).cloned().unwrap_or_default();
    let own_error = |r: &Value| {
        errors(r).into_iter().find(|e| e.get("statusCode").or_else(|| e.get("errorCode")).and_then(Value::as_str) != Some(ROLLED_BACK))
    };
    let refusal = |position: usize, error: Option<Value>| BatchRefusal {
        position,
        error: api_error(error.as_ref(), response.status, "Salesforce refused the record without a message".into()),
    };
    if let Some((position, error)) =
        results.iter().enumerate().filter(|(_, r)| failed(r)).find_map(|(i, r)| own_error(r).map(|e| (i, e)))
    {
        return Some(refusal(position, Some(error)));
    }
    let (position, result) = results.iter().enumerate().find(|(_, r)| failed(r))?;
    Some(refusal(position, errors(result).into_iter().next()))
}

/// Any non-2xx reply.
pub(super) fn error(response: &ApiResponse) -> ApiError {
    let body = response.json();
    let fallback = match &body {
        Some(_) => format!("HTTP {} without an error message", response.status),
        None => format!("HTTP {} with a reply that is not JSON", response.status),
    };
    // An array of errors; the first says what went wrong.
    let first = match &body {
        Some(Value::Array(errors)) => errors.first(),
        Some(object @ Value::Object(_)) => Some(object),
        _ => None,
    };
    let mut error = api_error(first, response.status, fallback);
    error.retry_after = retry_after(response);
    error
}
