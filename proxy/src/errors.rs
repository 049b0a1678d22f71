//! The proxy's own error replies: the one SQLSTATE → HTTP status mapping and
//! the JSON body every proxy error carries, so a client can tell an error of
//! the proxy (`"source":"proxy"`) from one the API itself returned.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    pub status: StatusCode,
    pub message: String,
    pub sqlstate: Option<String>,
    pub detail: Option<String>,
    /// Overload (no free connection, too many databases): the client may
    /// simply try again in a moment.
    pub retry_after: bool,
    /// The request body was not (fully) read, so the connection cannot carry
    /// another request.
    pub close: bool,
}

impl ProxyError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ProxyError {
        ProxyError {
            status,
            message: message.into(),
            sqlstate: None,
            detail: None,
            retry_after: false,
            close: false,
        }
    }

    pub fn not_found(message: impl Into<String>) -> ProxyError {
        ProxyError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ProxyError {
        ProxyError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ProxyError {
        ProxyError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn bad_gateway(message: impl Into<String>) -> ProxyError {
        ProxyError::new(StatusCode::BAD_GATEWAY, message)
    }

    pub fn busy(message: impl Into<String>) -> ProxyError {
        ProxyError {
            retry_after: true,
            ..ProxyError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    pub fn closing(mut self) -> ProxyError {
        self.close = true;
        self
    }

    /// An ERROR raised by the statement (the extension's own, or Postgres'
    /// when the function is missing).
    pub fn from_sqlstate(
        code: &str,
        message: impl Into<String>,
        detail: Option<String>,
    ) -> ProxyError {
        let mapped = map_sqlstate(code);
        ProxyError {
            status: mapped.status,
            message: message.into(),
            sqlstate: Some(code.to_string()),
            detail,
            retry_after: mapped.retry_after,
            close: false,
        }
    }

    /// Written by hand rather than through a serde_json Map, which would
    /// sort the keys: "source" first reads better in a terminal.
    pub fn body(&self) -> String {
        let text = |s: &str| serde_json::Value::from(s).to_string();
        let mut out = format!(
            "{{\"error\":{{\"source\":\"proxy\",\"message\":{}",
            text(&self.message)
        );
        if let Some(code) = &self.sqlstate {
            out.push_str(&format!(",\"sqlstate\":{}", text(code)));
        }
        if let Some(detail) = &self.detail {
            out.push_str(&format!(",\"detail\":{}", text(detail)));
        }
        out.push_str("}}");
        out
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body())));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub status: StatusCode,
    pub retry_after: bool,
}

/// THE mapping of an ERROR's SQLSTATE to the HTTP status the client sees.
/// Everything not listed is the database's or the API's failure, not the
/// client's: 502.
pub fn map_sqlstate(code: &str) -> Mapped {
    let status = match code {
        // Credential matches no user mapping / the role may not use the server.
        "28000" | "28P01" | "42501" => StatusCode::FORBIDDEN,
        // Unknown server; sequin_fdw not installed in that database
        // (function or schema missing).
        "42704" | "42883" | "3F000" => StatusCode::NOT_FOUND,
        // The API did not answer in time / the outcome of a write is unknown.
        "57014" | "40003" => StatusCode::GATEWAY_TIMEOUT,
        // The request itself is malformed (bad JSON body, bad parameter).
        "22023" | "22P02" => StatusCode::BAD_REQUEST,
        "53400" => {
            return Mapped {
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_after: true,
            }
        }
        // A read-only (standby) database cannot apply the reply's records.
        "25006" => StatusCode::SERVICE_UNAVAILABLE,
        // Connection exceptions, e.g. the API could not be reached.
        c if c.starts_with("08") => StatusCode::BAD_GATEWAY,
        _ => StatusCode::BAD_GATEWAY,
    };
    Mapped {
        status,
        retry_after: false,
    }
}

/// An error of the statement. Without a SQLSTATE the connection broke
/// mid-query: the outcome is unknown, the cause is ours to log, not to return.
pub fn from_query_error(e: &tokio_postgres::Error) -> ProxyError {
    match e.as_db_error() {
        Some(db) => ProxyError::from_sqlstate(
            db.code().code(),
            db.message(),
            db.detail().map(str::to_string),
        ),
        None => {
            eprintln!(
                "sequin-proxy: query failed without a database error: {}",
                chain(e)
            );
            ProxyError::bad_gateway("the connection to the database failed during the request")
        }
    }
}

/// Connecting failed. Only "no such database" is the client's business; the
/// rest (wrong proxy password, Postgres down) is logged and kept to ourselves.
pub fn from_connect_error(database: &str, e: &tokio_postgres::Error) -> ProxyError {
    if let Some(db) = e.as_db_error() {
        if db.code().code() == "3D000" {
            return ProxyError {
                sqlstate: Some("3D000".into()),
                ..ProxyError::not_found(format!("database \"{database}\" does not exist"))
            };
        }
    }
    eprintln!(
        "sequin-proxy: cannot connect to database \"{database}\": {}",
        chain(e)
    );
    ProxyError::bad_gateway("the proxy could not connect to the database")
}

/// An error with its causes: tokio-postgres puts the interesting part
/// ("Connection refused") in the source.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &str) -> u16 {
        map_sqlstate(code).status.as_u16()
    }

    #[test]
    fn mapping() {
        for (code, want) in [
            ("28000", 403),
            ("28P01", 403),
            ("42501", 403),
            ("42704", 404),
            ("42883", 404),
            ("3F000", 404),
            ("57014", 504),
            ("40003", 504),
            ("08000", 502),
            ("08006", 502),
            ("08P01", 502),
            ("22023", 400),
            ("22P02", 400),
            ("53400", 503),
            ("25006", 503),
            ("XX000", 502),
            ("P0001", 502),
            ("", 502),
            ("garbage", 502),
        ] {
            assert_eq!(status(code), want, "{code}");
        }
        assert!(map_sqlstate("53400").retry_after);
        assert!(!map_sqlstate("25006").retry_after);
        assert!(!map_sqlstate("28000").retry_after);
    }

    #[test]
    fn body_shape() {
        let e = ProxyError::from_sqlstate("42704", "server \"x\" does not exist", None);
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"source": "proxy", "message": "server \"x\" does not exist", "sqlstate": "42704"}})
        );
        let e = ProxyError::from_sqlstate("22023", "bad", Some("why".into()));
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"]["detail"], "why");
        let e = ProxyError::not_found("no");
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"source": "proxy", "message": "no"}})
        );
    }

    #[test]
    fn response_headers() {
        let r = ProxyError::from_sqlstate("53400", "limit", None).into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let r = ProxyError::from_sqlstate("25006", "read only", None).into_response();
        assert!(r.headers().get(RETRY_AFTER).is_none());
        let r = ProxyError::busy("queue").into_response();
        assert_eq!(r.headers()[RETRY_AFTER], "1");
    }
}
