//! One request: check it, read its body within limits, make the one SQL call
//! and turn the row into the response.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::errors::{self, ProxyError};
use crate::pool::Pools;
use crate::route::{self, Credential, Route};

/// The one statement per request. The casts fix the parameter types, so the
/// statement prepares the same way whatever the client sent.
pub const SQL: &str = "SELECT status, headers, body, database_behind \
FROM sequin.proxy_request($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::bytea)";

pub struct Context {
    pub pools: Arc<Pools>,
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    /// Held by every running SQL call, so shutdown can wait for calls whose
    /// client already went away.
    pub in_flight: mpsc::Sender<()>,
}

/// Logs the request when dropped, so a request whose client hung up (hyper
/// drops the future) still gets its line.
struct RequestLog {
    method: Method,
    path: String,
    start: Instant,
    status: Option<StatusCode>,
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        let status = match self.status {
            Some(s) => s.as_u16().to_string(),
            None => "client-gone".to_string(),
        };
        eprintln!(
            "{} {} {} {}ms",
            self.method,
            self.path,
            status,
            self.start.elapsed().as_millis()
        );
    }
}

pub async fn handle(ctx: Arc<Context>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let mut log = RequestLog {
        method: req.method().clone(),
        // Without the query string: it may carry customer data.
        path: req.uri().path().to_string(),
        start: Instant::now(),
        status: None,
    };
    let response = match forward(&ctx, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    log.status = Some(response.status());
    response
}

async fn forward(
    ctx: &Context,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ProxyError> {
    let route = route::parse_route(req.uri())?;
    route::check_method(req.method())?;
    let credential = route::credential(req.headers())?;
    let headers = route::request_headers(req.headers())?;
    let method = req.method().as_str().to_string();
    let body = read_body(ctx, req).await?;

    let client = ctx.pools.get(&route.database).await?;
    let call = Call {
        route,
        credential,
        method,
        headers,
        body,
    };
    // Spawned, and awaited through its handle: if the client hangs up, hyper
    // drops this future but the task goes on, so the API call that may
    // already be in flight still has its records applied, and the pooled
    // connection is never returned mid-query.
    let guard = ctx.in_flight.clone();
    let task = tokio::spawn(async move {
        let _guard = guard;
        let result = call.run(&client).await;
        drop(client);
        result.map(|reply| (reply, call.route))
    });
    let (reply, route) = match task.await {
        Ok(result) => result?,
        Err(e) => {
            eprintln!("sequin-proxy: the request task failed: {e}");
            return Err(ProxyError::bad_gateway(
                "the proxy failed while handling the request",
            ));
        }
    };
    Ok(reply.into_response(&route))
}

async fn read_body(ctx: &Context, req: Request<Incoming>) -> Result<Option<Bytes>, ProxyError> {
    let too_large = || {
        ProxyError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} bytes",
                ctx.max_body_bytes
            ),
        )
        .closing()
    };
    // Refuse before reading a byte when the client announces the size.
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        let len = std::str::from_utf8(len.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if len.is_some_and(|n| n > ctx.max_body_bytes as u64) {
            return Err(too_large());
        }
    }
    let limited = Limited::new(req.into_body(), ctx.max_body_bytes);
    let collected = match tokio::time::timeout(ctx.body_timeout, limited.collect()).await {
        Err(_) => {
            return Err(ProxyError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            )
            .closing())
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Ok(Err(_)) => {
            return Err(ProxyError::bad_request("the request body could not be read").closing())
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    Ok(if collected.is_empty() {
        None
    } else {
        Some(collected)
    })
}

struct Call {
    route: Route,
    credential: Credential,
    method: String,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
}

impl Call {
    async fn run(&self, client: &deadpool_postgres::Object) -> Result<Reply, ProxyError> {
        let statement = client
            .prepare_cached(SQL)
            .await
            .map_err(|e| errors::from_query_error(&e))?;
        let headers = serde_json::Value::Array(
            self.headers
                .iter()
                .map(|(n, v)| serde_json::json!([n, v]))
                .collect(),
        );
        let body: Option<&[u8]> = self.body.as_deref();
        let row = client
            .query_one(
                &statement,
                &[
                    &self.route.server,
                    &self.credential.expose(),
                    &self.method,
                    &self.route.path,
                    &headers,
                    &body,
                ],
            )
            .await
            .map_err(|e| errors::from_query_error(&e))?;
        Reply::from_row(&row)
    }
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Bytes,
    database_behind: Option<String>,
}

impl Reply {
    fn from_row(row: &tokio_postgres::Row) -> Result<Reply, ProxyError> {
        let bad = |what: &str| {
            eprintln!("sequin-proxy: sequin.proxy_request returned an unusable {what}");
            ProxyError::bad_gateway("the extension returned an unusable reply")
        };
        let status: i32 = row.try_get(0).map_err(|_| bad("status"))?;
        let status = u16::try_from(status)
            .ok()
            .filter(|s| (200..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| bad("status"))?;
        let headers: Option<serde_json::Value> = row.try_get(1).map_err(|_| bad("headers"))?;
        let body: Option<Vec<u8>> = row.try_get(2).map_err(|_| bad("body"))?;
        let database_behind: Option<String> = row.try_get(3).map_err(|_| bad("database_behind"))?;
        Ok(Reply {
            status,
            headers: header_pairs(headers),
            body: body.map(Bytes::from).unwrap_or_default(),
            database_behind,
        })
    }

    fn into_response(self, route: &Route) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        let listed = route::listed_in_connection(&self.headers);
        let out = response.headers_mut();
        for (name, value) in &self.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                eprintln!("sequin-proxy: dropped a reply header that is not valid HTTP");
                continue;
            };
            if route::response_header_allowed(&name, &listed) {
                out.append(name, value);
            }
        }
        if let Some(reason) = self.database_behind {
            out.insert(
                HeaderName::from_static("sequin-database-behind"),
                HeaderValue::from_static("true"),
            );
            eprintln!(
                "sequin-proxy: database \"{}\" server \"{}\" is behind the API: {}",
                route.database,
                route.server,
                reason.replace(['\r', '\n'], " ")
            );
        }
        response
    }
}

/// The row's headers: an array of [name, value] pairs. Anything else in it
/// is skipped rather than failing a reply whose records are already applied.
fn header_pairs(value: Option<serde_json::Value>) -> Vec<(String, String)> {
    let Some(serde_json::Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match item {
            serde_json::Value::Array(pair) => match pair.as_slice() {
                [serde_json::Value::String(n), serde_json::Value::String(v)] => {
                    Some((n.clone(), v.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statement() {
        assert_eq!(
            SQL,
            "SELECT status, headers, body, database_behind FROM sequin.proxy_request($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::bytea)"
        );
    }

    #[test]
    fn header_pairs_are_lenient() {
        assert_eq!(header_pairs(None), vec![]);
        assert_eq!(header_pairs(Some(json!({"a": "b"}))), vec![]);
        assert_eq!(
            header_pairs(Some(json!([["a", "1"], ["b"], 3, ["a", "2"], ["c", 4]]))),
            vec![("a".into(), "1".into()), ("a".into(), "2".into())]
        );
    }

    fn route() -> Route {
        Route {
            database: "db".into(),
            server: "srv".into(),
            path: "/x".into(),
        }
    }

    #[test]
    fn reply_to_response() {
        let reply = Reply {
            status: StatusCode::CREATED,
            headers: header_pairs(Some(json!([
                ["Content-Type", "application/json"],
                ["Content-Length", "999"],
                ["Transfer-Encoding", "chunked"],
                ["Connection", "x-hop"],
                ["X-Hop", "1"],
                ["Set-Cookie", "a=1"],
                ["Set-Cookie", "b=2"],
                ["Bad Name", "x"],
                ["x-bad-value", "a\nb"],
            ]))),
            body: Bytes::from_static(b"{}"),
            database_behind: Some("replication\nlag".into()),
        };
        let r = reply.into_response(&route());
        assert_eq!(r.status(), 201);
        let h = r.headers();
        assert_eq!(h["content-type"], "application/json");
        assert!(h.get("content-length").is_none());
        assert!(h.get("transfer-encoding").is_none());
        assert!(h.get("connection").is_none());
        assert!(h.get("x-hop").is_none());
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
        assert_eq!(h["sequin-database-behind"], "true");
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn no_behind_header_normally() {
        let reply = Reply {
            status: StatusCode::OK,
            headers: vec![],
            body: Bytes::new(),
            database_behind: None,
        };
        let r = reply.into_response(&route());
        assert!(r.headers().get("sequin-database-behind").is_none());
    }
}
