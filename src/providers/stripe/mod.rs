//! Stripe REST v1: form-encoded writes, newest-first lists paged with
//! `starting_after`, and `/v1/events` as the change feed.
//!
//! Sync cursor (stored as JSON on the collection):
//! * `{}` → first ask for the newest event, the anchor that incremental sync
//!   will continue from, so no change made during the backfill is missed;
//! * `{"phase":"backfill","anchor":…,"since":…,"starting_after":…}` → list pages;
//! * `{"phase":"backfill",…,"ranges":[…]}` → list pages of several `created`
//!   ranges at once (`backfill_ranges`, see `ranges.rs`);
//! * `{"phase":"incremental","after":"evt_…"}` → events newer than `after`,
//!   walked forward in time with `ending_before`;
//! * `{"phase":"incremental","after":null,"since":ts,"scan":…}` → no anchor
//!   event yet: find the oldest event since `since` by paging backwards.
//!
//! Stripe keeps events 30 days: an incremental cursor whose event is gone
//! can never be continued (`cursor_expired`), and the collection is
//! backfilled again.
//!
//! Files: `schema.rs` (the compiled collections and their events),
//! `sync.rs` (lists, events, records), `write.rs` (form-encoded writes),
//! `errors.rs`.

mod errors;
mod ranges;
mod schema;
mod sync;
#[cfg(test)]
mod tests;
mod write;

use super::*;
use schema::COLLECTIONS;
use serde_json::json;
use sync::record_from_object;
use write::idempotency_key;

pub struct Stripe;

/// Stripe has no batch endpoint: a statement's rows go one request each,
/// at most this many (DESIGN §5).
const STATEMENT_LIMIT: usize = 100;

impl Provider for Stripe {
    fn columns_from_raw(&self, collection: &CollectionSpec, raw: &Value) -> Map<String, Value> {
        record_from_object(collection, raw, 0, false).map(|r| r.columns).unwrap_or_default()
    }

    /// Stripe names each object's type in `object`; a deleted one is
    /// `{"id", "object", "deleted": true}`. An event's payload is the state
    /// of its time, not now's.
    fn reply_object(&self, object: &Value, now_us: i64) -> ReplyObject {
        sync::reply_object(object, now_us)
    }

    /// Stripe takes form-encoded parameters, nested in brackets:
    /// `{"metadata": {"k": "v"}, "items": [{"price": "p"}]}` is
    /// `metadata[k]=v&items[0][price]=p`; null is an empty value (which
    /// unsets).
    fn request_body(&self, body: &Value) -> Result<Body, SequinError> {
        write::request_body(body)
    }

    /// Stripe de-duplicates POSTs by their `Idempotency-Key` (GET and DELETE
    /// are idempotent already).
    fn idempotency_key(&self, method: Method) -> Option<String> {
        (method == Method::Post).then(idempotency_key)
    }

    fn name(&self) -> &'static str {
        "stripe"
    }

    fn label(&self) -> &'static str {
        "Stripe"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.stripe.com"
    }

    fn compiled_collections(&self) -> Vec<CollectionSchema> {
        COLLECTIONS.iter().map(|c| c.spec.schema()).collect()
    }

    fn compiled_collection(&self, name: &str) -> Option<CollectionSchema> {
        COLLECTIONS.iter().find(|c| c.spec.name == name).map(|c| c.spec.schema())
    }

    fn auth_headers(&self, api_key: &str) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Bearer {api_key}"))]
    }

    fn sync_request(&self, spec: &CollectionSpec, cursor: &Value) -> ApiRequest {
        sync::sync_request(spec, cursor)
    }

    fn sync_response(
        &self,
        spec: &CollectionSpec,
        cursor: &Value,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<SyncPage, ApiError> {
        sync::sync_response(spec, cursor, response, now_us)
    }

    /// `created` ranges, each listed newest first (`ranges.rs`).
    fn split_backfill(&self, _spec: &CollectionSpec, cursor: &Value, ranges: usize) -> Option<Value> {
        ranges::split_backfill(cursor, ranges)
    }

    fn backfill_ranges(&self, cursor: &Value) -> Option<Vec<u64>> {
        ranges::backfill_ranges(cursor)
    }

    fn range_request(&self, spec: &CollectionSpec, cursor: &Value, range: u64) -> ApiRequest {
        ranges::range_request(spec, cursor, range)
    }

    fn range_response(&self, spec: &CollectionSpec, response: &ApiResponse, now_us: i64) -> Result<(Vec<Record>, Value), ApiError> {
        ranges::range_response(spec, response, now_us)
    }

    fn merge_range(&self, cursor: &Value, range: u64, progress: &Value, ranges: usize) -> Value {
        ranges::merge(cursor, range, progress, ranges)
    }

    fn create_request(&self, spec: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError> {
        write::create_request(spec, row)
    }

    /// Only a hash is merged by Stripe, so only a JSON value needs the
    /// record's current keys (to unset the ones it drops).
    fn update_needs_current(&self, row: &WriteRow) -> bool {
        row.iter().any(|(_, value)| matches!(value, WriteValue::Json(_)))
    }

    fn update_request(
        &self,
        spec: &CollectionSpec,
        id: &str,
        row: &WriteRow,
        old_raw: Option<&Value>,
    ) -> Result<ApiRequest, SequinError> {
        write::update_request(spec, id, row, old_raw)
    }

    fn delete_request(&self, spec: &CollectionSpec, id: &str, _raw: Option<&Value>) -> ApiRequest {
        write::delete_request(spec, id)
    }

    /// A delete's reply is `{"id", "deleted": true}`, except a subscription's:
    /// canceling answers the canceled subscription, which is not deleted.
    fn write_response(
        &self,
        spec: &CollectionSpec,
        id: Option<&str>,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError> {
        write::write_response(spec, id, response, now_us)
    }

    fn statement_limit(&self, _op: WriteOp) -> usize {
        STATEMENT_LIMIT
    }

    fn fetch_request(&self, spec: &CollectionSpec, id: &str, _raw: Option<&Value>) -> ApiRequest {
        sync::fetch_request(spec, id)
    }

    fn fetch_response(
        &self,
        spec: &CollectionSpec,
        id: &str,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError> {
        // A deleted customer is still retrievable, as {"id", "deleted": true}.
        self.write_response(spec, Some(id), response, now_us)
    }

    fn listing_cursor(&self, _spec: &CollectionSpec) -> Value {
        json!({"phase": "backfill"})
    }

    /// `/v1/events` refused: a restricted key without the Events permission
    /// (403), an imitation of Stripe without events (404) or without the
    /// `types[]` filter (400). A cursor event that is gone (`resource_missing`)
    /// is an expired cursor instead. The backfill then lists without an
    /// anchor in the feed.
    fn feed_refused(&self, _spec: &CollectionSpec, cursor: &Value, error: &SequinError) -> Option<Value> {
        sync::feed_refused(cursor, error)
    }

    /// An incremental cursor names an event (`after`, or `scan` while looking
    /// for the oldest one); when Stripe no longer has it, the events request
    /// fails with `resource_missing` (Stripe keeps events 30 days) and the
    /// cursor can never be continued.
    fn cursor_expired(&self, _spec: &CollectionSpec, cursor: &Value, error: &SequinError) -> Option<String> {
        sync::cursor_expired(cursor, error)
    }

    fn error(&self, response: &ApiResponse) -> ApiError {
        errors::error(response)
    }

    /// The account of the key, or of the account an OAuth token stands for.
    fn account_request(&self) -> Option<ApiRequest> {
        Some(ApiRequest::get("/v1/account"))
    }

    /// `{"id":"acct_…","object":"account",…}`.
    fn parse_account(&self, response: &ApiResponse) -> Result<String, ApiError> {
        let body = response.json().ok_or_else(|| unparseable(response, "account reply is not JSON"))?;
        if body.get("object").and_then(Value::as_str) != Some("account") {
            return Err(unparseable(response, "not an account object"));
        }
        body.get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| unparseable(response, "account without id"))
    }
}
