//! GitHub REST (API version 2022-11-28): the issues, pull requests, issue
//! comments and labels of one repository per server (`repository
//! 'owner/name'`), listed by `updated_at` with `since`, paged by `Link`,
//! polled with `If-None-Match`; JSON writes one request per row, a second
//! apart (GitHub's secondary limits); DELETE of an issue closes it.
//!
//! Sync cursor (stored as JSON on the collection; times ISO 8601 seconds):
//! * `{}` → the list from the start, oldest change first; its first reply
//!   fixes `started` (the time of that request);
//! * `{"phase":"backfill","started":…,"next":"/repositories/…?page=2"}` →
//!   the next page (`Link: rel="next"`);
//! * the list's last page switches to `{"phase":"incremental","since":started}`
//!   → the list of what changed at or after `since` (which moves to the
//!   newest `updated_at` read), its pages followed the same way;
//! * a first page that leaves `since` where it was stores the reply's
//!   `etag`: the next poll sends `If-None-Match`, and a 304 (nothing
//!   changed, no rate limit spent) leaves the cursor as it is.
//! Labels have no `since` nor change time: each poll lists them all (a 304
//! while nothing changed). Deleted and transferred issues, deleted
//! comments and labels vanish from the lists without a trace: the
//! reconciliation sweep finds them (`default_sweep_interval`).
//!
//! Files: `schema.rs` (the compiled collections), `sync.rs` (lists, Link,
//! ETags, records), `write.rs` (writes; DELETE closes issues), `errors.rs`
//! (refusals, rate limits).

mod errors;
mod schema;
mod sync;
#[cfg(test)]
mod tests;
mod write;

use super::*;
use schema::COLLECTIONS;
use serde_json::json;

pub struct Github;

/// At most this many rows per statement: one request each, a second apart.
const STATEMENT_LIMIT: usize = 100;
/// GitHub asks for a second between writing requests.
const WRITE_SPACING: Duration = Duration::from_secs(1);
/// No tombstones: deletions are found by comparing the whole list.
const SWEEP_INTERVAL: Duration = Duration::from_secs(15 * 60);
const API_VERSION: &str = "2022-11-28";

/// `owner/name`, as GitHub allows them.
fn valid_repository(text: &str) -> bool {
    let valid = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    matches!(text.split_once('/'), Some((owner, name)) if valid(owner) && valid(name) && name != "." && name != "..")
}

impl Provider for Github {
    fn name(&self) -> &'static str {
        "github"
    }

    fn label(&self) -> &'static str {
        "GitHub"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.github.com"
    }

    fn server_options(&self) -> &'static [&'static str] {
        &["repository"]
    }

    fn table_options(&self) -> &'static [&'static str] {
        &["close_reason"]
    }

    /// A server names one repository; a table's `close_reason` says how
    /// its DELETE closes issues.
    fn check_settings(&self, settings: &[(String, String)], server: bool) -> Result<(), SequinError> {
        let invalid = |name: &str, value: &str, hint: &str| {
            SequinError::new(ErrorKind::InvalidOptionValue, format!("invalid value for option \"{name}\": \"{value}\""))
                .with_hint(hint.to_string())
        };
        for (name, value) in settings {
            match name.as_str() {
                "repository" if !valid_repository(value) => {
                    return Err(invalid(name, value, "Name one repository as owner/name, e.g. 'octocat/hello-world'."))
                }
                "close_reason" if !matches!(value.as_str(), "completed" | "not_planned") => {
                    return Err(invalid(name, value, "Use 'completed' or 'not_planned': how a DELETE closes an issue."))
                }
                "repository" | "close_reason" => {}
                other => {
                    return Err(SequinError::new(ErrorKind::InvalidOptionName, format!("invalid option \"{other}\" for a GitHub table")))
                }
            }
        }
        if server && !settings.iter().any(|(name, _)| name == "repository") {
            return Err(SequinError::new(ErrorKind::InvalidOptionValue, "a GitHub server needs the option repository")
                .with_hint("OPTIONS (provider 'github', repository 'owner/name'): one repository per server."));
        }
        Ok(())
    }

    fn fixed_headers(&self) -> Vec<(String, String)> {
        vec![
            ("Accept".into(), "application/vnd.github+json".into()),
            ("X-GitHub-Api-Version".into(), API_VERSION.into()),
            ("User-Agent".into(), concat!("sequin_fdw/", env!("CARGO_PKG_VERSION")).into()),
        ]
    }

    fn needs_synced_record(&self) -> bool {
        true
    }

    fn write_spacing(&self) -> Option<Duration> {
        Some(WRITE_SPACING)
    }

    fn compiled_collections(&self) -> Vec<CollectionSchema> {
        COLLECTIONS.iter().map(|c| c.spec.schema()).collect()
    }

    fn compiled_collection(&self, name: &str) -> Option<CollectionSchema> {
        COLLECTIONS.iter().find(|c| c.spec.name == name).map(|c| c.spec.schema())
    }

    fn auth_headers(&self, token: &str) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Bearer {token}"))]
    }

    fn sync_request(&self, spec: &CollectionSpec, cursor: &Value) -> ApiRequest {
        sync::sync_request(spec, cursor)
    }

    fn sync_response(&self, spec: &CollectionSpec, cursor: &Value, response: &ApiResponse, now_us: i64) -> Result<SyncPage, ApiError> {
        sync::sync_response(spec, cursor, response, now_us)
    }

    fn listing_cursor(&self, _spec: &CollectionSpec) -> Value {
        json!({"phase": "backfill"})
    }

    fn default_sweep_interval(&self, _spec: &CollectionSpec) -> Option<Duration> {
        Some(SWEEP_INTERVAL)
    }

    fn create_request(&self, spec: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError> {
        write::create_request(spec, row)
    }

    fn update_request(&self, spec: &CollectionSpec, id: &str, row: &WriteRow, old_raw: Option<&Value>) -> Result<ApiRequest, SequinError> {
        write::update_request(spec, id, row, old_raw)
    }

    fn delete_request(&self, spec: &CollectionSpec, id: &str, raw: Option<&Value>) -> ApiRequest {
        write::delete_request(spec, id, raw)
    }

    fn write_response(&self, spec: &CollectionSpec, id: Option<&str>, response: &ApiResponse, now_us: i64) -> Result<Record, ApiError> {
        write::write_response(spec, id, response, now_us)
    }

    fn statement_limit(&self, _op: WriteOp) -> usize {
        STATEMENT_LIMIT
    }

    fn fetch_request(&self, spec: &CollectionSpec, id: &str, raw: Option<&Value>) -> ApiRequest {
        sync::fetch_request(spec, id, raw)
    }

    fn fetch_response(&self, spec: &CollectionSpec, id: &str, response: &ApiResponse, now_us: i64) -> Result<Record, ApiError> {
        sync::fetch_response(spec, id, response, now_us)
    }

    fn error(&self, response: &ApiResponse) -> ApiError {
        errors::error(response)
    }

    fn rate_limit_pause(&self, response: &ApiResponse) -> Option<Duration> {
        errors::rate_limit_pause(response)
    }

    /// A record of another repository (a reply of `sequin.request()`) is
    /// not this server's.
    fn whole_record(&self, spec: &CollectionSpec, raw: &Value) -> bool {
        let repo = format!("/repos/{}/", spec.setting("repository").unwrap_or_default());
        ["repository_url", "issue_url", "url"]
            .iter()
            .filter_map(|key| raw.get(*key).and_then(Value::as_str))
            .any(|url| url.contains(&repo) || url.ends_with(repo.trim_end_matches('/')))
    }

    fn columns_from_raw(&self, spec: &CollectionSpec, raw: &Value) -> Map<String, Value> {
        sync::record_from_item(spec, raw, 0).map(|r| r.columns).unwrap_or_default()
    }

    /// A deleted comment answers 204: the path names it
    /// (`/repos/{owner}/{repo}/issues/comments/{id}`). A deleted label is
    /// named by its name, not the id its row has: the sync's next full
    /// listing finds it gone.
    fn records_touched(&self, request: &ApiRequest, _response: &ApiResponse, now_us: i64) -> Vec<Touched> {
        let segments: Vec<&str> = request.route().trim_start_matches('/').split('/').collect();
        match (request.method, segments.as_slice()) {
            (Method::Delete, ["repos", _, _, "issues", "comments", id]) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                vec![Touched::Gone("issue_comments".into(), Record::gone(id, now_us))]
            }
            _ => Vec::new(),
        }
    }

    /// An item of the repository's lists: an issue (or pull request) has
    /// `number` and `repository_url`, a comment `issue_url`, a label
    /// `color` and `name`. Only this server's repository's are records.
    fn reply_object(&self, object: &Value, now_us: i64) -> ReplyObject {
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let collection = if text("repository_url").is_some() && object.get("number").is_some() {
            match object.get("pull_request").is_some_and(|p| !p.is_null()) {
                true => "pull_requests",
                false => "issues",
            }
        } else if text("issue_url").is_some() && object.get("body").is_some() {
            "issue_comments"
        } else if text("color").is_some() && text("name").is_some() {
            "labels"
        } else {
            return ReplyObject::Other;
        };
        let spec = CollectionSpec {
            name: collection.to_string(),
            fields: Vec::new(),
            columns: Vec::new(),
            writes: Vec::new(),
            writes_hint: None,
            settings: Vec::new(),
        };
        match sync::record_from_item(&spec, object, now_us) {
            Some(record) => ReplyObject::Record(collection.to_string(), record),
            None => ReplyObject::Other,
        }
    }
}
