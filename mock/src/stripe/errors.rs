//! Stripe's error body: `{"error":{"type","code","message","param","doc_url",
//! "request_log_url"}}`, with the fields that don't apply left out.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::http::Reply;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    /// A 400 invalid_request_error.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
            param: None,
        }
    }

    pub fn code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub fn status(mut self, status: u16) -> ApiError {
        self.status = status;
        self
    }

    pub fn unknown_param(param: &str) -> ApiError {
        ApiError::invalid(format!("Received unknown parameter: {param}"))
            .code("parameter_unknown")
            .param(param)
    }

    pub fn missing_param(param: &str) -> ApiError {
        ApiError::invalid(format!("Missing required param: {param}."))
            .code("parameter_missing")
            .param(param)
    }

    /// `name=` for a param that must keep a value.
    pub fn cannot_unset(param: &str) -> ApiError {
        ApiError::invalid(format!(
            "You passed an empty string for '{param}'. We assume empty values are an attempt to unset a parameter; however '{param}' cannot be unset. You should remove '{param}' from your request or supply a non-empty value."
        ))
        .code("parameter_invalid_empty")
        .param(param)
    }

    pub fn invalid_integer(param: &str, value: &str) -> ApiError {
        ApiError::invalid(format!("Invalid integer: {value}"))
            .code("parameter_invalid_integer")
            .param(param)
    }

    /// 404 for an id that doesn't exist (or was deleted).
    pub fn no_such(object: &str, id: &str, param: &str) -> ApiError {
        ApiError::invalid(format!("No such {object}: '{id}'"))
            .code("resource_missing")
            .param(param)
            .status(404)
    }

    pub fn unrecognized_url(method: &str, path: &str) -> ApiError {
        ApiError::invalid(format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        ))
        .status(404)
    }

    pub fn no_api_key() -> ApiError {
        ApiError::invalid(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        )
        .status(401)
    }

    /// `masked` must already be masked (see auth::mask_key).
    pub fn invalid_api_key(masked: &str) -> ApiError {
        ApiError::invalid(format!("Invalid API Key provided: {masked}")).status(401)
    }

    /// An expired or unknown OAuth access token; `masked` as for invalid_api_key.
    pub fn expired_api_key(masked: &str) -> ApiError {
        ApiError::invalid(format!("Expired API Key provided: {masked}")).status(401)
    }

    pub fn idempotency_mismatch(key: &str) -> ApiError {
        ApiError {
            kind: "idempotency_error",
            ..ApiError::invalid(format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
            ))
        }
    }

    /// The JSON body. `log` is (request id, livemode) when the request got far
    /// enough to have a dashboard log entry.
    pub fn body(&self, log: Option<(&str, bool)>) -> Value {
        let mut error = json!({ "type": self.kind, "message": self.message });
        if let Some(code) = self.code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = &self.param {
            error["param"] = json!(param);
        }
        if let Some((request_id, livemode)) = log {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mode = if livemode { "" } else { "test/" };
            error["request_log_url"] = json!(format!(
                "https://dashboard.stripe.com/{mode}logs/{request_id}?t={now}"
            ));
        }
        json!({ "error": error })
    }

    pub fn reply(&self, log: Option<(&str, bool)>) -> Reply {
        Reply::json(self.status, &self.body(log))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_leaves_out_what_does_not_apply() {
        let e = ApiError::no_such("customer", "cus_x", "id");
        assert_eq!(
            e.body(None),
            json!({"error":{"type":"invalid_request_error","code":"resource_missing",
                "message":"No such customer: 'cus_x'","param":"id",
                "doc_url":"https://stripe.com/docs/error-codes/resource-missing"}})
        );
        let body = ApiError::invalid("x").body(Some(("req_1", false)));
        assert!(body["error"].get("param").is_none());
        assert!(body["error"]["request_log_url"]
            .as_str()
            .unwrap()
            .starts_with("https://dashboard.stripe.com/test/logs/req_1?t="));
    }
}
