//! GitHub's error bodies: `{"message","documentation_url","status"}` (the
//! status as a string, as GitHub sends it), 422 with an `errors` array, and
//! the 301 of a transferred issue.

use serde_json::{json, Value};

use crate::http::Reply;

pub const DOCS: &str = "https://docs.github.com/rest";
pub const RATE_LIMIT_DOCS: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";

#[derive(Debug, Clone, PartialEq)]
pub struct GhError {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl GhError {
    pub fn new(status: u16, message: impl Into<String>, documentation_url: &str) -> GhError {
        GhError {
            status,
            body: json!({
                "message": message.into(),
                "documentation_url": documentation_url,
                "status": status.to_string(),
            }),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> GhError {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn bad_credentials() -> GhError {
        GhError::new(401, "Bad credentials", DOCS)
    }

    pub fn not_found() -> GhError {
        GhError::new(404, "Not Found", DOCS)
    }

    pub fn issues_disabled() -> GhError {
        GhError::new(410, "Issues are disabled for this repo", DOCS)
    }

    pub fn issue_deleted() -> GhError {
        GhError::new(410, "This issue was deleted", DOCS)
    }

    /// A transferred issue: 301 to where it lives now (no `status` key, as GitHub).
    pub fn moved(url: &str) -> GhError {
        GhError {
            status: 301,
            body: json!({ "message": "Moved Permanently", "url": url, "documentation_url": DOCS }),
            headers: vec![("Location".into(), url.into())],
        }
    }

    /// GitHub's answer to a request without a `User-Agent` (no documentation_url).
    pub fn user_agent_required() -> GhError {
        GhError {
            status: 403,
            body: json!({ "message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes." }),
            headers: Vec::new(),
        }
    }

    /// 422 "Validation Failed" with one entry in `errors`.
    pub fn validation(documentation_url: &str, error: Value) -> GhError {
        let mut e = GhError::new(422, "Validation Failed", documentation_url);
        e.body["errors"] = json!([error]);
        e
    }

    pub fn missing_field(documentation_url: &str, resource: &str, field: &str) -> GhError {
        GhError::validation(
            documentation_url,
            json!({ "resource": resource, "field": field, "code": "missing_field" }),
        )
    }

    pub fn invalid_field(
        documentation_url: &str,
        resource: &str,
        field: &str,
        value: &Value,
    ) -> GhError {
        GhError::validation(
            documentation_url,
            json!({ "resource": resource, "field": field, "code": "invalid", "value": value }),
        )
    }

    /// A body that is not a JSON object.
    pub fn problems_parsing_json() -> GhError {
        GhError::new(400, "Problems parsing JSON", DOCS)
    }

    pub fn reply(&self) -> Reply {
        let mut reply = Reply::json(self.status, &self.body);
        for (name, value) in &self.headers {
            reply.set_header(name, value.clone());
        }
        reply
    }
}

/// What an injected status fault answers on a GitHub route when it names no body.
pub fn default_body(status: u16) -> Value {
    let message = match status {
        401 => "Bad credentials",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    GhError::new(status, message, DOCS).body
}
