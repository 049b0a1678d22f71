//! Salesforce REST (API v60.0): SOQL queries paged with `nextRecordsUrl`,
//! `SystemModstamp` as the change cursor, the `deleted` endpoint for
//! deletions, and sObject Collections for all-or-nothing batch writes.
//!
//! Collections and fields come from describeGlobal and describe (DESIGN
//! §4a). IMPORT names columns in snake_case with a `field` option (`Score__c`
//! → `score__c`); a column without one holds the field of its name or whose
//! snake_case it is (`first_name` ↔ `FirstName`), as 0.1.0's tables do.
//!
//! Sync cursor (stored as JSON on the collection; times are ISO 8601 UTC
//! strings with milliseconds, `2026-01-01T00:00:00.000Z`):
//! * `{}` (or `{"phase":"backfill"}`) → `SELECT <fields> FROM <Type> ORDER BY
//!   SystemModstamp, Id`; its reply fixes `started` (the time of that
//!   request);
//! * `{"phase":"backfill","started":…,"last":…,"next":"/services/…","next_at":…}`
//!   → the next page (`next` is the reply's `nextRecordsUrl`, `next_at` when
//!   it came, `last` the last page's highest SystemModstamp);
//! * the backfill's last page switches to
//!   `{"phase":"incremental","since":started,"deleted_from":started}` →
//!   `SELECT … WHERE SystemModstamp > <since − LOOKBACK> ORDER BY
//!   SystemModstamp, Id`, pages through `next`/`next_at` the same way, and
//!   moves `since` to the highest SystemModstamp seen;
//! * once that query is done: `"deleted_to"` (the time of its last request)
//!   is added → `GET …/sobjects/<Type>/deleted/?start=<deleted_from>&end=…`;
//!   its reply's `latestDateCovered` becomes `deleted_from`, `deleted_to` is
//!   dropped, and the collection waits a poll interval.
//!
//! A query locator (`next`) older than `LOCATOR_MAX_AGE` is not followed: the
//! query runs again from where the cursor is (the backfill from `last`, with
//! `>=`; the incremental query from `since`). Salesforce drops idle locators
//! after 15 minutes (the mock keeps an account's newest 10); a page whose
//! locator was refused (`INVALID_QUERY_LOCATOR`) fails, and its retry, once
//! the locator is that old, starts the query again instead of a backfill.
//!
//! Salesforce keeps deleted records 15 days: a `deleted_from` older than that
//! is refused with `INVALID_REPLICATION_DATE`, the cursor has expired
//! (`cursor_expired`), and the collection is backfilled again (the rows the
//! backfill does not see are marked deleted).
//!
//! A backfill may be listed in ranges of SystemModstamp queried at once
//! (the `backfill_ranges` table option): `ranges.rs`.
//!
//! Files: `schema.rs` (describeGlobal, describe), `sync.rs` (queries,
//! records, wide objects), `ranges.rs`, `write.rs` (sObject Collections),
//! `errors.rs`.

mod errors;
mod ranges;
mod schema;
mod sync;
#[cfg(test)]
mod tests;
mod write;

use super::*;
use errors::first_refusal;
use serde_json::json;
use sync::{cursor_str, modstamp, record_from_sobject};
use write::{batch_records, row_id, sobject_fields};

pub struct Salesforce;

const API: &str = "/services/data/v60.0";
/// sObject Collections take at most 200 records.
const BATCH_LIMIT: usize = 200;
/// How long every request waits once the org's daily API allowance is used
/// up (`REQUEST_LIMIT_EXCEEDED`).
const REQUEST_LIMIT_PAUSE: Duration = Duration::from_secs(60);

impl Salesforce {
    /// Specs of imported tables of the standard sObjects, for tests of
    /// every provider.
    #[cfg(test)]
    pub(crate) fn test_specs() -> Vec<CollectionSpec> {
        ["Account", "Contact", "Opportunity"].into_iter().map(|s| crate::schema::imported_spec(&tests::described(s))).collect()
    }

    fn one_result(response: &ApiResponse) -> Result<Vec<Value>, ApiError> {
        let results = response.json().and_then(|b| b.as_array().cloned()).ok_or_else(|| unparseable(response, "no result array"))?;
        if results.len() != 1 {
            return Err(unparseable(response, "not one result"));
        }
        Ok(results)
    }
}

impl Provider for Salesforce {
    fn columns_from_raw(&self, collection: &CollectionSpec, raw: &Value) -> Map<String, Value> {
        record_from_sobject(collection, raw, 0).map(|r| r.columns).unwrap_or_default()
    }

    /// A single-record request names its record in the path
    /// (`…/sobjects/Contact/{id}`): a DELETE deleted it, a PATCH changed it
    /// (both answer 204), a POST to `…/sobjects/Contact` created the record
    /// its reply names (`{"id", "success": true}`). Ids are those of 18
    /// characters, as records carry them.
    fn records_touched(&self, request: &ApiRequest, response: &ApiResponse, now_us: i64) -> Vec<Touched> {
        let Some(rest) = request.route().strip_prefix("/services/data/v").and_then(|r| r.split_once("/sobjects/")) else {
            return Vec::new();
        };
        let mut segments = rest.1.split('/');
        let (Some(kind), id, None) = (segments.next(), segments.next(), segments.next()) else {
            return Vec::new();
        };
        let is_id = |id: &str| id.len() == 18 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        let sobject = kind.to_string();
        let touched = match (request.method, id) {
            (Method::Delete, Some(id)) if is_id(id) => Touched::Gone(sobject, Record::gone(id, now_us)),
            (Method::Patch, Some(id)) if is_id(id) => Touched::Changed(sobject, id.to_string()),
            (Method::Post, None | Some("")) => {
                match response.json().and_then(|b| b.get("id").and_then(Value::as_str).map(str::to_string)) {
                    Some(id) if is_id(&id) => Touched::Changed(sobject, id),
                    _ => return Vec::new(),
                }
            }
            _ => return Vec::new(),
        };
        vec![touched]
    }

    /// A record names its sObject type in `attributes.type`, and its
    /// SystemModstamp is its version; `whole_record` tells whether it has
    /// every field a table syncs.
    fn reply_object(&self, object: &Value, _now_us: i64) -> ReplyObject {
        let Some(kind) = object.get("attributes").and_then(|a| a.get("type")).and_then(Value::as_str) else {
            return ReplyObject::Other;
        };
        let no_columns = CollectionSpec { name: kind.to_string(), fields: Vec::new(), columns: Vec::new(), writes: Vec::new(), writes_hint: None, settings: Vec::new() };
        match modstamp(object).and_then(|stamp| record_from_sobject(&no_columns, object, stamp)) {
            Some(record) => ReplyObject::Record(kind.to_string(), record),
            None => ReplyObject::Other,
        }
    }

    /// A record of some fields only (a query of a few, `?fields=`) would
    /// blank the others.
    fn whole_record(&self, spec: &CollectionSpec, raw: &Value) -> bool {
        spec.fields.iter().filter(|f| f.sql_type.is_some()).all(|f| raw.get(&f.name).is_some())
    }

    fn name(&self) -> &'static str {
        "salesforce"
    }

    fn label(&self) -> &'static str {
        "Salesforce"
    }

    /// Every org has its own instance URL (`https://mydomain.my.salesforce.com`),
    /// which the server's `base_url` must name; this is only Salesforce's
    /// login host.
    fn default_base_url(&self) -> &'static str {
        "https://login.salesforce.com"
    }

    fn list_collections_request(&self) -> Option<ApiRequest> {
        Some(schema::list_request())
    }

    fn list_collections_response(&self, response: &ApiResponse) -> Result<Vec<Listed>, ApiError> {
        schema::list_response(response)
    }

    fn describe_request(&self, name: &str) -> Option<ApiRequest> {
        Some(schema::describe_request(name))
    }

    fn describe_response(&self, _name: &str, response: &ApiResponse) -> Result<CollectionSchema, ApiError> {
        schema::describe_response(response)
    }

    fn auth_headers(&self, access_token: &str) -> Vec<(String, String)> {
        vec![("Authorization".into(), format!("Bearer {access_token}"))]
    }

    /// The backfill's SOQL query, from the start.
    fn listing_cursor(&self, _spec: &CollectionSpec) -> Value {
        json!({"phase": "backfill"})
    }

    fn sync_request(&self, spec: &CollectionSpec, cursor: &Value) -> ApiRequest {
        sync::sync_request_at(spec, cursor, crate::time::now_us())
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

    fn split_backfill(&self, _spec: &CollectionSpec, cursor: &Value, ranges: usize) -> Option<Value> {
        ranges::split_backfill(cursor, ranges)
    }

    fn backfill_ranges(&self, cursor: &Value) -> Option<Vec<u64>> {
        ranges::backfill_ranges(cursor)
    }

    fn range_request(&self, spec: &CollectionSpec, cursor: &Value, range: u64) -> ApiRequest {
        ranges::range_request(spec, cursor, range, crate::time::now_us())
    }

    fn range_response(&self, spec: &CollectionSpec, response: &ApiResponse, now_us: i64) -> Result<(Vec<Record>, Value), ApiError> {
        ranges::range_response(spec, response, now_us)
    }

    fn merge_range(&self, cursor: &Value, range: u64, progress: &Value, ranges: usize) -> Value {
        ranges::merge(cursor, range, progress, ranges)
    }

    fn page_followups(&self, spec: &CollectionSpec, page: &SyncPage) -> Vec<ApiRequest> {
        sync::page_followups(spec, page)
    }

    fn merge_followup(&self, spec: &CollectionSpec, page: &mut SyncPage, response: &ApiResponse) -> Result<(), ApiError> {
        sync::merge_followup(spec, page, response)
    }

    /// A one-record batch. The write path sends batches instead (batch_limit
    /// is over 1); the reply can only be read as an id: see `write_response`.
    fn create_request(&self, spec: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError> {
        self.batch_request(spec, WriteOp::Insert, &[BatchRow { id: None, row: row.clone(), old: None }])
    }

    fn update_request(
        &self,
        spec: &CollectionSpec,
        id: &str,
        row: &WriteRow,
        old_raw: Option<&Value>,
    ) -> Result<ApiRequest, SequinError> {
        let old = old_raw.map(|raw| (raw.clone(), 0));
        self.batch_request(spec, WriteOp::Update, &[BatchRow { id: Some(id.to_string()), row: row.clone(), old }])
    }

    /// Salesforce's single-record DELETE (204, no body), which is how
    /// `write_response` tells a deletion from an update.
    fn delete_request(&self, spec: &CollectionSpec, id: &str, _raw: Option<&Value>) -> ApiRequest {
        ApiRequest {
            method: Method::Delete,
            path: format!("{API}/sobjects/{}/{}", encode_path_segment(&spec.name), encode_path_segment(id)),
            body: None,
            idempotency_key: None,
            headers: Vec::new(),
        }
    }

    /// The reply to a one-record request: a delete's is a 204 without a
    /// body; a create's or an update's a one-result batch reply, which names
    /// only the id, so the record comes back with its id alone and version 0:
    /// the apply never lets it overwrite a row, and the sync brings the values.
    fn write_response(
        &self,
        _spec: &CollectionSpec,
        id: Option<&str>,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError> {
        if let (Some(id), true) = (id, response.body.iter().all(u8::is_ascii_whitespace)) {
            return Ok(Record::gone(id, now_us));
        }
        let results = Self::one_result(response)?;
        if let Some(refusal) = first_refusal(response, &results) {
            return Err(refusal.error);
        }
        let result_id = results[0].get("id").and_then(Value::as_str);
        let id = match (id, result_id) {
            (Some(expected), Some(got)) if expected != got => {
                return Err(unparseable(response, "reply is for another record"))
            }
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => return Err(unparseable(response, "a created record without id")),
        };
        let mut columns = Map::new();
        columns.insert("id".into(), Value::String(id.to_string()));
        Ok(Record { id: id.to_string(), version_us: 0, deleted: false, columns, raw: json!({ "Id": id }) })
    }

    fn statement_limit(&self, _op: WriteOp) -> usize {
        BATCH_LIMIT
    }

    fn fetch_request(&self, spec: &CollectionSpec, id: &str, _raw: Option<&Value>) -> ApiRequest {
        sync::fetch_request(spec, id)
    }

    fn fetch_response(
        &self,
        spec: &CollectionSpec,
        id: &str,
        response: &ApiResponse,
        _now_us: i64,
    ) -> Result<Record, ApiError> {
        let records = self.fetch_many_response(spec, response)?;
        match records.into_iter().find(|r| r.id == id) {
            Some(record) => Ok(record),
            None => Err(ApiError { kind: ErrorKind::NotFound, ..unparseable(response, "the record is not in the reply") }),
        }
    }

    /// A query of the records' every field where it fits the URL, else
    /// collections retrieve.
    fn fetch_many_request(&self, spec: &CollectionSpec, ids: &[&str]) -> Option<ApiRequest> {
        Some(sync::fetch_many_request(spec, ids))
    }

    fn fetch_many_response(&self, spec: &CollectionSpec, response: &ApiResponse) -> Result<Vec<Record>, ApiError> {
        let objects = match response.json() {
            Some(Value::Array(_)) => sync::retrieved(response)?.into_iter().filter(Value::is_object).collect(),
            // A query page, or one record (GET …/sobjects/{X}/{id}).
            Some(body) if body.get("records").is_some() => sync::query_page(response)?.0,
            Some(body) => vec![body],
            None => return Err(unparseable(response, "not JSON")),
        };
        let malformed = || unparseable(response, "record without Id or SystemModstamp");
        objects
            .iter()
            .map(|object| {
                let stamp = modstamp(object).ok_or_else(malformed)?;
                record_from_sobject(spec, object, stamp).ok_or_else(malformed)
            })
            .collect()
    }

    fn error(&self, response: &ApiResponse) -> ApiError {
        errors::error(response)
    }

    /// The org of the identity URL `id`
    /// (`https://login.salesforce.com/id/<orgId>/<userId>`): every user of
    /// one org shares it, so grants of two users of the org compare equal.
    fn account_from_token_reply(&self, reply: &Value) -> Option<String> {
        let identity = reply.get("id")?.as_str()?;
        let path = identity.split(['?', '#']).next()?;
        let mut segments = path.trim_end_matches('/').rsplit('/');
        let (_user, org, id) = (segments.next()?, segments.next()?, segments.next()?);
        (id == "id" && org.starts_with("00D") && org.chars().all(|c| c.is_ascii_alphanumeric())).then(|| org.to_string())
    }

    fn batch_limit(&self, _op: WriteOp) -> usize {
        BATCH_LIMIT
    }

    fn batch_request(&self, spec: &CollectionSpec, op: WriteOp, rows: &[BatchRow]) -> Result<ApiRequest, SequinError> {
        let path = format!("{API}/composite/sobjects");
        if op == WriteOp::Delete {
            let ids = rows.iter().map(|r| row_id(r, op).map(encode_query_value)).collect::<Result<Vec<_>, _>>()?;
            return Ok(ApiRequest {
                method: Method::Delete,
                path: format!("{path}?ids={}&allOrNone=true", ids.join(",")),
                body: None,
                idempotency_key: None,
                headers: Vec::new(),
            });
        }
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let mut record = Map::new();
            record.insert("attributes".into(), json!({"type": encode_path_segment(&spec.name)}));
            if op == WriteOp::Update {
                record.insert("id".into(), Value::String(row_id(row, op)?.to_string()));
            }
            record.extend(sobject_fields(spec, op, &row.row)?);
            records.push(Value::Object(record));
        }
        Ok(ApiRequest {
            method: if op == WriteOp::Insert { Method::Post } else { Method::Patch },
            path,
            body: Some(Body::Json(json!({"allOrNone": true, "records": records}))),
            idempotency_key: None,
            headers: Vec::new(),
        })
    }

    fn batch_response(
        &self,
        spec: &CollectionSpec,
        op: WriteOp,
        rows: &[BatchRow],
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Vec<Record>, BatchRefusal> {
        let refusal = |what: &str| BatchRefusal { position: 0, error: unparseable(response, what) };
        let results = response.json().and_then(|b| b.as_array().cloned()).ok_or_else(|| refusal("no result array"))?;
        if results.len() != rows.len() {
            return Err(refusal("not one result per record"));
        }
        if let Some(refused) = first_refusal(response, &results) {
            return Err(refused);
        }
        batch_records(spec, op, rows, &results, now_us).map_err(refusal)
    }

    /// The deleted endpoint refuses a start older than its 15-day window
    /// with `INVALID_REPLICATION_DATE` (the cursor always asks for an end
    /// more than a minute after the start, the refusal's other cause).
    fn cursor_expired(&self, _spec: &CollectionSpec, cursor: &Value, error: &SequinError) -> Option<String> {
        if cursor_str(cursor, "phase") != Some("incremental")
            || cursor.get("deleted_to").is_none()
            || error.api_code.as_deref() != Some("INVALID_REPLICATION_DATE")
        {
            return None;
        }
        let from = cursor_str(cursor, "deleted_from").unwrap_or("unknown");
        Some(format!(
            "Salesforce keeps deleted records for 15 days and the sync's last check ({from}) is older; starting a new backfill"
        ))
    }

    /// A 403 `REQUEST_LIMIT_EXCEEDED` (the org's daily API allowance is used
    /// up) pauses every request to the server for `REQUEST_LIMIT_PAUSE`;
    /// Salesforce sends no 429, but a 429's `Retry-After` is honoured too.
    fn rate_limit_pause(&self, response: &ApiResponse) -> Option<Duration> {
        if response.status == 403 && self.error(response).code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED") {
            return Some(REQUEST_LIMIT_PAUSE);
        }
        (response.status == 429).then(|| retry_after(response)).flatten()
    }
}
