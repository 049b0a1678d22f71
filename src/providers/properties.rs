//! Property tests of every provider's parsers: whatever an API (or a proxy
//! in front of it) answers, a parser returns a value or an error, never a
//! panic (a panic would abort the statement with a Rust backtrace, or kill
//! the sync worker's poll of every collection), and the numbers it hands on
//! stay within their bounds.
//!
//! Replies are random bytes, random JSON, and JSON shaped like each API's
//! replies with random leaves (plain random JSON rarely reaches the deeper
//! paths: an event's object's timestamp, a record's SystemModstamp).

use super::*;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::json;

const CASES: u32 = 256;

/// Keys the parsers look for, so that random objects often have them.
const KEYS: &[&str] = &[
    "id", "Id", "object", "data", "has_more", "type", "created", "updated", "deleted", "error", "message", "code",
    "param", "records", "done", "nextRecordsUrl", "SystemModstamp", "attributes", "errors", "statusCode",
    "errorCode", "fields", "success", "deletedRecords", "deletedDate", "latestDateCovered", "error_description",
    "FirstName", "LastName", "Amount", "CloseDate", "NumberOfEmployees", "metadata", "items", "status",
    "sobjects", "name", "custom", "queryable", "replicateable", "createable", "updateable", "deletable", "nillable",
];

/// Strings the parsers compare against.
const TEXTS: &[&str] = &[
    "cus_1", "evt_1", "003A", "customer.created", "customer.updated", "customer.deleted",
    "customer.subscription.created", "customer.subscription.deleted", "product.deleted", "price.updated",
    "invoice.paid", "invoice.finalized", "idempotency_error", "resource_missing", "REQUEST_LIMIT_EXCEEDED",
    "ALL_OR_NONE_OPERATION_ROLLED_BACK", "DUPLICATES_DETECTED", "ENTITY_IS_DELETED", "INVALID_FIELD",
    "INVALID_REPLICATION_DATE", "2026-01-01T00:00:00.000+0000", "2026-01-01T00:00:00Z", "", " ", "é",
    "Contact", "Invoice__c", "SystemModstamp", "string", "double", "datetime", "multipicklist", "base64", "address",
];

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(TEXTS).prop_map(str::to_string),
        3 => "\\PC{0,20}",
        2 => datetime(),
        1 => ".{300,700}",
    ]
    .boxed()
}

/// Text shaped like a timestamp, with random (also multi-byte) endings.
fn datetime() -> BoxedStrategy<String> {
    "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{1,2}:[0-9é]{2}(\\.[0-9]{0,9})?(Z|[+-][0-9]{2}(:?[0-9]{2})?|[+-]é[0-9]{2}|.{0,3})"
        .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        select(vec![i64::MAX, i64::MIN, -1, 0, 1_700_000_000, 9_223_372_036_855]).prop_map(Value::from),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![3 => select(KEYS).prop_map(str::to_string), 1 => "\\PC{0,8}"].boxed()
}

/// Any JSON value, at most 4 levels deep.
pub(crate) fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String)];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A JSON object with random members, and `fixed` members over them.
fn object_with(fixed: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let (names, values): (Vec<_>, Vec<_>) = fixed.into_iter().unzip();
    (prop::collection::vec((key(), json_value()), 0..5), values)
        .prop_map(move |(random, values)| {
            let mut object: Map<String, Value> = random.into_iter().collect();
            for (name, value) in names.iter().zip(values) {
                object.insert(name.to_string(), value);
            }
            Value::Object(object)
        })
        .boxed()
}

fn text_value() -> BoxedStrategy<Value> {
    prop_oneof![3 => text().prop_map(Value::String), 1 => json_value()].boxed()
}

fn number_value() -> BoxedStrategy<Value> {
    prop_oneof![3 => number(), 1 => json_value()].boxed()
}

fn stripe_event() -> BoxedStrategy<Value> {
    let object = object_with(vec![("id", text_value()), ("created", number_value()), ("deleted", json_value())]);
    object_with(vec![
        ("id", text_value()),
        ("type", text_value()),
        ("created", number_value()),
        ("data", object_with(vec![("object", object)])),
    ])
}

fn salesforce_record() -> BoxedStrategy<Value> {
    object_with(vec![
        ("Id", text_value()),
        ("SystemModstamp", prop_oneof![3 => datetime().prop_map(Value::String), 1 => json_value()].boxed()),
        ("Amount", number_value()),
        ("NumberOfEmployees", number_value()),
        ("CloseDate", text_value()),
    ])
}

fn salesforce_error() -> BoxedStrategy<Value> {
    object_with(vec![
        ("statusCode", text_value()),
        ("errorCode", text_value()),
        ("message", text_value()),
        ("fields", prop::collection::vec(text_value(), 0..3).prop_map(Value::Array).boxed()),
    ])
}

/// A describe's field, or a describeGlobal's sObject: names, types and flags.
fn salesforce_schema_entry() -> BoxedStrategy<Value> {
    let flag = || prop_oneof![3 => any::<bool>().prop_map(Value::Bool), 1 => json_value()].boxed();
    object_with(vec![
        ("name", text_value()),
        ("type", text_value()),
        ("custom", flag()),
        ("queryable", flag()),
        ("replicateable", flag()),
        ("createable", flag()),
        ("updateable", flag()),
        ("nillable", flag()),
    ])
}

/// JSON shaped like the replies the providers parse.
fn shaped_reply() -> BoxedStrategy<Value> {
    let list = |item: BoxedStrategy<Value>| prop::collection::vec(item, 0..4).prop_map(Value::Array).boxed();
    prop_oneof![
        (list(stripe_event()), json_value()).prop_map(|(data, more)| json!({"data": data, "has_more": more})),
        (list(salesforce_record()), json_value(), text_value())
            .prop_map(|(records, done, next)| json!({"records": records, "done": done, "nextRecordsUrl": next})),
        (list(object_with(vec![("id", text_value()), ("deletedDate", text_value())])), text_value())
            .prop_map(|(deleted, covered)| json!({"deletedRecords": deleted, "latestDateCovered": covered})),
        list(object_with(vec![
            ("id", text_value()),
            ("success", json_value()),
            ("errors", list(salesforce_error())),
        ])),
        list(salesforce_error()),
        object_with(vec![(
            "error",
            object_with(vec![("type", text_value()), ("message", text_value()), ("code", text_value()), ("param", text_value())]),
        )]),
        object_with(vec![("id", text_value()), ("created", number_value()), ("deleted", json_value())]),
        salesforce_record(),
        list(salesforce_schema_entry()).prop_map(|sobjects| json!({"sobjects": sobjects})),
        (text_value(), list(salesforce_schema_entry())).prop_map(|(name, fields)| json!({"name": name, "fields": fields})),
    ]
    .boxed()
}

fn body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => shaped_reply().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
    .boxed()
}

fn status() -> BoxedStrategy<u16> {
    prop_oneof![
        3 => select(vec![200u16, 201, 204, 301, 400, 401, 403, 404, 409, 410, 422, 429, 500, 503]),
        1 => any::<u16>(),
    ]
    .boxed()
}

fn header_value() -> BoxedStrategy<String> {
    prop_oneof![
        "\\PC{0,16}",
        number().prop_map(|n| n.to_string()),
        select(vec!["NaN", "-1", "1e19", "inf", "-0", "99999999999999999999999", "3601", "2"]).prop_map(str::to_string),
    ]
    .boxed()
}

fn response() -> BoxedStrategy<ApiResponse> {
    (status(), prop::option::of(header_value()), prop::option::of(text()), body())
        .prop_map(|(status, retry_after, request_id, body)| {
            let mut headers = vec![];
            if let Some(value) = retry_after {
                headers.push(("retry-after".to_string(), value));
            }
            if let Some(value) = request_id {
                headers.push(("request-id".to_string(), value));
            }
            ApiResponse { status, headers, body }
        })
        .boxed()
}

/// Cursors the providers store (the sync's own state, not the API's).
fn cursors() -> Vec<Value> {
    let at = "2026-01-01T00:00:00.000Z";
    vec![
        json!({}),
        json!({"phase": "backfill", "anchor": "evt_1", "since": 1_700_000_000}),
        json!({"phase": "backfill", "anchor": null, "since": 1, "starting_after": "cus_1"}),
        json!({"phase": "incremental", "after": "evt_1", "since": 1}),
        json!({"phase": "incremental", "since": 1}),
        json!({"phase": "incremental", "since": 1, "scan": "evt_2"}),
        json!({"phase": "backfill"}),
        json!({"phase": "backfill", "started": at, "last": at, "next": "/services/data/v60.0/query/01g-2000", "next_at": at}),
        json!({"phase": "incremental", "since": at, "deleted_from": at}),
        json!({"phase": "incremental", "since": at, "deleted_from": at, "deleted_to": at}),
    ]
}

fn providers() -> Vec<&'static dyn Provider> {
    PROVIDER_NAMES.iter().filter_map(|name| by_name(name)).collect()
}

/// Rows for a batch of `op` on `spec`: ids, and a writable column set to
/// `value` where the collection has one.
fn batch_rows(spec: &CollectionSpec, op: WriteOp, count: usize, value: &str, old: &Value) -> Vec<BatchRow> {
    let column = spec.columns.iter().find(|c| c.writable_by(op) && c.sql_type == "text");
    (0..count)
        .map(|i| BatchRow {
            id: (op != WriteOp::Insert).then(|| format!("003A{i}")),
            row: match (op, column) {
                (WriteOp::Delete, _) | (_, None) => vec![],
                (_, Some(column)) => vec![(column.name.to_string(), WriteValue::Text(value.to_string()))],
            },
            old: (op == WriteOp::Update).then(|| (old.clone(), 0)),
        })
        .collect()
}

/// 2027-01-01: the sync's clock, not API input.
const NOW_US: i64 = 1_798_761_600_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn retry_after_never_panics_and_is_bounded(value in header_value()) {
        let response = ApiResponse { status: 429, headers: vec![("retry-after".into(), value)], body: vec![] };
        if let Some(pause) = retry_after(&response) {
            prop_assert!(pause <= MAX_UPSTREAM_PAUSE);
        }
    }

    #[test]
    fn error_replies_never_panic_and_are_quoted_briefly(response in response()) {
        for provider in providers() {
            let refusal = provider.error(&response);
            prop_assert_eq!(refusal.status, response.status);
            if let Some(pause) = refusal.retry_after {
                prop_assert!(pause <= MAX_UPSTREAM_PAUSE);
            }
            if let Some(pause) = provider.rate_limit_pause(&response) {
                prop_assert!(pause <= MAX_UPSTREAM_PAUSE);
            }
            let request = ApiRequest::get("/v1/x");
            let error = refusal.into_error(provider.label(), &request);
            let prefix = format!("[{}]: ", provider.label());
            prop_assert!(error.message.starts_with(&prefix));
            prop_assert!(error.message.chars().count() <= prefix.chars().count() + MAX_API_TEXT_CHARS + 1);
            for spec in &specs(provider) {
                for cursor in cursors() {
                    let _ = provider.cursor_expired(spec, &cursor, &error);
                }
            }
        }
    }

    #[test]
    fn schema_replies_never_panic_and_name_tables_as_identifiers(response in response()) {
        for provider in providers() {
            let listed = provider.list_collections_response(&response).map(|l| l.into_iter().map(|l| l.schema).collect());
            let described = provider.describe_response("Contact", &response).map(|s| vec![s]);
            for schema in listed.into_iter().chain(described).flatten() {
                // What the catalog keeps reads back the same.
                prop_assert_eq!(CollectionSchema::from_json(&schema.to_json()), Some(schema.clone()));
                for (column, _) in crate::schema::import_columns(&schema) {
                    prop_assert!(!column.is_empty() || schema.fields.iter().any(|f| f.name.is_empty()));
                    prop_assert!(column.len() <= 63);
                }
            }
        }
    }

    #[test]
    fn kept_schemas_never_panic(value in json_value()) {
        let _ = CollectionSchema::from_json(&value);
    }

    #[test]
    fn sync_replies_never_panic(response in response(), collection in any::<Index>(), now_offset in 0i64..1_000_000_000_000) {
        for provider in providers() {
            let specs = specs(provider);
            let spec = collection.get(&specs);
            for cursor in cursors() {
                if let Ok(page) = provider.sync_response(spec, &cursor, &response, NOW_US + now_offset) {
                    // The next request is built from the new cursor.
                    let _ = provider.sync_request(spec, &page.cursor);
                }
            }
        }
    }

    #[test]
    fn write_replies_never_panic(
        response in response(),
        collection in any::<Index>(),
        id in prop::option::of(text()),
        count in 0usize..4,
        value in text(),
        old in json_value(),
    ) {
        for provider in providers() {
            let specs = specs(provider);
            let spec = collection.get(&specs);
            let _ = provider.write_response(spec, id.as_deref(), &response, NOW_US);
            let _ = provider.fetch_response(spec, id.as_deref().unwrap_or("003A"), &response, NOW_US);
            let _ = provider.fetch_many_response(spec, &response);
            let _ = provider.parse_account(&response);
            if let Some(reply) = response.json() {
                let _ = provider.account_from_token_reply(&reply);
                let _ = provider.columns_from_raw(spec, &reply);
            }
            for op in WriteOp::ALL {
                let rows = batch_rows(spec, op, count, &value, &old);
                match provider.batch_response(spec, op, &rows, &response, NOW_US) {
                    Ok(records) => prop_assert_eq!(records.len(), rows.len()),
                    Err(refusal) => prop_assert!(refusal.position < rows.len().max(1)),
                }
            }
        }
    }
}

/// The specs of every table IMPORT makes for the provider (a fixture of the
/// standard sObjects for Salesforce, which describes itself).
fn specs(provider: &dyn Provider) -> Vec<CollectionSpec> {
    match provider.compiled_collections() {
        compiled if !compiled.is_empty() => compiled.iter().map(crate::schema::imported_spec).collect(),
        _ => super::salesforce::Salesforce::test_specs(),
    }
}

#[test]
fn stripe_timestamps_beyond_i64_microseconds_do_not_overflow() {
    let stripe = by_name("stripe").unwrap();
    let spec = &specs(stripe)[0];
    let event = json!({"id": "evt_9", "type": "customer.updated", "created": i64::MAX,
                       "data": {"object": {"id": "cus_1", "created": i64::MIN}}});
    let body = serde_json::to_vec(&json!({"data": [event], "has_more": false})).unwrap();
    let response = ApiResponse { status: 200, headers: vec![], body };
    let cursor = json!({"phase": "incremental", "after": "evt_1", "since": 1});
    let page = stripe.sync_response(spec, &cursor, &response, NOW_US).unwrap();
    assert_eq!(page.records[0].version_us, i64::MAX);
}

#[test]
fn salesforce_timestamps_with_multibyte_characters_are_refused() {
    let salesforce = by_name("salesforce").unwrap();
    let spec = &specs(salesforce)[1];
    for stamp in ["2026-01-01T00:00:0é", "2026-01-01T00:00:00+é00", "2026-01-01T00:00:00.5+0é0"] {
        let record = json!({"Id": "003A", "SystemModstamp": stamp});
        let body = serde_json::to_vec(&json!({"records": [record], "done": true})).unwrap();
        let response = ApiResponse { status: 200, headers: vec![], body };
        let result = salesforce.sync_response(spec, &json!({"phase": "backfill"}), &response, NOW_US);
        assert!(result.is_err(), "{stamp}");
    }
}
