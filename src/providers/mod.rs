//! The provider trait: everything the rest of the extension needs from one
//! API, as pure request builders and response parsers. A provider module is
//! the only code that knows its API's URLs and JSON; it never does I/O, so it
//! is unit-tested without a server.

pub mod github;
mod ranges;
pub mod salesforce;
pub mod stripe;
#[cfg(test)]
pub(crate) mod properties;

use crate::error::{ErrorKind, SequinError};
use crate::rate_limit::MAX_UPSTREAM_PAUSE;
use serde_json::{Map, Value};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    /// Only `sequin.request()` sends it: no provider writes with PUT.
    Put,
    Patch,
    Delete,
}

impl Method {
    pub const ALL: [Method; 5] = [Method::Get, Method::Post, Method::Put, Method::Patch, Method::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// The method named `name`, in any case.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Form(Vec<(String, String)>),
    /// For the JSON APIs (HubSpot, Salesforce, Airtable, GitHub).
    Json(Value),
    /// A body its sender encoded (the proxy's clients), sent as it came.
    Raw { content_type: String, bytes: Vec<u8> },
}

/// One HTTP request, relative to the server's `base_url`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    /// Path and query string, already percent-encoded.
    pub path: String,
    pub body: Option<Body>,
    /// Set on writes the API de-duplicates (Stripe's Idempotency-Key).
    pub idempotency_key: Option<String>,
    /// Headers besides authentication, the idempotency key and the body's
    /// content type (`sequin.request()`'s caller names them).
    pub headers: Vec<(String, String)>,
}

impl ApiRequest {
    pub fn get(path: impl Into<String>) -> Self {
        ApiRequest { method: Method::Get, path: path.into(), body: None, idempotency_key: None, headers: Vec::new() }
    }

    /// The path without its query string, for error messages.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ApiResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An API's refusal, as the provider understood it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub status: u16,
    /// The API's own message.
    pub message: String,
    pub code: Option<String>,
    /// The offending field, where the API names one.
    pub field: Option<String>,
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
}

/// The most characters of an API's own text (its error message, code,
/// field, request id) an error quotes: every real message fits, and a
/// provider that passes on a whole HTML page or a megabyte of JSON by
/// mistake still never fills the user's screen or the server log.
pub const MAX_API_TEXT_CHARS: usize = 300;

/// `text` cut to MAX_API_TEXT_CHARS characters, with '…' when cut. The one
/// place API text is shortened for the user.
pub fn cut_api_text(text: &str) -> String {
    match text.char_indices().nth(MAX_API_TEXT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

impl ApiError {
    /// Turns the refusal into the user's error: `[Provider]: message` with a
    /// DETAIL naming status, method, path, field and request id.
    pub fn into_error(self, provider: &str, request: &ApiRequest) -> SequinError {
        let mut detail = format!("HTTP {} on {} {}", self.status, request.method.as_str(), request.route());
        if let Some(code) = &self.code {
            detail.push_str(&format!(", code {}", cut_api_text(code)));
        }
        if let Some(field) = &self.field {
            detail.push_str(&format!(", field \"{}\"", cut_api_text(field)));
        }
        if let Some(request_id) = &self.request_id {
            detail.push_str(&format!(", request id {}", cut_api_text(request_id)));
        }
        let message = format!("[{provider}]: {}", cut_api_text(&self.message));
        let mut error = SequinError::new(self.kind, message).with_detail(detail);
        error.api_code = self.code;
        error.http_status = Some(self.status);
        match self.kind {
            ErrorKind::Unauthorized => error.with_hint(
                "Check the credentials (api_key, or client_id, client_secret and refresh_token) of the user mapping for this server.",
            ),
            _ => error,
        }
    }
}

/// The kind of refusal an HTTP status means when the body says no more.
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        400 | 402 | 422 => ErrorKind::Validation,
        401 | 403 => ErrorKind::Unauthorized,
        404 | 410 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited,
        _ => ErrorKind::Upstream,
    }
}

/// Which statements may set a column: what the API accepts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writable {
    /// The API assigns it (ids, timestamps, computed fields).
    Never,
    /// Only when the record is created (a Stripe price's amount).
    OnInsert,
    /// Only on update (rare: a field a record gets after it exists).
    OnUpdate,
    /// On create and update.
    Always,
}

impl Writable {
    pub fn from_flags(create: bool, update: bool) -> Writable {
        match (create, update) {
            (true, true) => Writable::Always,
            (true, false) => Writable::OnInsert,
            (false, true) => Writable::OnUpdate,
            (false, false) => Writable::Never,
        }
    }

    pub fn allows(self, op: WriteOp) -> bool {
        match self {
            Writable::Never => false,
            Writable::OnInsert => op == WriteOp::Insert,
            Writable::OnUpdate => op == WriteOp::Update,
            Writable::Always => true,
        }
    }

    fn flags(self) -> (bool, bool) {
        (self.allows(WriteOp::Insert), self.allows(WriteOp::Update))
    }
}

/// One field of a collection as the API describes it (DESIGN §4a).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// The API's name for it (`Score__c`, `email`).
    pub name: String,
    /// The API's word for its type (Salesforce `currency`, Stripe
    /// `timestamp`): how its values convert.
    pub api_type: String,
    /// The column type IMPORT gives it; None: never a column (a Salesforce
    /// base64 field, fetched one record at a time).
    pub sql_type: Option<String>,
    pub writable: Writable,
    pub nullable: bool,
}

/// What a provider says one collection is: its name, the name IMPORT gives
/// its table, its fields (the record id not among them: it is the `id`
/// column) and the statements it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSchema {
    /// The API's name, kept in the table's `collection` option.
    pub name: String,
    pub table: String,
    pub fields: Vec<FieldSpec>,
    pub writes: Vec<WriteOp>,
    /// The HINT for a statement not in `writes`: what to do instead.
    pub writes_hint: Option<String>,
    /// The API's records carry fields besides these (Stripe's objects have
    /// more keys than are compiled in): a column may name any of them, and
    /// holds it read-only.
    pub open: bool,
}

impl CollectionSchema {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The form kept in the catalog (`sequin.collections.schema`).
    pub fn to_json(&self) -> Value {
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|f| {
                let (create, update) = f.writable.flags();
                serde_json::json!({
                    "name": f.name, "api_type": f.api_type, "sql_type": f.sql_type,
                    "create": create, "update": update, "nullable": f.nullable,
                })
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "table": self.table,
            "fields": fields,
            "writes": self.writes.iter().map(|w| w.as_sql()).collect::<Vec<_>>(),
            "writes_hint": self.writes_hint,
            "open": self.open,
        })
    }

    /// The schema `to_json` kept; None for anything else.
    pub fn from_json(value: &Value) -> Option<CollectionSchema> {
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let flag = |v: &Value, key: &str| v.get(key).and_then(Value::as_bool);
        let mut fields = Vec::new();
        for f in value.get("fields")?.as_array()? {
            fields.push(FieldSpec {
                name: text(f, "name")?,
                api_type: text(f, "api_type")?,
                sql_type: text(f, "sql_type"),
                writable: Writable::from_flags(flag(f, "create")?, flag(f, "update")?),
                nullable: flag(f, "nullable")?,
            });
        }
        let mut writes = Vec::new();
        for w in value.get("writes")?.as_array()? {
            writes.push(WriteOp::ALL.into_iter().find(|op| Some(op.as_sql()) == w.as_str())?);
        }
        Some(CollectionSchema {
            name: text(value, "name")?,
            table: text(value, "table")?,
            fields,
            writes,
            writes_hint: text(value, "writes_hint"),
            open: flag(value, "open").unwrap_or(false),
        })
    }
}

/// A collection's schema compiled into the provider (Stripe's, GitHub's):
/// the fields its tables get, of objects that have more (`open`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledCollection {
    pub name: &'static str,
    pub fields: &'static [CompiledField],
    pub writes: &'static [WriteOp],
    pub writes_hint: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledField {
    pub name: &'static str,
    pub api_type: &'static str,
    pub sql_type: &'static str,
    pub writable: Writable,
}

impl CompiledCollection {
    /// The schema, the record id left out; the table is named as the
    /// collection.
    pub fn schema(&self) -> CollectionSchema {
        CollectionSchema {
            name: self.name.to_string(),
            table: self.name.to_string(),
            fields: self
                .fields
                .iter()
                .filter(|f| f.name != "id")
                .map(|f| FieldSpec {
                    name: f.name.to_string(),
                    api_type: f.api_type.to_string(),
                    sql_type: Some(f.sql_type.to_string()),
                    writable: f.writable,
                    nullable: true,
                })
                .collect(),
            writes: self.writes.to_vec(),
            writes_hint: self.writes_hint.map(str::to_string),
            open: true,
        }
    }
}

/// One of a table's columns and the API field it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The column's name in SQL.
    pub name: String,
    /// The API's name of the field.
    pub field: String,
    /// The column's type as `format_type` prints it.
    pub sql_type: String,
    pub api_type: String,
    pub writable: Writable,
}

impl ColumnSpec {
    pub fn writable_by(&self, op: WriteOp) -> bool {
        self.writable.allows(op)
    }
}

/// A collection as one foreign table holds it: the API's schema, and the
/// table's columns bound to its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSpec {
    /// The API's name of the collection.
    pub name: String,
    /// Every field the API describes (the sync reads them all into `raw`).
    pub fields: Vec<FieldSpec>,
    /// The table's columns that hold a field, in table order.
    pub columns: Vec<ColumnSpec>,
    /// The statements the API supports on this collection; empty: the
    /// table is read-only. Others fail before any request.
    pub writes: Vec<WriteOp>,
    pub writes_hint: Option<String>,
    /// The provider's own options of the server and the table (GitHub's
    /// `repository`, `close_reason`).
    pub settings: Vec<(String, String)>,
}

impl CollectionSpec {
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

}

/// One record as the API returned it, ready for the shadow table.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// The API's version stamp, microseconds since the Unix epoch: an older
    /// one never overwrites a newer one.
    pub version_us: i64,
    pub deleted: bool,
    /// Column name → value in a form `jsonb_populate_record` accepts
    /// (timestamps as ISO 8601 strings, objects as JSON).
    pub columns: Map<String, Value>,
    /// The whole API object.
    pub raw: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Backfill,
    Incremental,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Backfill => "backfill",
            Phase::Incremental => "incremental",
        }
    }
}

/// What one sync request brought: records to apply, in order, and the cursor
/// to store with them in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPage {
    pub records: Vec<Record>,
    pub cursor: Value,
    pub phase: Phase,
    /// True when the next page can be fetched at once.
    pub more: bool,
}

/// What a statement does to a foreign table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    Insert,
    Update,
    Delete,
}

impl WriteOp {
    pub const ALL: [WriteOp; 3] = [WriteOp::Insert, WriteOp::Update, WriteOp::Delete];

    pub fn as_sql(self) -> &'static str {
        match self {
            WriteOp::Insert => "INSERT",
            WriteOp::Update => "UPDATE",
            WriteOp::Delete => "DELETE",
        }
    }
}

/// A column value read from a row being written.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteValue {
    Null,
    Text(String),
    Json(Value),
}

/// The columns a statement sets, in table order.
pub type WriteRow = Vec<(String, WriteValue)>;

pub trait Provider: Sync {
    /// The `provider` option and IMPORT's schema name, e.g. "stripe".
    fn name(&self) -> &'static str;
    /// The name in error messages, e.g. "Stripe".
    fn label(&self) -> &'static str;
    fn default_base_url(&self) -> &'static str;

    /// Server options of this provider besides the common ones (GitHub's
    /// `repository`).
    fn server_options(&self) -> &'static [&'static str] {
        &[]
    }
    /// Table options of this provider besides the common ones (GitHub's
    /// `close_reason`).
    fn table_options(&self) -> &'static [&'static str] {
        &[]
    }
    /// Checks this provider's options of a server (`server` true: all of
    /// them, required ones included) or of a foreign table.
    fn check_settings(&self, settings: &[(String, String)], _server: bool) -> Result<(), SequinError> {
        match settings.first() {
            Some((name, _)) => Err(SequinError::new(
                ErrorKind::InvalidOptionName,
                format!("invalid option \"{name}\" for a {} table", self.label()),
            )),
            None => Ok(()),
        }
    }
    /// Headers every request carries besides authentication (GitHub's
    /// `User-Agent`, `X-GitHub-Api-Version`, `Accept`).
    fn fixed_headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The least time between two writing requests to one server (GitHub
    /// asks for a second), shared by every session and the sync.
    fn write_spacing(&self) -> Option<Duration> {
        None
    }

    /// The collections compiled into the provider, for an API whose schema
    /// is fixed (Stripe); empty for one that describes itself at run time.
    fn compiled_collections(&self) -> Vec<CollectionSchema> {
        Vec::new()
    }
    /// One compiled collection by name (each statement asks: only it is
    /// built).
    fn compiled_collection(&self, name: &str) -> Option<CollectionSchema> {
        self.compiled_collections().into_iter().find(|c| c.name == name)
    }
    /// The API describes its collections at run time (no compiled ones).
    fn describes_itself(&self) -> bool {
        self.list_collections_request().is_some()
    }
    /// `delete_request` and `fetch_request` need the record as last synced
    /// (GitHub addresses issues by number, labels by name).
    fn needs_synced_record(&self) -> bool {
        false
    }
    /// The request listing the collections (Salesforce's describeGlobal);
    /// None when they are compiled in.
    fn list_collections_request(&self) -> Option<ApiRequest> {
        None
    }
    /// Interprets a successful `list_collections_request`: the collections
    /// (that can be synced), each with its schema where the list carries it
    /// (Airtable's tables, HubSpot's custom objects), else with no fields
    /// and `described` false: `describe_request` then asks for them.
    fn list_collections_response(&self, response: &ApiResponse) -> Result<Vec<Listed>, ApiError> {
        Err(unparseable(response, "no list of collections"))
    }
    /// The request describing one collection's fields (Salesforce's
    /// `sobjects/{X}/describe`), by the API's name.
    fn describe_request(&self, _name: &str) -> Option<ApiRequest> {
        None
    }
    fn describe_response(&self, _name: &str, response: &ApiResponse) -> Result<CollectionSchema, ApiError> {
        Err(unparseable(response, "no describe"))
    }
    /// Headers that authenticate a request with this API key or token.
    fn auth_headers(&self, api_key: &str) -> Vec<(String, String)>;

    /// The next sync request for a collection, given its stored cursor
    /// (`{}` for a collection that has never synced).
    fn sync_request(&self, collection: &CollectionSpec, cursor: &Value) -> ApiRequest;
    /// Interprets a successful sync reply. `now_us` is the time the request
    /// was sent, for APIs whose objects carry no version stamp.
    fn sync_response(
        &self,
        collection: &CollectionSpec,
        cursor: &Value,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<SyncPage, ApiError>;

    fn create_request(&self, collection: &CollectionSpec, row: &WriteRow) -> Result<ApiRequest, SequinError>;
    /// Whether `update_request` needs the record's current API object for
    /// this row (the write path then reads it from the shadow table first).
    fn update_needs_current(&self, _row: &WriteRow) -> bool {
        true
    }
    /// `old_raw` is the record's current API object, for APIs that merge
    /// nested values and need to be told which keys to drop.
    fn update_request(
        &self,
        collection: &CollectionSpec,
        id: &str,
        row: &WriteRow,
        old_raw: Option<&Value>,
    ) -> Result<ApiRequest, SequinError>;
    /// `raw` is the record as last synced, for APIs that address records
    /// by another key than the id (GitHub's issue number).
    fn delete_request(&self, collection: &CollectionSpec, id: &str, raw: Option<&Value>) -> ApiRequest;
    /// Interprets a successful write reply as the record to apply locally.
    fn write_response(
        &self,
        collection: &CollectionSpec,
        id: Option<&str>,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError>;

    /// The most rows one statement may write (DESIGN §5); a table option
    /// may lower it.
    fn statement_limit(&self, op: WriteOp) -> usize;

    /// A request for the current state of one record (`raw`: as last
    /// synced, see `delete_request`).
    fn fetch_request(&self, collection: &CollectionSpec, id: &str, raw: Option<&Value>) -> ApiRequest;
    /// Interprets a successful fetch; a record the API no longer has comes
    /// back as a 404 and is handled by the caller.
    fn fetch_response(
        &self,
        collection: &CollectionSpec,
        id: &str,
        response: &ApiResponse,
        now_us: i64,
    ) -> Result<Record, ApiError>;

    /// Interprets a non-2xx reply.
    fn error(&self, response: &ApiResponse) -> ApiError;

    /// A request whose reply names the account the credentials reach
    /// (Stripe's `GET /v1/account`): every user mapping of a server must
    /// reach the account the sync reads (DESIGN §8). None when the API
    /// names it only in the OAuth token reply (`account_from_token_reply`).
    fn account_request(&self) -> Option<ApiRequest> {
        None
    }

    /// The account id in a successful reply to `account_request`.
    fn parse_account(&self, response: &ApiResponse) -> Result<String, ApiError> {
        Err(unparseable(response, "no account request"))
    }

    /// The account an OAuth token reply says its access token reaches
    /// (Salesforce's org id, in the identity URL `id`), where it says so.
    fn account_from_token_reply(&self, _reply: &Value) -> Option<String> {
        None
    }

    /// A request for the current state of several records at once, where
    /// the API has one: a batch write whose rows are read back (RETURNING)
    /// spends it to show the API's own values (fields it computes, its
    /// timestamps). None when the API has no such request.
    fn fetch_many_request(&self, _collection: &CollectionSpec, _ids: &[&str]) -> Option<ApiRequest> {
        None
    }

    /// Interprets a successful reply to `fetch_many_request`: the records it
    /// holds, in any order.
    fn fetch_many_response(&self, _collection: &CollectionSpec, response: &ApiResponse) -> Result<Vec<Record>, ApiError> {
        Err(unparseable(response, "no request for several records"))
    }

    /// How many rows one request may write for `op`: more than 1 when the
    /// API has an all-or-nothing batch endpoint, which the write path then
    /// uses for every statement (one request per statement).
    fn batch_limit(&self, _op: WriteOp) -> usize {
        1
    }

    /// One all-or-nothing request writing every row of a statement.
    fn batch_request(&self, collection: &CollectionSpec, op: WriteOp, _rows: &[BatchRow]) -> Result<ApiRequest, SequinError> {
        Err(SequinError::internal(format!("{} has no batch endpoint for {} {}", self.label(), op.as_sql(), collection.name)))
    }

    /// Interprets a 2xx batch reply: the record to apply locally for each
    /// row, in order, or the first row the API refused (nothing applied).
    /// An API that answers with ids only gets records built from what was
    /// sent; the sync brings the API's own values later.
    fn batch_response(
        &self,
        _collection: &CollectionSpec,
        _op: WriteOp,
        _rows: &[BatchRow],
        response: &ApiResponse,
        _now_us: i64,
    ) -> Result<Vec<Record>, BatchRefusal> {
        Err(BatchRefusal { position: 0, error: unparseable(response, "no batch endpoint") })
    }

    /// Parallel backfill (the `backfill_ranges` table option): a backfill
    /// cursor that has listed nothing yet, split into at most `ranges`
    /// parts that are listed at once, each with its own place in the
    /// cursor. None: the provider lists a collection one page at a time.
    fn split_backfill(&self, _collection: &CollectionSpec, _cursor: &Value, _ranges: usize) -> Option<Value> {
        None
    }
    /// The ranges of a split backfill cursor (None: it is not split).
    fn backfill_ranges(&self, _cursor: &Value) -> Option<Vec<u64>> {
        None
    }
    /// The next page of one range of a split backfill cursor.
    fn range_request(&self, collection: &CollectionSpec, cursor: &Value, _range: u64) -> ApiRequest {
        self.sync_request(collection, cursor)
    }
    /// A range's page: its records, and the range's progress as
    /// `merge_range` takes it.
    fn range_response(
        &self,
        _collection: &CollectionSpec,
        response: &ApiResponse,
        _now_us: i64,
    ) -> Result<(Vec<Record>, Value), ApiError> {
        Err(unparseable(response, "this provider does not split its backfill"))
    }
    /// The cursor as it is now with a range's progress taken in (other
    /// ranges may have moved since that range's request was sent), its
    /// ranges split again up to `ranges`; the incremental cursor once every
    /// range is done.
    fn merge_range(&self, cursor: &Value, _range: u64, _progress: &Value, _ranges: usize) -> Value {
        cursor.clone()
    }

    /// Why a sync request's failure means the stored cursor can never be
    /// continued (Stripe keeps events 30 days: an older cursor event is
    /// gone). The engine then starts the collection's backfill again and
    /// reports the reason as a WARNING.
    fn cursor_expired(&self, _collection: &CollectionSpec, _cursor: &Value, _error: &SequinError) -> Option<String> {
        None
    }

    /// A cursor whose pages list the whole collection once, as a backfill
    /// lists it but without the change feed: a reconciliation sweep fetches
    /// its pages with `sync_request`/`sync_response` until a page's phase is
    /// `Incremental` (the listing is complete; that page's cursor is not
    /// kept). A provider whose listing is a set of ids and versions rather
    /// than whole records still returns `Record`s: the sweep applies them.
    fn listing_cursor(&self, collection: &CollectionSpec) -> Value;

    /// The change feed itself is refused for good (an API imitation that
    /// does not offer it, a key without its permission), as this failed
    /// request of the collection at `cursor` shows: the cursor to go on
    /// with (a backfill that does not wait for the feed; an incremental
    /// cursor as it is). The collection is then kept current by sweeps.
    fn feed_refused(&self, _collection: &CollectionSpec, _cursor: &Value, _error: &SequinError) -> Option<Value> {
        None
    }

    /// How often a collection is swept when its table does not say: off
    /// (None) where the change feed reports every change and deletion; an
    /// API without tombstones needs sweeps to see deletions at all.
    fn default_sweep_interval(&self, _collection: &CollectionSpec) -> Option<Duration> {
        None
    }

    /// How long every request to this server must wait after this reply,
    /// when the API says its limit is used up. The default reads a 429's
    /// `Retry-After`; providers with other signals (GitHub's
    /// `x-ratelimit-remaining: 0` on any reply, Salesforce's
    /// `REQUEST_LIMIT_EXCEEDED`) override it.
    fn rate_limit_pause(&self, response: &ApiResponse) -> Option<Duration> {
        (response.status == 429).then(|| retry_after(response)).flatten()
    }

    /// Requests that complete a sync page's records with fields its request
    /// could not carry (a Salesforce sObject too wide for one query), sent
    /// before the page is applied; `merge_followup` takes each reply.
    fn page_followups(&self, _collection: &CollectionSpec, _page: &SyncPage) -> Vec<ApiRequest> {
        Vec::new()
    }

    fn merge_followup(&self, _collection: &CollectionSpec, _page: &mut SyncPage, response: &ApiResponse) -> Result<(), ApiError> {
        Err(unparseable(response, "no follow-up requests"))
    }

    /// A record in a `sequin.request()` reply has every field a table of
    /// the collection syncs (a partial one would blank the others).
    fn whole_record(&self, _collection: &CollectionSpec, _raw: &Value) -> bool {
        true
    }

    /// The column values the sync would store for an API object kept in a
    /// shadow row's `raw`: a column added to a table is filled from it.
    fn columns_from_raw(&self, collection: &CollectionSpec, raw: &Value) -> Map<String, Value>;

    /// What one JSON object (`object` is a JSON object) of a 2xx reply to
    /// `sequin.request()` stands for: a record of one of the provider's
    /// collections as the API holds it now, a past state, or neither.
    /// `now_us` is when the request was sent, for APIs whose objects carry
    /// no version stamp. `records_in_reply` walks a whole reply with it.
    fn reply_object(&self, object: &Value, now_us: i64) -> ReplyObject;

    /// The body of a `sequin.request()` as the API takes it, from the
    /// caller's JSON: JSON as it is by default.
    fn request_body(&self, body: &Value) -> Result<Body, SequinError> {
        Ok(Body::Json(body.clone()))
    }

    /// The records a successful request changed without showing them in
    /// its reply (a Salesforce PATCH or DELETE answers 204), as the request
    /// names them. `now_us` is when it was sent.
    fn records_touched(&self, _request: &ApiRequest, _response: &ApiResponse, _now_us: i64) -> Vec<Touched> {
        Vec::new()
    }

    /// A new idempotency key for a request of `method`, where the API
    /// de-duplicates requests that carry one (Stripe's POSTs), so that they
    /// may be retried; None where it does not.
    fn idempotency_key(&self, _method: Method) -> Option<String> {
        None
    }
}

/// A collection as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub schema: CollectionSchema,
    /// The schema has its fields; false: describe it.
    pub described: bool,
}

/// What one JSON object of an API reply is, to `sequin.request()`.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyObject {
    /// A whole record of the collection of this (API) name as the API holds
    /// it now (a deleted one too); the objects nested in it are looked at as
    /// well. Its columns are filled by each table's own spec.
    Record(String, Record),
    /// A past state (a Stripe event and what it carries): nothing in it is
    /// the current state of a record.
    History,
    /// Anything else; the objects nested in it are looked at.
    Other,
}

/// A record a request changed that its reply does not show.
#[derive(Debug, Clone, PartialEq)]
pub enum Touched {
    /// Deleted: applied as such.
    Gone(String, Record),
    /// Created or changed (this id): re-read from the API.
    Changed(String, String),
}

/// Deeper objects of a reply are not looked at (serde_json parses at most
/// 128 levels anyway; no API nests records anywhere near this deep).
const MAX_REPLY_DEPTH: usize = 64;

/// Every record of one of the provider's collections in a reply: the reply
/// itself, the objects nested in it and in its lists, in the order they
/// appear (an object before those nested in it), each record (collection
/// and id) once, as it first appears.
pub fn records_in_reply(provider: &dyn Provider, body: &Value, now_us: i64) -> Vec<(String, Record)> {
    let mut found: Vec<(String, Record)> = Vec::new();
    let mut seen: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    let mut pending: Vec<(&Value, usize)> = vec![(body, 0)];
    while let Some((value, depth)) = pending.pop() {
        let children: Vec<&Value> = match value {
            Value::Object(map) => {
                match provider.reply_object(value, now_us) {
                    ReplyObject::History => continue,
                    ReplyObject::Record(collection, record) => {
                        if seen.insert((collection.clone(), record.id.clone())) {
                            found.push((collection, record));
                        }
                    }
                    ReplyObject::Other => {}
                }
                map.values().collect()
            }
            Value::Array(items) => items.iter().collect(),
            _ => continue,
        };
        if depth < MAX_REPLY_DEPTH {
            // Reversed onto the stack: the first child is looked at next.
            pending.extend(children.into_iter().rev().map(|child| (child, depth + 1)));
        }
    }
    found
}

/// One row of a batch write.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    /// The record's id (UPDATE, DELETE).
    pub id: Option<String>,
    /// The columns the statement sets (INSERT, UPDATE).
    pub row: WriteRow,
    /// The record as last synced (UPDATE): its API object and version.
    pub old: Option<(Value, i64)>,
}

/// A batch the API refused as a whole: the first row at fault (0-based) and
/// why.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRefusal {
    pub position: usize,
    pub error: ApiError,
}

pub const PROVIDER_NAMES: &[&str] = &["stripe", "salesforce", "github"];

pub fn by_name(name: &str) -> Option<&'static dyn Provider> {
    match name {
        "stripe" => Some(&stripe::Stripe),
        "salesforce" => Some(&salesforce::Salesforce),
        "github" => Some(&github::Github),
        _ => None,
    }
}

impl Record {
    /// The record as deleted upstream, seen at `now_us`.
    pub fn gone(id: &str, now_us: i64) -> Record {
        Record { id: id.to_string(), version_us: now_us, deleted: true, columns: Map::new(), raw: Value::Null }
    }
}

/// Characters a path segment keeps as they are (RFC 3986 unreserved).
const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// A query value also keeps commas (lists) and spaces, which become `+`.
const QUERY_VALUE: &percent_encoding::AsciiSet = &PATH_SEGMENT.remove(b',').remove(b' ');

pub fn encode_path_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

pub fn encode_query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string().replace(' ', "+")
}

/// An error for a reply that is 2xx but not what the API documents.
pub fn unparseable(response: &ApiResponse, what: &str) -> ApiError {
    ApiError {
        kind: ErrorKind::Upstream,
        status: response.status,
        message: format!("unparseable reply: {what}"),
        code: None,
        field: None,
        request_id: None,
        retry_after: None,
    }
}

/// Seconds in a `Retry-After` header (the HTTP-date form is not used by
/// these APIs), at most MAX_UPSTREAM_PAUSE. A value that is no number of
/// seconds (garbage, negative, NaN, infinite) is ignored: the usual backoff
/// applies.
pub fn retry_after(response: &ApiResponse) -> Option<Duration> {
    let seconds = response.header("retry-after")?.trim().parse::<f64>().ok()?;
    if !(seconds.is_finite() && seconds >= 0.0) {
        return None;
    }
    // try_from fails only past u64::MAX seconds, far above the cap.
    Some(Duration::try_from_secs_f64(seconds).map_or(MAX_UPSTREAM_PAUSE, |d| d.min(MAX_UPSTREAM_PAUSE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry_after(value: &str) -> ApiResponse {
        ApiResponse { status: 429, headers: vec![("retry-after".into(), value.into())], body: vec![] }
    }

    #[test]
    fn retry_after_is_bounded_and_garbage_is_ignored() {
        let hour = Duration::from_secs(3600);
        assert_eq!(retry_after(&with_retry_after("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&with_retry_after(" 0.5 ")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(&with_retry_after("0")), Some(Duration::ZERO));
        assert_eq!(retry_after(&with_retry_after("3600")), Some(hour));
        assert_eq!(retry_after(&with_retry_after("3601")), Some(hour));
        assert_eq!(retry_after(&with_retry_after("1e19")), Some(hour));
        assert_eq!(retry_after(&with_retry_after("99999999999999999999999999999999")), Some(hour));
        for garbage in ["NaN", "-1", "-0.5", "inf", "-inf", "infinity", "soon", "", "Wed, 21 Oct 2015 07:28:00 GMT", "1s"] {
            assert_eq!(retry_after(&with_retry_after(garbage)), None, "{garbage}");
        }
        assert_eq!(retry_after(&ApiResponse::default()), None);
    }

    #[test]
    fn api_text_is_cut_on_a_char_boundary() {
        assert_eq!(cut_api_text("short"), "short");
        let exact = "é".repeat(MAX_API_TEXT_CHARS);
        assert_eq!(cut_api_text(&exact), exact);
        let long = format!("{exact}ü and more");
        assert_eq!(cut_api_text(&long), format!("{exact}…"));
        assert_eq!(cut_api_text(&long).chars().count(), MAX_API_TEXT_CHARS + 1);
    }

    #[test]
    fn a_refusal_quotes_only_the_start_of_a_long_message() {
        let error = ApiError {
            kind: ErrorKind::Validation,
            status: 400,
            message: "x".repeat(100_000),
            code: Some("c".repeat(10_000)),
            field: Some("f".repeat(10_000)),
            request_id: Some("r".repeat(10_000)),
            retry_after: None,
        };
        let user = error.into_error("Stripe", &ApiRequest::get("/v1/customers"));
        assert_eq!(user.message, format!("[Stripe]: {}…", "x".repeat(MAX_API_TEXT_CHARS)));
        assert!(user.detail.unwrap().len() < 4 * MAX_API_TEXT_CHARS + 100);
        assert_eq!(user.api_code.map(|c| c.len()), Some(10_000));
    }
}
