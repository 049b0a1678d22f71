//! Salesforce's error shapes. A failed request answers a JSON array
//! `[{"message","errorCode","fields":[…]}]`; inside sObject Collections each
//! record's result carries `{"statusCode","message","fields"}` instead.

use serde_json::{json, Value};

use crate::http::Reply;

/// One error about one record or one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SfError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// None: the body has no `fields` key at all (request-level errors).
    pub fields: Option<Vec<String>>,
}

impl SfError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> SfError {
        SfError {
            status,
            code,
            message: message.into(),
            fields: None,
        }
    }

    /// A 400 about a record, naming `fields` (possibly none).
    pub fn record(code: &'static str, message: impl Into<String>, fields: &[&str]) -> SfError {
        SfError {
            fields: Some(fields.iter().map(|f| f.to_string()).collect()),
            ..SfError::new(400, code, message)
        }
    }

    pub fn not_found() -> SfError {
        SfError::new(404, "NOT_FOUND", "The requested resource does not exist")
    }

    pub fn entity_is_deleted() -> SfError {
        SfError {
            fields: Some(Vec::new()),
            ..SfError::new(404, "ENTITY_IS_DELETED", "entity is deleted")
        }
    }

    pub fn invalid_session() -> SfError {
        SfError::new(401, "INVALID_SESSION_ID", "Session expired or invalid")
    }

    pub fn request_limit() -> SfError {
        SfError::new(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    }

    pub fn malformed_query(message: impl Into<String>) -> SfError {
        SfError::new(400, "MALFORMED_QUERY", message)
    }

    pub fn json_parser(message: impl Into<String>) -> SfError {
        SfError::new(400, "JSON_PARSER_ERROR", message)
    }

    pub fn rolled_back() -> SfError {
        SfError::record(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
            &[],
        )
    }

    /// `{"message","errorCode"[,"fields"]}`: one element of an error reply.
    pub fn body(&self) -> Value {
        let mut v = json!({ "message": self.message, "errorCode": self.code });
        if let Some(fields) = &self.fields {
            v["fields"] = json!(fields);
        }
        v
    }

    /// `{"statusCode","message","fields"}`: one error in a collection result.
    pub fn result_error(&self) -> Value {
        json!({
            "statusCode": self.code,
            "message": self.message,
            "fields": self.fields.clone().unwrap_or_default(),
        })
    }

    pub fn reply(&self) -> Reply {
        let mut reply = Reply::json(self.status, &json!([self.body()]));
        if self.status == 401 {
            reply.set_header("WWW-Authenticate", "Token");
        }
        reply
    }
}

/// The body an injected fault sends on a Salesforce route when none is given.
pub fn default_body(status: u16) -> Value {
    let e = match status {
        400 => SfError::new(400, "BAD_REQUEST", "Bad request."),
        401 => SfError::invalid_session(),
        403 => SfError::request_limit(),
        404 => SfError::not_found(),
        s if s >= 500 => SfError::new(
            s,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)",
        ),
        s => SfError::new(s, "UNKNOWN_EXCEPTION", format!("Request failed with status {s}.")),
    };
    json!([e.body()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = SfError::record(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [LastName]",
            &["LastName"],
        );
        assert_eq!(
            e.reply().body,
            serde_json::to_vec(
                &json!([{"message":"Required fields are missing: [LastName]",
                "errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}])
            )
            .unwrap()
        );
        assert_eq!(
            e.result_error(),
            json!({"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]})
        );
        let r = SfError::invalid_session().reply();
        assert_eq!(r.status, 401);
        assert_eq!(r.header("WWW-Authenticate"), Some("Token"));
        assert_eq!(default_body(503)[0]["errorCode"], "UNKNOWN_EXCEPTION");
    }
}
