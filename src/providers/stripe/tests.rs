use super::schema::{col, imported, COLLECTIONS};
use super::*;
use crate::providers::Writable::Never;

fn customers() -> &'static CollectionSpec {
    collection("customers")
}

fn reply(status: u16, body: Value) -> ApiResponse {
    ApiResponse {
        status,
        headers: vec![("request-id".into(), "req_123".into())],
        body: serde_json::to_vec(&body).unwrap(),
    }
}

fn customer(id: &str) -> Value {
    json!({"id": id, "object": "customer", "email": "a@b.co", "created": 1_700_000_000, "metadata": {"k": "v"}})
}

#[test]
fn first_request_anchors_on_the_newest_event() {
    let request = Stripe.sync_request(customers(), &json!({}));
    assert_eq!(
        request.path,
        "/v1/events?limit=1&types[]=customer.created&types[]=customer.updated&types[]=customer.deleted"
    );
    let page = Stripe
        .sync_response(customers(), &json!({}), &reply(200, json!({"data": [{"id": "evt_9"}], "has_more": true})), 5_000_000)
        .unwrap();
    assert_eq!(page.cursor, json!({"phase": "backfill", "anchor": "evt_9", "since": 5}));
    assert_eq!(page.phase, Phase::Backfill);
    assert!(page.records.is_empty() && page.more);
}

#[test]
fn backfill_pages_then_switches_to_events_after_the_anchor() {
    let cursor = json!({"phase": "backfill", "anchor": "evt_9", "since": 5});
    assert_eq!(Stripe.sync_request(customers(), &cursor).path, "/v1/customers?limit=100");
    let body = json!({"data": [customer("cus_2"), customer("cus_1")], "has_more": true});
    let page = Stripe.sync_response(customers(), &cursor, &reply(200, body), 7_500_000).unwrap();
    assert_eq!(page.records.len(), 2);
    assert_eq!(page.records[0].version_us, 7_000_000);
    assert_eq!(page.records[0].columns["created"], json!("2023-11-14T22:13:20.000000Z"));
    assert_eq!(page.cursor["starting_after"], json!("cus_1"));
    assert_eq!(Stripe.sync_request(customers(), &page.cursor).path, "/v1/customers?limit=100&starting_after=cus_1");

    let last = json!({"data": [customer("cus_0")], "has_more": false});
    let page = Stripe.sync_response(customers(), &page.cursor, &reply(200, last), 8_000_000).unwrap();
    assert_eq!(page.phase, Phase::Incremental);
    assert_eq!(page.cursor, json!({"phase": "incremental", "after": "evt_9", "since": 5}));
    assert!(Stripe.sync_request(customers(), &page.cursor).path.starts_with("/v1/events?limit=100&ending_before=evt_9&"));
}

#[test]
fn events_apply_oldest_first_and_move_the_cursor_to_the_newest() {
    let cursor = json!({"phase": "incremental", "after": "evt_1"});
    let mut deleted = customer("cus_1");
    deleted["deleted"] = json!(true);
    let body = json!({"has_more": false, "data": [
        {"id": "evt_3", "type": "customer.deleted", "created": 12, "data": {"object": deleted}},
        {"id": "evt_2", "type": "customer.updated", "created": 11, "data": {"object": customer("cus_1")}},
    ]});
    let page = Stripe.sync_response(customers(), &cursor, &reply(200, body), 0).unwrap();
    assert_eq!(page.records.len(), 2);
    assert!(!page.records[0].deleted && page.records[1].deleted);
    assert_eq!(page.records[1].version_us, 12_000_000);
    assert!(!page.records[1].columns.contains_key("deleted"));
    assert_eq!(page.cursor["after"], json!("evt_3"));
    assert!(!page.more);
}

#[test]
fn without_an_anchor_the_oldest_event_is_found_first() {
    let cursor = json!({"phase": "incremental", "after": null, "since": 5});
    assert!(Stripe.sync_request(customers(), &cursor).path.contains("created[gte]=5"));
    let event = |id: &str| json!({"id": id, "type": "customer.created", "created": 6, "data": {"object": customer("cus_1")}});
    let page = Stripe
        .sync_response(customers(), &cursor, &reply(200, json!({"has_more": true, "data": [event("evt_9"), event("evt_8")]})), 0)
        .unwrap();
    assert!(page.records.is_empty());
    assert_eq!(page.cursor["scan"], json!("evt_8"));
    assert!(Stripe.sync_request(customers(), &page.cursor).path.ends_with("&starting_after=evt_8"));
    let page = Stripe
        .sync_response(customers(), &page.cursor, &reply(200, json!({"has_more": false, "data": [event("evt_7")]})), 0)
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.cursor["after"], json!("evt_7"));
    assert!(page.more);
}

#[test]
fn create_is_form_encoded_with_nested_metadata_and_an_idempotency_key() {
    let row = vec![
        ("email".to_string(), WriteValue::Text("ada@example.com".into())),
        ("name".to_string(), WriteValue::Null),
        ("metadata".to_string(), WriteValue::Json(json!({"order": "42", "tier": {"a": 1}}))),
    ];
    let request = Stripe.create_request(customers(), &row).unwrap();
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.path, "/v1/customers");
    assert!(request.idempotency_key.is_some());
    assert_eq!(
        request.body,
        Some(Body::Form(vec![
            ("email".into(), "ada@example.com".into()),
            ("metadata[order]".into(), "42".into()),
            ("metadata[tier][a]".into(), "1".into()),
        ]))
    );
}

#[test]
fn update_unsets_nulls_and_dropped_metadata_keys() {
    let row = vec![
        ("email".to_string(), WriteValue::Null),
        ("metadata".to_string(), WriteValue::Json(json!({"b": "2"}))),
    ];
    let old = json!({"metadata": {"a": "1", "b": "1"}});
    let request = Stripe.update_request(customers(), "cus_1", &row, Some(&old)).unwrap();
    assert_eq!(request.path, "/v1/customers/cus_1");
    assert_eq!(
        request.body,
        Some(Body::Form(vec![
            ("email".into(), "".into()),
            ("metadata[a]".into(), "".into()),
            ("metadata[b]".into(), "2".into()),
        ]))
    );
}

#[test]
fn read_only_columns_are_refused_before_any_request() {
    let row = vec![("created".to_string(), WriteValue::Text("2020-01-01".into()))];
    let error = Stripe.create_request(customers(), &row).unwrap_err();
    assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
    assert!(error.hint.unwrap().contains("email"));
}

#[test]
fn errors_carry_message_field_and_request_id() {
    let body = json!({"error": {"type": "invalid_request_error", "code": "email_invalid", "message": "Invalid email address: x", "param": "email"}});
    let error = Stripe.error(&reply(400, body));
    assert_eq!(error.kind, ErrorKind::Validation);
    assert_eq!(error.message, "Invalid email address: x");
    assert_eq!(error.field.as_deref(), Some("email"));
    assert_eq!(error.request_id.as_deref(), Some("req_123"));
    let request = Stripe.create_request(customers(), &vec![]).unwrap();
    let user_error = error.into_error("Stripe", &request);
    assert_eq!(user_error.message, "[Stripe]: Invalid email address: x");
    assert_eq!(
        user_error.detail.unwrap(),
        "HTTP 400 on POST /v1/customers, code email_invalid, field \"email\", request id req_123"
    );

    let unparseable = Stripe.error(&ApiResponse { status: 502, headers: vec![], body: b"<html>".to_vec() });
    assert_eq!(unparseable.kind, ErrorKind::Upstream);
    let limited = Stripe.error(&ApiResponse {
        status: 429,
        headers: vec![("retry-after".into(), "2".into())],
        body: b"{}".to_vec(),
    });
    assert_eq!(limited.kind, ErrorKind::RateLimited);
    assert_eq!(limited.retry_after, Some(Duration::from_secs(2)));
}

#[test]
fn the_account_comes_from_get_v1_account() {
    let request = Stripe.account_request().unwrap();
    assert_eq!((request.method, request.path.as_str()), (Method::Get, "/v1/account"));
    let account = json!({"id": "acct_1Nv0FGQ9RKHgCVdK", "object": "account", "type": "standard", "charges_enabled": true});
    assert_eq!(Stripe.parse_account(&reply(200, account)).unwrap(), "acct_1Nv0FGQ9RKHgCVdK");
    for wrong in [json!({"id": "cus_1", "object": "customer"}), json!({"object": "account"}), json!({"id": "", "object": "account"})] {
        assert_eq!(Stripe.parse_account(&reply(200, wrong)).unwrap_err().kind, ErrorKind::Upstream);
    }
    let not_json = ApiResponse { status: 200, headers: vec![], body: b"<html>".to_vec() };
    assert!(Stripe.parse_account(&not_json).unwrap_err().message.contains("not JSON"));
    // Stripe's OAuth token reply is not where the account is learned.
    assert_eq!(Stripe.account_from_token_reply(&json!({"access_token": "oat_x", "id": "https://x/id/00D/005"})), None);
}

#[test]
fn delete_reply_marks_the_record_deleted() {
    let body = json!({"id": "cus_1", "object": "customer", "deleted": true});
    let record = Stripe.write_response(customers(), Some("cus_1"), &reply(200, body), 3_200_000).unwrap();
    assert!(record.deleted);
    assert_eq!(record.version_us, 3_000_000);
    assert!(Stripe.write_response(customers(), Some("cus_2"), &reply(200, customer("cus_1")), 0).is_err());
}

/// The spec of the table IMPORT creates.
fn collection(name: &str) -> &'static CollectionSpec {
    imported(COLLECTIONS.iter().find(|c| c.spec.name == name).unwrap())
}

fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({"id": id, "type": kind, "created": created, "data": {"object": object}})
}

/// The records an incremental page of `events` (newest first) applies.
fn apply_events(name: &str, events: Vec<Value>) -> Vec<Record> {
    let cursor = json!({"phase": "incremental", "after": "evt_0"});
    let body = json!({"has_more": false, "data": events});
    Stripe.sync_response(collection(name), &cursor, &reply(200, body), 0).unwrap().records
}

fn subscription(id: &str, status: &str) -> Value {
    json!({"id": id, "object": "subscription", "customer": "cus_1", "status": status,
           "created": 1_700_000_000, "current_period_start": 1_700_000_000,
           "current_period_end": 1_702_592_000, "canceled_at": null, "metadata": {},
           "items": {"object": "list", "data": [{"id": "si_1", "created": 1_700_000_000,
                     "price": {"id": "price_1", "unit_amount": 1500}, "quantity": 2}]}})
}

#[test]
fn every_collection_has_a_text_id_first_and_at_most_20_event_types() {
    let names: Vec<String> = Stripe.compiled_collections().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["customers", "products", "prices", "subscriptions", "invoices"]);
    for c in COLLECTIONS {
        assert_eq!(c.spec.fields[0], col("id", "text", Never), "{}", c.spec.name);
        assert!(c.events.len() <= 20, "{}", c.spec.name);
        let created = collection(c.spec.name).column("created").unwrap();
        assert_eq!((created.sql_type.as_str(), created.api_type.as_str()), ("timestamptz", "timestamp"));
    }
}

#[test]
fn each_collection_follows_its_own_event_types() {
    let first = |name: &str| Stripe.sync_request(collection(name), &json!({})).path;
    assert_eq!(
        first("products"),
        "/v1/events?limit=1&types[]=product.created&types[]=product.updated&types[]=product.deleted"
    );
    assert_eq!(
        first("subscriptions"),
        "/v1/events?limit=1&types[]=customer.subscription.created&types[]=customer.subscription.updated\
         &types[]=customer.subscription.deleted&types[]=customer.subscription.pending_update_applied\
         &types[]=customer.subscription.pending_update_expired&types[]=customer.subscription.trial_will_end"
    );
    assert!(first("invoices").contains("&types[]=invoice.finalized&types[]=invoice.sent&types[]=invoice.paid&"));
    let after = json!({"phase": "incremental", "after": "evt_5"});
    assert!(Stripe
        .sync_request(collection("prices"), &after)
        .path
        .starts_with("/v1/events?limit=100&ending_before=evt_5&types[]=price.created&"));
}

#[test]
fn backfills_list_each_collection_and_every_subscription_status() {
    let cursor = json!({"phase": "backfill", "anchor": "evt_9", "since": 5});
    let path = |name: &str, cursor: &Value| Stripe.sync_request(collection(name), cursor).path;
    assert_eq!(path("products", &cursor), "/v1/products?limit=100");
    assert_eq!(path("prices", &cursor), "/v1/prices?limit=100");
    assert_eq!(path("invoices", &cursor), "/v1/invoices?limit=100");
    // Canceled subscriptions stay rows, so the backfill must see them too.
    assert_eq!(path("subscriptions", &cursor), "/v1/subscriptions?status=all&limit=100");
    let mut next = cursor.clone();
    next["starting_after"] = json!("sub_7");
    assert_eq!(path("subscriptions", &next), "/v1/subscriptions?status=all&limit=100&starting_after=sub_7");
}

#[test]
fn subscription_events_are_never_taken_for_customers() {
    let events = vec![
        event("evt_2", "customer.subscription.updated", 11, subscription("sub_1", "active")),
        event("evt_1", "customer.subscription.created", 10, subscription("sub_1", "active")),
    ];
    assert!(apply_events("customers", events.clone()).is_empty());
    let records = apply_events("subscriptions", events);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].version_us, 11_000_000);
    // Nor a customer's event for a subscription.
    let customer_event = event("evt_3", "customer.updated", 12, customer("cus_1"));
    assert!(apply_events("subscriptions", vec![customer_event]).is_empty());
}

#[test]
fn a_canceled_subscription_is_a_row_with_status_canceled() {
    let mut canceled = subscription("sub_1", "canceled");
    canceled["canceled_at"] = json!(1_700_000_100);
    let records = apply_events(
        "subscriptions",
        vec![event("evt_2", "customer.subscription.deleted", 12, canceled.clone())],
    );
    assert_eq!(records.len(), 1);
    assert!(!records[0].deleted);
    assert_eq!(records[0].columns["status"], json!("canceled"));
    assert_eq!(records[0].columns["canceled_at"], json!("2023-11-14T22:15:00.000000Z"));

    // DELETE answers the same object: the same record.
    let spec = collection("subscriptions");
    let request = Stripe.delete_request(spec, "sub_1", None);
    assert_eq!((request.method, request.path.as_str()), (Method::Delete, "/v1/subscriptions/sub_1"));
    let record = Stripe.write_response(spec, Some("sub_1"), &reply(200, canceled), 12_300_000).unwrap();
    assert!(!record.deleted);
    assert_eq!(record.columns["status"], json!("canceled"));
    // A product's delete reply is a deletion.
    let gone = json!({"id": "prod_1", "object": "product", "deleted": true});
    assert!(Stripe.write_response(collection("products"), Some("prod_1"), &reply(200, gone), 0).unwrap().deleted);
}

#[test]
fn timestamps_become_timestamptz_for_every_declared_column() {
    let records = apply_events(
        "subscriptions",
        vec![event("evt_1", "customer.subscription.created", 10, subscription("sub_1", "active"))],
    );
    let columns = &records[0].columns;
    assert_eq!(columns["created"], json!("2023-11-14T22:13:20.000000Z"));
    assert_eq!(columns["current_period_start"], json!("2023-11-14T22:13:20.000000Z"));
    assert_eq!(columns["current_period_end"], json!("2023-12-14T22:13:20.000000Z"));
    assert_eq!(columns["canceled_at"], Value::Null);
    // Nested times stay as Stripe sent them, in the jsonb column and in raw.
    assert_eq!(columns["items"]["data"][0]["created"], json!(1_700_000_000));
    assert_eq!(records[0].raw["current_period_end"], json!(1_702_592_000));

    let product = json!({"id": "prod_1", "object": "product", "name": "Gold", "created": 1_700_000_000, "updated": 1_700_000_060});
    let records = apply_events("products", vec![event("evt_1", "product.updated", 10, product)]);
    assert_eq!(records[0].columns["updated"], json!("2023-11-14T22:14:20.000000Z"));
}

#[test]
fn invoices_follow_finalized_and_paid_events() {
    let invoice = |status: &str| {
        json!({"id": "in_1", "object": "invoice", "status": status, "amount_due": 3000,
               "created": 1_700_000_000, "period_start": 1_700_000_000, "period_end": 1_700_000_000, "due_date": null})
    };
    let records = apply_events(
        "invoices",
        vec![
            event("evt_5", "invoice.upcoming", 10, invoice("draft")),
            event("evt_4", "invoice.payment_succeeded", 10, invoice("paid")),
            event("evt_3", "invoice.paid", 10, invoice("paid")),
            event("evt_2", "invoice.finalized", 10, invoice("open")),
            event("evt_1", "invoice.created", 10, invoice("draft")),
        ],
    );
    let statuses: Vec<&Value> = records.iter().map(|r| &r.columns["status"]).collect();
    assert_eq!(statuses, [&json!("draft"), &json!("open"), &json!("paid"), &json!("paid")]);
    assert!(records.iter().all(|r| !r.deleted));
    assert_eq!(records[0].columns["period_end"], json!("2023-11-14T22:13:20.000000Z"));
    let deleted = apply_events("invoices", vec![event("evt_6", "invoice.deleted", 11, invoice("draft"))]);
    assert!(deleted[0].deleted);
}

#[test]
fn which_statements_each_collection_accepts() {
    let ops = |name: &str| WriteOp::ALL.iter().filter(|op| collection(name).writes.contains(*op)).count();
    assert_eq!((ops("customers"), ops("products"), ops("subscriptions")), (3, 3, 3));
    assert!(collection("prices").writes.contains(&WriteOp::Update) && !collection("prices").writes.contains(&WriteOp::Delete));
    assert!(collection("prices").writes_hint.as_deref().unwrap().contains("SET active = false"));
    assert_eq!(ops("invoices"), 0);
    assert!(collection("invoices").writes_hint.is_some());
    assert!(collection("invoices").columns.iter().all(|c| c.writable == Never));
}

#[test]
fn a_price_is_created_with_its_amount_which_no_update_may_change() {
    let prices = collection("prices");
    let row = vec![
        ("product".to_string(), WriteValue::Text("prod_1".into())),
        ("currency".to_string(), WriteValue::Text("usd".into())),
        ("unit_amount".to_string(), WriteValue::Json(json!(1500))),
        ("active".to_string(), WriteValue::Json(json!(true))),
        ("nickname".to_string(), WriteValue::Null),
        ("recurring".to_string(), WriteValue::Json(json!({"interval": "month", "aggregate_usage": null}))),
    ];
    let request = Stripe.create_request(prices, &row).unwrap();
    assert_eq!(request.path, "/v1/prices");
    assert_eq!(
        request.body,
        Some(Body::Form(vec![
            ("product".into(), "prod_1".into()),
            ("currency".into(), "usd".into()),
            ("unit_amount".into(), "1500".into()),
            ("active".into(), "true".into()),
            ("recurring[interval]".into(), "month".into()),
        ]))
    );

    let update = vec![("unit_amount".to_string(), WriteValue::Json(json!(2000)))];
    let error = Stripe.update_request(prices, "price_1", &update, None).unwrap_err();
    assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
    assert_eq!(error.message, "column \"unit_amount\" of Stripe prices can only be set by INSERT");
    assert_eq!(error.hint.as_deref(), Some("Columns an UPDATE may set: active, nickname, metadata."));
    let rename = vec![("nickname".to_string(), WriteValue::Text("Monthly".into()))];
    let request = Stripe.update_request(prices, "price_1", &rename, None).unwrap();
    assert_eq!(request.path, "/v1/prices/price_1");
    assert_eq!(request.body, Some(Body::Form(vec![("nickname".into(), "Monthly".into())])));
    let error = Stripe.create_request(prices, &vec![("type".to_string(), WriteValue::Text("x".into()))]).unwrap_err();
    assert_eq!(error.message, "column \"type\" of Stripe prices cannot be written");
}

#[test]
fn a_subscription_is_created_from_its_items() {
    let row = vec![
        ("customer".to_string(), WriteValue::Text("cus_1".into())),
        ("items".to_string(), WriteValue::Json(json!([{"price": "price_1", "quantity": 2}]))),
        ("metadata".to_string(), WriteValue::Json(json!({"plan": "pro"}))),
    ];
    let request = Stripe.create_request(collection("subscriptions"), &row).unwrap();
    assert_eq!((request.method, request.path.as_str()), (Method::Post, "/v1/subscriptions"));
    assert_eq!(
        request.body,
        Some(Body::Form(vec![
            ("customer".into(), "cus_1".into()),
            ("items[0][price]".into(), "price_1".into()),
            ("items[0][quantity]".into(), "2".into()),
            ("metadata[plan]".into(), "pro".into()),
        ]))
    );
    let update = vec![("cancel_at_period_end".to_string(), WriteValue::Json(json!(true)))];
    let request = Stripe.update_request(collection("subscriptions"), "sub_1", &update, None).unwrap();
    assert_eq!(request.body, Some(Body::Form(vec![("cancel_at_period_end".into(), "true".into())])));
    let items = vec![("items".to_string(), WriteValue::Json(json!([])))];
    let error = Stripe.update_request(collection("subscriptions"), "sub_1", &items, None).unwrap_err();
    assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
}

#[test]
fn an_empty_list_unsets_on_update_and_is_left_out_on_create() {
    let row = vec![("images".to_string(), WriteValue::Json(json!([])))];
    let products = collection("products");
    let update = Stripe.update_request(products, "prod_1", &row, Some(&json!({"images": ["a"]}))).unwrap();
    assert_eq!(update.body, Some(Body::Form(vec![("images".into(), "".into())])));
    let mut create_row = row.clone();
    create_row.push(("name".to_string(), WriteValue::Text("Gold".into())));
    let create = Stripe.create_request(products, &create_row).unwrap();
    assert_eq!(create.body, Some(Body::Form(vec![("name".into(), "Gold".into())])));
}

#[test]
fn an_incremental_cursor_whose_event_is_gone_has_expired() {
    let refusal = |code: &str| {
        let error = ApiError {
            kind: ErrorKind::Validation,
            status: 400,
            message: "No such event: 'evt_1'".into(),
            code: Some(code.into()),
            field: Some("ending_before".into()),
            request_id: None,
            retry_after: None,
        };
        error.into_error("Stripe", &ApiRequest::get("/v1/events"))
    };
    let missing = refusal("resource_missing");
    let spec = collection("subscriptions");
    let after = json!({"phase": "incremental", "after": "evt_1", "since": 5});
    assert_eq!(
        Stripe.cursor_expired(spec, &after, &missing).as_deref(),
        Some("Stripe keeps events for 30 days and the sync cursor's event evt_1 is gone; starting a new backfill")
    );
    let scanning = json!({"phase": "incremental", "after": null, "since": 5, "scan": "evt_2"});
    assert!(Stripe.cursor_expired(spec, &scanning, &missing).unwrap().contains("evt_2"));
    // Not an events cursor, no event named, or another refusal: not expired.
    let backfill = json!({"phase": "backfill", "anchor": "evt_1", "starting_after": "sub_1"});
    assert_eq!(Stripe.cursor_expired(spec, &backfill, &missing), None);
    assert_eq!(Stripe.cursor_expired(spec, &json!({"phase": "incremental", "since": 5}), &missing), None);
    assert_eq!(Stripe.cursor_expired(spec, &json!({}), &missing), None);
    assert_eq!(Stripe.cursor_expired(spec, &after, &refusal("parameter_invalid_integer")), None);
}

#[test]
fn a_429_with_retry_after_pauses_the_server() {
    let mut limited = reply(429, json!({"error": {"message": "Too many requests"}}));
    limited.headers.push(("retry-after".into(), "2".into()));
    assert_eq!(Stripe.rate_limit_pause(&limited), Some(Duration::from_secs(2)));
    let mut failed = reply(500, json!({}));
    failed.headers.push(("retry-after".into(), "2".into()));
    assert_eq!(Stripe.rate_limit_pause(&failed), None);
}

#[test]
fn a_request_reply_applies_every_object_of_a_synced_type_nested_or_not() {
    let price = json!({"id": "price_1", "object": "price", "unit_amount": 1500, "created": 1_700_000_000});
    let invoice = json!({"id": "in_1", "object": "invoice", "status": "paid", "created": 1_700_000_000,
                         "subscription": "sub_1",
                         "lines": {"object": "list", "data": [{"id": "il_1", "object": "line_item", "price": price.clone()}]}});
    let mut sub = subscription("sub_1", "active");
    sub["latest_invoice"] = invoice;
    sub["items"]["data"][0]["price"] = price.clone();
    sub["customer"] = customer("cus_1");
    let found = records_in_reply(&Stripe, &sub, 12_345_678);
    let names: Vec<(&str, &str)> = found.iter().map(|(s, r)| (s.as_str(), r.id.as_str())).collect();
    // In order of appearance (serde_json's maps are sorted by key), each once.
    assert_eq!(names, vec![("subscriptions", "sub_1"), ("customers", "cus_1"), ("prices", "price_1"), ("invoices", "in_1")]);
    assert!(found.iter().all(|(_, r)| r.version_us == 12_000_000 && !r.deleted));
    // The subscription keeps ids where the request expanded objects.
    assert_eq!((&found[0].1.columns["customer"], &found[0].1.raw["latest_invoice"]), (&json!("cus_1"), &json!("in_1")));
    assert_eq!(found[0].1.columns["created"], json!("2023-11-14T22:13:20.000000Z"));

    // A list; a deletion.
    let list = json!({"object": "list", "data": [customer("cus_1"), customer("cus_2")], "has_more": false});
    assert_eq!(records_in_reply(&Stripe, &list, 0).len(), 2);
    let gone = records_in_reply(&Stripe, &json!({"id": "cus_1", "object": "customer", "deleted": true}), 0);
    assert!(gone[0].1.deleted);
    // Events are history: what they carry is not the current state.
    let mut past = event("evt_1", "customer.updated", 10, customer("cus_1"));
    past["object"] = json!("event");
    let events = json!({"object": "list", "data": [past]});
    assert!(records_in_reply(&Stripe, &events, 0).is_empty());
    // Types no table syncs, objects without an id, scalars.
    for other in [json!({"id": "re_1", "object": "refund"}), json!({"object": "customer"}), json!("cus_1"), json!(null)] {
        assert!(records_in_reply(&Stripe, &other, 0).is_empty(), "{other}");
    }
}

#[test]
fn a_request_body_is_form_encoded_with_brackets() {
    let body = json!({"email": "a@b.co", "metadata": {"plan": "pro", "old": null}, "items": [{"price": "p", "quantity": 2}],
                      "expand": ["latest_invoice"], "balance": -5, "tax_exempt": false});
    assert_eq!(
        Stripe.request_body(&body).unwrap(),
        Body::Form(vec![
            ("balance".into(), "-5".into()),
            ("email".into(), "a@b.co".into()),
            ("expand[0]".into(), "latest_invoice".into()),
            ("items[0][price]".into(), "p".into()),
            ("items[0][quantity]".into(), "2".into()),
            ("metadata[old]".into(), "".into()),
            ("metadata[plan]".into(), "pro".into()),
            ("tax_exempt".into(), "false".into()),
        ])
    );
    for not_an_object in [json!([1]), json!("email=a"), json!(3)] {
        assert_eq!(Stripe.request_body(&not_an_object).unwrap_err().kind, ErrorKind::InvalidArgument);
    }
    assert!(Stripe.idempotency_key(Method::Post).is_some());
    assert_ne!(Stripe.idempotency_key(Method::Post), Stripe.idempotency_key(Method::Post));
    for method in [Method::Get, Method::Delete, Method::Patch, Method::Put] {
        assert_eq!(Stripe.idempotency_key(method), None);
    }
}
