//! Starts the real `sequin-mock` binary on 127.0.0.1:0 and talks HTTP/1.1 to it
//! over plain TCP, the way the extension does.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{Mock, Resp};

impl Mock {
    /// A Stripe API call with a Bearer key and a form body.
    fn api(&self, key: &str, method: &str, path: &str, form: &str) -> Resp {
        let auth = format!("Bearer {key}");
        self.request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form,
        )
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn exits_cleanly_on_sigterm() {
    let mut mock = Mock::start_with_port_file();
    let status = Command::new("kill")
        .args(["-TERM", &mock.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(exit) = mock.child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn auth_keys_accounts_and_revocation() {
    let mock = Mock::start_with_port_file();
    let r = mock.request("GET", "/v1/customers", &[], "");
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You did not provide an API key"));

    let r = mock.api("pk_test_secretsecret9876", "GET", "/v1/customers", "");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error":{"type":"invalid_request_error","message":"Invalid API Key provided: pk_test_****9876"}})
    );
    assert!(!r.body.contains("secretsecret"));
    assert!(r.header("Request-Id").unwrap().starts_with("req_"));

    // Basic auth with the key as user; data is per key.
    let basic = "Basic c2tfdGVzdF9hYmM6"; // sk_test_abc:
    let r = mock.request(
        "POST",
        "/v1/customers",
        &[("Authorization", basic)],
        "name=A",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        ids(&mock.api("sk_test_abc", "GET", "/v1/customers", "").json()).len(),
        1
    );
    assert_eq!(
        ids(&mock.api("sk_test_other", "GET", "/v1/customers", "").json()).len(),
        0
    );

    let r = mock.admin(
        "POST",
        "/_admin/accounts/revoke?account=sk_test_abc",
        Value::Null,
    );
    assert_eq!(r.status, 200);
    let r = mock.api("sk_test_abc", "GET", "/v1/customers", "");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "Invalid API Key provided: sk_test_****"
    );
    // Resetting the account gives a fresh, usable, empty one.
    mock.admin("POST", "/_admin/reset?account=sk_test_abc", Value::Null);
    let r = mock.api("sk_test_abc", "GET", "/v1/customers", "");
    assert_eq!((r.status, ids(&r.json()).len()), (200, 0));
}

#[test]
fn customer_lifecycle_and_events() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_lifecycle";
    let r = mock.api(
        key,
        "POST",
        "/v1/customers",
        "email=jane%40example.com&name=Jane+Doe&metadata[order_id]=42&metadata[tier]=gold\
         &address[city]=Paris&preferred_locales[0]=fr",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let request_id = r.header("Request-Id").unwrap().to_string();
    assert!(request_id.starts_with("req_") && request_id.len() == 18);
    assert!(r.body.starts_with("{\"id\":\"cus_"), "id first: {}", r.body);
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 18);
    assert_eq!(created["object"], "customer");
    assert_eq!(created["metadata"], json!({"order_id":"42","tier":"gold"}));
    assert_eq!(created["address"]["city"], "Paris");
    assert_eq!(created["preferred_locales"], json!(["fr"]));

    let got = mock
        .api(key, "GET", &format!("/v1/customers/{id}"), "")
        .json();
    assert_eq!(got, created);

    let r = mock.api(
        key,
        "POST",
        &format!("/v1/customers/{id}"),
        "email=&metadata[tier]=&phone=555",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let updated = r.json();
    assert_eq!(updated["email"], Value::Null);
    assert_eq!(updated["metadata"], json!({"order_id":"42"}));
    assert_eq!(updated["phone"], "555");

    // No change, no event.
    mock.api(key, "POST", &format!("/v1/customers/{id}"), "phone=555");

    let r = mock.api(key, "DELETE", &format!("/v1/customers/{id}"), "");
    assert_eq!(
        r.json(),
        json!({"id": id, "object": "customer", "deleted": true})
    );
    let r = mock.api(key, "GET", &format!("/v1/customers/{id}"), "");
    assert_eq!(r.status, 404);
    let error = &r.json()["error"];
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["message"], format!("No such customer: '{id}'"));
    assert_eq!(error["param"], "id");
    assert_eq!(
        ids(&mock.api(key, "GET", "/v1/customers", "").json()).len(),
        0
    );
    assert_eq!(
        mock.api(key, "POST", &format!("/v1/customers/{id}"), "name=x")
            .status,
        404
    );

    let events = mock.api(key, "GET", "/v1/events", "").json();
    let events = events["data"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["customer.deleted", "customer.updated", "customer.created"]
    );
    let (deleted, update, create) = (&events[0], &events[1], &events[2]);
    assert!(create["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(create["object"], "event");
    assert_eq!(create["api_version"], "2020-08-27");
    assert_eq!(create["livemode"], false);
    assert_eq!(create["pending_webhooks"], 0);
    assert_eq!(
        create["request"],
        json!({"id": request_id, "idempotency_key": null})
    );
    assert_eq!(create["data"]["object"], created);
    assert_eq!(update["data"]["object"], updated);
    assert_eq!(
        update["data"]["previous_attributes"],
        json!({"email":"jane@example.com","metadata":{"order_id":"42","tier":"gold"},"phone":null})
    );
    assert_eq!(deleted["data"]["object"]["deleted"], true);
    assert_eq!(deleted["data"]["object"]["phone"], "555");
    let one = mock.api(
        key,
        "GET",
        &format!("/v1/events/{}", create["id"].as_str().unwrap()),
        "",
    );
    assert_eq!(one.json(), *create);
}

#[test]
fn validation_and_unknown_urls() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_validation";
    let cases = [
        (
            "foo=1",
            "parameter_unknown",
            "foo",
            "Received unknown parameter: foo",
        ),
        (
            "email=nope",
            "email_invalid",
            "email",
            "Invalid email address: nope",
        ),
        (
            "balance=1.5",
            "parameter_invalid_integer",
            "balance",
            "Invalid integer: 1.5",
        ),
    ];
    for (form, code, param, message) in cases {
        let r = mock.api(key, "POST", "/v1/customers", form);
        assert_eq!(r.status, 400, "{form}");
        let e = &r.json()["error"];
        assert_eq!(
            (
                e["code"].as_str(),
                e["param"].as_str(),
                e["message"].as_str()
            ),
            (Some(code), Some(param), Some(message))
        );
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(
            e["doc_url"],
            format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            )
        );
    }
    let r = mock.api(key, "GET", "/v1/customers?limit=101", "");
    assert_eq!(
        (r.status, r.json()["error"]["param"].as_str()),
        (400, Some("limit"))
    );
    let r = mock.api(key, "GET", "/v1/customers?starting_after=cus_missing", "");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "resource_missing");
    assert_eq!(r.json()["error"]["param"], "starting_after");
    assert_eq!(
        ids(&mock.api(key, "GET", "/v1/customers", "").json()).len(),
        0
    );
    assert_eq!(
        mock.api(key, "GET", "/v1/events", "").json()["data"],
        json!([])
    );

    for (method, path) in [
        ("GET", "/v1/foo"),
        ("PUT", "/v1/customers"),
        ("GET", "/v2/customers"),
    ] {
        let r = mock.api(key, method, path, "");
        assert_eq!(r.status, 404);
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Unrecognized request URL ({method}: {path}).")));
    }
}

#[test]
fn pagination_walks_both_ways() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_pages";
    // Created through the API: many share one created second, so ties matter.
    for i in 0..23 {
        let r = mock.api(key, "POST", "/v1/customers", &format!("name=c{i}"));
        assert_eq!(r.status, 200);
    }
    let names = |list: &Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut backward = Vec::new();
    let mut url = "/v1/customers?limit=10".to_string();
    loop {
        let page = mock.api(key, "GET", &url, "").json();
        backward.extend(names(&page));
        if page["has_more"] == false {
            break;
        }
        let last = ids(&page).pop().unwrap();
        url = format!("/v1/customers?limit=10&starting_after={last}");
    }
    let newest_first: Vec<String> = (0..23).rev().map(|i| format!("c{i}")).collect();
    assert_eq!(backward, newest_first);

    // And forward in time from the oldest with ending_before.
    let all = mock.api(key, "GET", "/v1/customers?limit=100", "").json();
    let oldest_id = ids(&all).pop().unwrap();
    let mut forward = vec!["c0".to_string()];
    let mut cursor = oldest_id;
    loop {
        let page = mock
            .api(
                key,
                "GET",
                &format!("/v1/customers?limit=7&ending_before={cursor}"),
                "",
            )
            .json();
        let mut page_names = names(&page);
        page_names.reverse();
        forward.extend(page_names);
        if page["has_more"] == false {
            break;
        }
        cursor = ids(&page)[0].clone();
    }
    let oldest_first: Vec<String> = (0..23).map(|i| format!("c{i}")).collect();
    assert_eq!(forward, oldest_first);

    // Events the same way: the extension's incremental sync walks forward.
    let events = mock
        .api(
            key,
            "GET",
            "/v1/events?limit=100&types[]=customer.created",
            "",
        )
        .json();
    let event_ids = ids(&events);
    assert_eq!(event_ids.len(), 23);
    let mut cursor = event_ids.last().unwrap().clone();
    let mut walked = vec![cursor.clone()];
    loop {
        let page = mock
            .api(key, "GET", &format!("/v1/events?limit=5&ending_before={cursor}&types[]=customer.created&types[]=customer.updated"), "")
            .json();
        let mut page_ids = ids(&page);
        page_ids.reverse();
        walked.extend(page_ids);
        if page["has_more"] == false {
            break;
        }
        cursor = ids(&page)[0].clone();
    }
    let mut expected = event_ids.clone();
    expected.reverse();
    assert_eq!(walked, expected);
    let r = mock.api(key, "GET", "/v1/events?ending_before=evt_gone", "");
    assert_eq!(
        (r.status, r.json()["error"]["param"].as_str()),
        (400, Some("ending_before"))
    );
}

#[test]
fn products_prices_subscriptions_and_invoices() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_billing";
    let ok = |r: Resp| -> Value {
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let product = ok(mock.api(key, "POST", "/v1/products", "name=Gold&metadata[tier]=1"));
    let product_id = product["id"].as_str().unwrap().to_string();
    assert!(product_id.starts_with("prod_"));
    assert_eq!(
        (&product["active"], &product["updated"]),
        (&json!(true), &product["created"])
    );
    let r = mock.api(key, "POST", "/v1/products", "description=nameless");
    assert_eq!(
        (r.status, r.json()["error"]["param"].as_str()),
        (400, Some("name"))
    );

    let price = ok(mock.api(
        key,
        "POST",
        "/v1/prices",
        &format!("currency=usd&product={product_id}&unit_amount=1500&recurring[interval]=month"),
    ));
    let price_id = price["id"].as_str().unwrap().to_string();
    assert!(price_id.starts_with("price_"));
    assert_eq!(price["recurring"]["interval"], "month");
    let r = mock.api(
        key,
        "POST",
        "/v1/prices",
        "currency=usd&product=prod_missing&unit_amount=1",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"],
        json!({"type": "invalid_request_error", "code": "resource_missing",
               "message": "No such product: 'prod_missing'", "param": "product",
               "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
               "request_log_url": r.json()["error"]["request_log_url"]})
    );
    let r = mock.api(
        key,
        "POST",
        &format!("/v1/prices/{price_id}"),
        "unit_amount=2000",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "Received unknown parameter: unit_amount"
    );
    let renamed = ok(mock.api(
        key,
        "POST",
        &format!("/v1/prices/{price_id}"),
        "nickname=Monthly",
    ));
    assert_eq!(
        (&renamed["nickname"], &renamed["unit_amount"]),
        (&json!("Monthly"), &json!(1500))
    );
    // Prices have no DELETE; a product with prices cannot be deleted.
    let r = mock.api(key, "DELETE", &format!("/v1/prices/{price_id}"), "");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!(
            "Unrecognized request URL (DELETE: /v1/prices/{price_id})."
        )));
    assert_eq!(
        mock.api(key, "DELETE", &format!("/v1/products/{product_id}"), "")
            .status,
        400
    );

    let customer = ok(mock.api(key, "POST", "/v1/customers", "email=sub%40example.com"));
    let customer_id = customer["id"].as_str().unwrap();
    let sub = ok(mock.api(
        key,
        "POST",
        "/v1/subscriptions",
        &format!("customer={customer_id}&items[0][price]={price_id}&items[0][quantity]=2"),
    ));
    let sub_id = sub["id"].as_str().unwrap().to_string();
    assert!(sub_id.starts_with("sub_"));
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["items"]["data"][0]["price"]["id"], price_id.as_str());
    let invoice_id = sub["latest_invoice"].as_str().unwrap().to_string();
    let invoice = ok(mock.api(key, "GET", &format!("/v1/invoices/{invoice_id}"), ""));
    assert_eq!(
        (
            &invoice["status"],
            &invoice["amount_due"],
            &invoice["subscription"],
            &invoice["customer"]
        ),
        (
            &json!("paid"),
            &json!(3000),
            &json!(sub_id),
            &json!(customer_id)
        )
    );
    let r = mock.api(key, "POST", "/v1/subscriptions", "items[0][price]=price_x");
    assert_eq!(
        (r.status, r.json()["error"]["param"].as_str()),
        (400, Some("customer"))
    );

    // DELETE cancels: the reply is the subscription, which stays retrievable
    // and leaves the default list only.
    let canceled = ok(mock.api(key, "DELETE", &format!("/v1/subscriptions/{sub_id}"), ""));
    assert_eq!(
        (&canceled["id"], &canceled["status"]),
        (&json!(sub_id), &json!("canceled"))
    );
    assert!(canceled.get("deleted").is_none());
    assert_eq!(
        ok(mock.api(key, "GET", &format!("/v1/subscriptions/{sub_id}"), "")),
        canceled
    );
    assert!(ids(&ok(mock.api(key, "GET", "/v1/subscriptions", ""))).is_empty());
    let every_status = ok(mock.api(key, "GET", "/v1/subscriptions?status=all", ""));
    assert_eq!(ids(&every_status), [sub_id.as_str()]);
    let r = mock.api(key, "DELETE", &format!("/v1/subscriptions/{sub_id}"), "");
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );

    let events = ok(mock.api(key, "GET", "/v1/events?limit=100", ""));
    let mut types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    types.reverse();
    assert_eq!(
        types,
        [
            "product.created",
            "price.created",
            "price.updated",
            "customer.created",
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.deleted",
        ]
    );
    let only_subscriptions =
        ok(mock.api(key, "GET", "/v1/events?type=customer.subscription.*", ""));
    assert_eq!(ids(&only_subscriptions).len(), 2);

    let counts = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(counts["by_route"]["DELETE /v1/subscriptions/{id}"], 2);
    assert_eq!(counts["by_route"]["POST /v1/prices/{id}"], 2);
}

#[test]
fn expand_replaces_ids_with_their_objects() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_expand";
    let ok = |r: Resp| -> Value {
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let product = ok(mock.api(key, "POST", "/v1/products", "name=Gold"));
    let product_id = product["id"].as_str().unwrap().to_string();
    let price = ok(mock.api(
        key,
        "POST",
        "/v1/prices",
        &format!("currency=usd&product={product_id}&unit_amount=1500&recurring[interval]=month"),
    ));
    let price_id = price["id"].as_str().unwrap().to_string();
    let customer = ok(mock.api(key, "POST", "/v1/customers", "email=x%40example.com"));
    let customer_id = customer["id"].as_str().unwrap().to_string();

    // A create's reply: the invoice it billed, its customer, and a nested
    // list's prices' products.
    let sub = ok(mock.api(
        key,
        "POST",
        "/v1/subscriptions",
        &format!(
            "customer={customer_id}&items[0][price]={price_id}&expand[0]=latest_invoice\
             &expand[1]=customer&expand[2]=items.data.price.product"
        ),
    ));
    let sub_id = sub["id"].as_str().unwrap().to_string();
    assert_eq!(sub["latest_invoice"]["object"], "invoice");
    assert_eq!(sub["latest_invoice"]["subscription"], sub_id.as_str());
    assert_eq!(sub["customer"]["id"], customer_id.as_str());
    assert_eq!(sub["items"]["data"][0]["price"]["product"]["name"], "Gold");
    // The stored object keeps ids; a retrieve expands on request only.
    let plain = ok(mock.api(key, "GET", &format!("/v1/subscriptions/{sub_id}"), ""));
    assert!(plain["latest_invoice"].is_string());
    let invoice_id = plain["latest_invoice"].as_str().unwrap().to_string();
    let invoice = ok(mock.api(
        key,
        "GET",
        &format!("/v1/invoices/{invoice_id}?expand[]=subscription"),
        "",
    ));
    assert_eq!(invoice["subscription"]["id"], sub_id.as_str());
    let nested = ok(mock.api(
        key,
        "GET",
        &format!("/v1/subscriptions/{sub_id}?expand[]=latest_invoice.customer"),
        "",
    ));
    assert_eq!(nested["latest_invoice"]["customer"]["id"], customer_id.as_str());
    // A list expands each item's field through data.
    let list = ok(mock.api(key, "GET", "/v1/invoices?expand[]=data.customer", ""));
    assert_eq!(list["data"][0]["customer"]["email"], "x@example.com");
    // Fields that are no id of an object, or not there: 400.
    for path in ["status", "nothing", "items.data.nothing", "latest_invoice.amount_due"] {
        let r = mock.api(key, "GET", &format!("/v1/subscriptions/{sub_id}?expand[]={path}"), "");
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(
            r.json()["error"]["message"],
            format!("This property cannot be expanded ({path}).")
        );
    }
    // An update's reply, and a deleted object's id.
    ok(mock.api(key, "DELETE", &format!("/v1/customers/{customer_id}"), ""));
    let updated = ok(mock.api(
        key,
        "POST",
        &format!("/v1/subscriptions/{sub_id}"),
        "metadata[a]=1&expand[]=customer",
    ));
    assert_eq!(
        updated["customer"],
        json!({"id": customer_id, "object": "customer", "deleted": true})
    );
}

#[test]
fn seeding_products_prices_and_subscriptions() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_billing_seed";
    let seed = |plural: &str, count: u32| {
        mock.admin(
            "POST",
            &format!("/_admin/stripe/{plural}/seed?account={key}&count={count}&events=true"),
            Value::Null,
        )
    };
    assert_eq!(seed("products", 3).json(), json!({"created": 3}));
    assert_eq!(seed("prices", 2).json(), json!({"created": 2}));
    assert_eq!(seed("subscriptions", 4).json(), json!({"created": 4}));
    // Invoices come with subscriptions.
    assert_eq!(seed("invoices", 1).status, 404);
    let all = |plural: &str| {
        let v = mock
            .admin(
                "GET",
                &format!("/_admin/stripe/{plural}?account={key}"),
                Value::Null,
            )
            .json();
        v["data"].as_array().unwrap().clone()
    };
    // 3 + 2 for the prices + 1 for the subscriptions' price.
    assert_eq!(all("products").len(), 6);
    assert_eq!(all("prices").len(), 3);
    assert_eq!(all("customers").len(), 4);
    assert_eq!(all("subscriptions").len(), 4);
    assert_eq!(all("invoices").len(), 4);
    let page = mock.api(key, "GET", "/v1/subscriptions?limit=2", "").json();
    assert_eq!((ids(&page).len(), &page["has_more"]), (2, &json!(true)));
    let events = mock
        .api(key, "GET", "/v1/events?type=invoice.paid&limit=100", "")
        .json();
    assert_eq!(ids(&events).len(), 4);
}

#[test]
fn events_expire_after_30_days_and_stale_cursors_fail() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_expiry";
    for i in 0..3 {
        mock.api(key, "POST", "/v1/customers", &format!("name=c{i}"));
    }
    let events = mock.api(key, "GET", "/v1/events", "").json();
    let oldest = ids(&events).pop().unwrap();
    let r = mock.admin(
        "POST",
        &format!("/_admin/stripe/events/expire?account={key}"),
        Value::Null,
    );
    assert_eq!(r.json(), json!({"expired": 3}));
    assert_eq!(
        mock.api(key, "GET", "/v1/events", "").json()["data"],
        json!([])
    );
    for param in ["ending_before", "starting_after"] {
        let r = mock.api(
            key,
            "GET",
            &format!("/v1/events?{param}={oldest}&types[]=customer.created"),
            "",
        );
        assert_eq!(r.status, 400);
        let error = &r.json()["error"];
        assert_eq!(
            (
                error["type"].as_str(),
                error["code"].as_str(),
                error["param"].as_str()
            ),
            (
                Some("invalid_request_error"),
                Some("resource_missing"),
                Some(param)
            )
        );
        assert_eq!(error["message"], format!("No such event: '{oldest}'"));
    }
    assert_eq!(
        mock.api(key, "GET", &format!("/v1/events/{oldest}"), "")
            .status,
        404
    );
    // The objects themselves stay; new changes record new events.
    assert_eq!(
        ids(&mock.api(key, "GET", "/v1/customers", "").json()).len(),
        3
    );
    mock.api(key, "POST", "/v1/customers", "name=c3");
    assert_eq!(ids(&mock.api(key, "GET", "/v1/events", "").json()).len(), 1);
    let r = mock.admin(
        "POST",
        &format!("/_admin/stripe/events/expire?account={key}&before=1"),
        Value::Null,
    );
    assert_eq!(r.json(), json!({"expired": 0}));
}

#[test]
fn idempotent_posts_replay() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_idem";
    let auth = format!("Bearer {key}");
    let post = |ik: &str, form: &str| {
        mock.request(
            "POST",
            "/v1/customers",
            &[("Authorization", &auth), ("Idempotency-Key", ik)],
            form,
        )
    };
    let first = post("k-1", "name=Once");
    let again = post("k-1", "name=Once");
    assert_eq!((first.status, &first.body), (again.status, &again.body));
    assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(first.header("Idempotent-Replayed"), None);
    assert_eq!(
        ids(&mock.api(key, "GET", "/v1/customers", "").json()).len(),
        1
    );
    let events = mock.api(key, "GET", "/v1/events", "").json();
    assert_eq!(ids(&events).len(), 1);
    assert_eq!(events["data"][0]["request"]["idempotency_key"], "k-1");

    let other = post("k-1", "name=Twice");
    assert_eq!(other.status, 400);
    assert_eq!(other.json()["error"]["type"], "idempotency_error");
    assert!(other.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Keys for idempotent requests can only be used with the same parameters they were first used with."));

    // An error response is replayed too.
    let bad = post("k-2", "email=bad");
    assert_eq!(bad.status, 400);
    assert_eq!(post("k-2", "email=bad").body, bad.body);

    // A fault injected before the handler is not remembered.
    mock.admin(
        "POST",
        "/_admin/faults",
        json!({"kind":"status","status":500,"method":"POST"}),
    );
    assert_eq!(post("k-3", "name=Retry").status, 500);
    let retried = post("k-3", "name=Retry");
    assert_eq!(retried.status, 200);
    assert_eq!(retried.header("Idempotent-Replayed"), None);
    assert_eq!(
        ids(&mock.api(key, "GET", "/v1/customers", "").json()).len(),
        2
    );
}

#[test]
fn faults() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_faults";
    let add = |spec: Value| {
        let r = mock.admin("POST", "/_admin/faults", spec);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["id"].as_u64().unwrap()
    };

    // status: the next 2 matching requests, state untouched; admin never faulted.
    add(json!({"kind":"status","status":503,"count":2,"path_prefix":"/v1/customers"}));
    assert_eq!(mock.api(key, "GET", "/v1/events", "").status, 200);
    let r = mock.api(key, "POST", "/v1/customers", "name=x");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert!(r.header("Request-Id").is_some());
    assert_eq!(
        mock.admin(
            "GET",
            &format!("/_admin/stripe/customers?account={key}"),
            Value::Null
        )
        .json()["data"],
        json!([])
    );
    assert_eq!(mock.api(key, "GET", "/v1/customers", "").status, 503);
    assert_eq!(mock.api(key, "GET", "/v1/customers", "").status, 200);

    // 429 with Retry-After and a custom body, only for one account.
    add(
        json!({"kind":"status","status":429,"headers":{"Retry-After":"2"},"account":"sk_test_other"}),
    );
    assert_eq!(mock.api(key, "GET", "/v1/customers", "").status, 200);
    let r = mock.api("sk_test_other", "GET", "/v1/customers", "");
    assert_eq!((r.status, r.header("Retry-After")), (429, Some("2")));
    assert_eq!(r.json()["error"]["code"], "rate_limit");

    // reset: the connection dies without a response.
    add(json!({"kind":"reset"}));
    let auth = format!("Bearer {key}");
    assert!(mock
        .raw(
            "GET",
            "/v1/customers",
            &[("Authorization", &auth)],
            "",
            Duration::from_secs(5)
        )
        .is_err());

    // hang: no answer until the client gives up.
    add(json!({"kind":"hang"}));
    let started = Instant::now();
    let r = mock.raw(
        "GET",
        "/v1/customers",
        &[("Authorization", &auth)],
        "",
        Duration::from_millis(300),
    );
    assert!(r.is_err());
    assert!(started.elapsed() >= Duration::from_millis(300));

    // malformed: a 200 whose body is not JSON.
    add(json!({"kind":"malformed"}));
    let r = mock.api(key, "GET", "/v1/customers", "");
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.body).is_err());

    // latency: slow, then normal.
    add(json!({"kind":"latency","latency_ms":250}));
    let started = Instant::now();
    assert_eq!(mock.api(key, "GET", "/v1/customers", "").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));

    // fraction: stays until cleared.
    add(json!({"kind":"status","status":500,"fraction":1.0}));
    assert_eq!(mock.api(key, "GET", "/v1/customers", "").status, 500);
    assert_eq!(mock.api(key, "GET", "/v1/customers", "").status, 500);
    assert_eq!(
        mock.admin("GET", "/_admin/faults", Value::Null).json()["faults"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    mock.admin("DELETE", "/_admin/faults", Value::Null);
    assert_eq!(mock.api(key, "GET", "/v1/customers", "").status, 200);

    // A global latency for every API request.
    mock.admin("POST", "/_admin/config", json!({"latency_ms": 150}));
    let started = Instant::now();
    mock.api(key, "GET", "/v1/customers", "");
    assert!(started.elapsed() >= Duration::from_millis(150));
    mock.admin("POST", "/_admin/config", json!({"latency_ms": 0}));

    let log = mock
        .admin(
            "GET",
            &format!("/_admin/requests/log?account={key}"),
            Value::Null,
        )
        .json();
    let faults: Vec<Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fault"].clone())
        .collect();
    assert!(faults.contains(&json!("reset")) && faults.contains(&json!("hang")));
    let reset = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["fault"] == "reset")
        .unwrap();
    assert_eq!(reset["status"], Value::Null);

    let r = mock.admin("POST", "/_admin/faults", json!({"kind":"teleport"}));
    assert_eq!(r.status, 400);
}

#[test]
fn applied_faults_change_state_but_lose_the_reply() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_applied";
    let auth = format!("Bearer {key}");
    let add = |spec: Value| {
        let r = mock.admin("POST", "/_admin/faults", spec);
        assert_eq!(r.status, 200, "{}", r.body);
    };
    let customers = || {
        ids(&mock
            .admin(
                "GET",
                &format!("/_admin/stripe/customers?account={key}"),
                Value::Null,
            )
            .json())
    };
    let post = |ik: &str, form: &str, timeout: Duration| {
        mock.raw(
            "POST",
            "/v1/customers",
            &[("Authorization", &auth), ("Idempotency-Key", ik)],
            form,
            timeout,
        )
    };

    // applied + reset: the connection dies, yet the customer exists.
    add(json!({"kind":"reset","method":"POST","applied":true}));
    assert!(post("k-applied", "name=Lost", Duration::from_secs(5)).is_err());
    let created = customers();
    assert_eq!(created.len(), 1);
    // The retry with the same key replays the stored original reply.
    let retried = post("k-applied", "name=Lost", Duration::from_secs(30)).unwrap();
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.json()["id"], json!(created[0]));
    assert_eq!(retried.json()["name"], "Lost");
    assert_eq!(retried.header("Idempotent-Replayed"), Some("true"));
    assert!(retried.header("Original-Request").is_some());
    assert_eq!(customers(), created);
    let events = mock.api(key, "GET", "/v1/events", "").json();
    assert_eq!(ids(&events).len(), 1);
    assert_eq!(events["data"][0]["type"], "customer.created");

    // The log has the faulted attempt without a status, and the replay.
    let log = mock
        .admin(
            "GET",
            &format!("/_admin/requests/log?account={key}"),
            Value::Null,
        )
        .json();
    let posts: Vec<&Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0]["fault"], "reset");
    assert_eq!(posts[0]["status"], Value::Null);
    assert_eq!(posts[1]["fault"], Value::Null);
    assert_eq!(posts[1]["status"], 200);
    assert_eq!(posts[1]["replayed"], true);

    // applied + malformed on DELETE: a truncated body, and the customer is gone.
    let id = &created[0];
    add(json!({"kind":"malformed","method":"DELETE","applied":true}));
    let r = mock.api(key, "DELETE", &format!("/v1/customers/{id}"), "");
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<Value>(&r.body).is_err(),
        "{}",
        r.body
    );
    assert!(customers().is_empty());
    let r = mock.api(key, "GET", &format!("/v1/customers/{id}"), "");
    assert_eq!(r.status, 404);

    // applied + status: the write happens, the client sees the error.
    add(json!({"kind":"status","status":502,"method":"POST","applied":true}));
    let r = mock.api(key, "POST", "/v1/customers", "name=Bad+gateway");
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert_eq!(customers().len(), 1);

    // applied + hang: no answer, but the customer is created.
    add(json!({"kind":"hang","method":"POST","applied":true}));
    let r = mock.raw(
        "POST",
        "/v1/customers",
        &[("Authorization", &auth)],
        "name=Hung",
        Duration::from_millis(300),
    );
    assert!(r.is_err());
    assert_eq!(customers().len(), 2);
}

#[test]
fn faults_without_applied_leave_state_alone() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_not_applied";
    let auth = format!("Bearer {key}");
    let add = |spec: Value| {
        let r = mock.admin("POST", "/_admin/faults", spec);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            mock.admin("GET", "/_admin/faults", Value::Null).json()["faults"][0]["applied"],
            false
        );
    };
    let customers = || {
        ids(&mock
            .admin(
                "GET",
                &format!("/_admin/stripe/customers?account={key}"),
                Value::Null,
            )
            .json())
    };
    let post = |ik: &str, timeout: Duration| {
        mock.raw(
            "POST",
            "/v1/customers",
            &[("Authorization", &auth), ("Idempotency-Key", ik)],
            "name=Once",
            timeout,
        )
    };

    // reset: nothing created, and the retry runs for real (not a replay).
    add(json!({"kind":"reset","method":"POST"}));
    assert!(post("k-1", Duration::from_secs(5)).is_err());
    assert!(customers().is_empty());
    let r = post("k-1", Duration::from_secs(30)).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Idempotent-Replayed"), None);
    let created = customers();
    assert_eq!(created, vec![r.json()["id"].as_str().unwrap().to_string()]);

    // malformed on DELETE: a truncated body, and the customer is still there.
    add(json!({"kind":"malformed","method":"DELETE"}));
    let r = mock.api(key, "DELETE", &format!("/v1/customers/{}", created[0]), "");
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.body).is_err());
    assert_eq!(customers(), created);
    assert_eq!(ids(&mock.api(key, "GET", "/v1/events", "").json()).len(), 1);
}

#[test]
fn admin_interface() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_admin";
    let r = mock.admin(
        "POST",
        &format!("/_admin/stripe/customers?account={key}"),
        json!({"email":"out@side.io","name":"Outside","metadata":{"a":"1"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = mock.admin(
        "POST",
        &format!("/_admin/stripe/customers?account={key}"),
        json!({"email":"bad"}),
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (400, Some("email_invalid"))
    );

    let r = mock.admin(
        "POST",
        &format!("/_admin/stripe/customers/{id}?account={key}"),
        json!({"name":null,"balance":7}),
    );
    assert_eq!(
        (r.json()["name"].clone(), r.json()["balance"].clone()),
        (Value::Null, json!(7))
    );
    let got = mock.admin(
        "GET",
        &format!("/_admin/stripe/customers/{id}?account={key}"),
        Value::Null,
    );
    assert_eq!(got.json()["balance"], 7);
    let api_view = mock
        .api(key, "GET", &format!("/v1/customers/{id}"), "")
        .json();
    assert_eq!(api_view, got.json());

    let r = mock.admin(
        "POST",
        &format!("/_admin/stripe/customers/seed?account={key}&count=5"),
        Value::Null,
    );
    assert_eq!(r.json(), json!({"created": 5}));
    let all = mock
        .admin(
            "GET",
            &format!("/_admin/stripe/customers?account={key}"),
            Value::Null,
        )
        .json();
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 6);
    let mut sorted = all_ids.clone();
    sorted.sort();
    assert_eq!(all_ids, sorted);

    let r = mock.admin(
        "DELETE",
        &format!("/_admin/stripe/customers/{id}?account={key}"),
        Value::Null,
    );
    assert_eq!(r.json()["deleted"], true);
    assert_eq!(
        mock.admin(
            "GET",
            &format!("/_admin/stripe/customers/{id}?account={key}"),
            Value::Null
        )
        .status,
        404
    );

    let events = mock
        .admin(
            "GET",
            &format!("/_admin/stripe/events?account={key}"),
            Value::Null,
        )
        .json();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["customer.created", "customer.updated", "customer.deleted"]
    );
    assert_eq!(
        events["data"][1]["data"]["previous_attributes"],
        json!({"name":"Outside","balance":0})
    );

    // Request counts: admin requests are not counted, ids are normalized.
    mock.api(key, "GET", "/v1/customers", "");
    mock.api(key, "GET", &format!("/v1/customers/{id}"), "");
    mock.api(key, "GET", "/v1/customers/cus_other", "");
    mock.api("sk_test_elsewhere", "GET", "/v1/customers", "");
    let counts = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(
        counts,
        json!({"total": 4, "by_route": {"GET /v1/customers": 1, "GET /v1/customers/{id}": 3}})
    );
    assert_eq!(
        mock.admin("GET", "/_admin/requests", Value::Null).json()["total"],
        5
    );
    let log = mock
        .admin(
            "GET",
            &format!("/_admin/requests/log?account={key}"),
            Value::Null,
        )
        .json();
    let first = &log["requests"][0];
    assert_eq!(
        (
            first["method"].as_str(),
            first["path"].as_str(),
            first["status"].as_u64()
        ),
        (
            Some("GET"),
            Some(format!("/v1/customers/{id}").as_str()),
            Some(200)
        )
    );
    assert!(first["at_ms"].as_f64().unwrap() > 1.6e12);
    assert!(
        !log.to_string().contains("sk_test_admin"),
        "keys are never written out"
    );
    mock.admin(
        "POST",
        &format!("/_admin/requests/reset?account={key}"),
        Value::Null,
    );
    assert_eq!(
        mock.admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null
        )
        .json()["total"],
        0
    );
    assert_eq!(
        mock.admin("GET", "/_admin/requests", Value::Null).json()["total"],
        1
    );

    // Errors of the admin interface itself.
    assert_eq!(
        mock.admin("GET", "/_admin/stripe/customers", Value::Null)
            .status,
        400
    );
    assert_eq!(
        mock.admin("GET", "/_admin/stripe/customers?account=nokey", Value::Null)
            .status,
        400
    );
    assert_eq!(
        mock.admin("GET", "/_admin/nothing", Value::Null).status,
        404
    );

    // A full reset forgets everything.
    mock.admin("POST", "/_admin/reset", Value::Null);
    assert_eq!(
        mock.admin("GET", "/_admin/requests", Value::Null).json()["total"],
        0
    );
    assert_eq!(
        ids(&mock.api(key, "GET", "/v1/customers", "").json()).len(),
        0
    );
}

#[test]
fn ids_are_deterministic_per_account() {
    let (a, b) = (Mock::start_with_port_file(), Mock::start_with_port_file());
    let create =
        |m: &Mock, key: &str| m.api(key, "POST", "/v1/customers", "name=x").json()["id"].clone();
    assert_eq!(create(&a, "sk_test_same"), create(&b, "sk_test_same"));
    assert_ne!(create(&a, "sk_test_same"), create(&a, "sk_test_different"));
}

#[test]
fn large_seed_pages_fast() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_large";
    let started = Instant::now();
    let r = mock.admin(
        "POST",
        &format!("/_admin/stripe/customers/seed?account={key}&count=200000"),
        Value::Null,
    );
    assert_eq!(r.json()["created"], 200000);
    let seeded_in = started.elapsed();
    assert!(
        seeded_in < Duration::from_secs(30),
        "seeding took {seeded_in:?}"
    );

    let first = mock.api(key, "GET", "/v1/customers?limit=100", "").json();
    assert_eq!(first["data"][0]["name"], "Customer 200000");
    let mut cursor = ids(&first).pop().unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let page = mock
            .api(
                key,
                "GET",
                &format!("/v1/customers?limit=100&starting_after={cursor}"),
                "",
            )
            .json();
        assert_eq!(ids(&page).len(), 100);
        cursor = ids(&page).pop().unwrap();
    }
    let per_page = started.elapsed() / 20;
    assert!(
        per_page < Duration::from_millis(250),
        "a page took {per_page:?}"
    );
    let r = mock
        .api(key, "GET", "/v1/customers?email=customer17@example.com", "")
        .json();
    assert_eq!(r["data"][0]["name"], "Customer 17");
    assert_eq!(
        mock.api(key, "GET", "/v1/events", "").json()["data"],
        json!([])
    );
}

/// `POST /oauth/v1/token` with a form body built from `params`.
fn token_request(mock: &Mock, params: &[(&str, &str)]) -> Resp {
    let body: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    mock.request(
        "POST",
        "/oauth/v1/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body.join("&"),
    )
}

fn refresh(mock: &Mock, client_id: &str, secret: &str, refresh_token: &str) -> Resp {
    token_request(
        mock,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("refresh_token", refresh_token),
        ],
    )
}

fn grant(mock: &Mock, key: &str, spec: Value) -> String {
    let r = mock.admin("POST", &format!("/_admin/oauth/grants?account={key}"), spec);
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ort_"), "{token}");
    token
}

fn oauth_stats(mock: &Mock, key: &str) -> Value {
    let r = mock.admin(
        "GET",
        &format!("/_admin/oauth/stats?account={key}"),
        Value::Null,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn expired_message(token: &str) -> Value {
    json!({"error":{"type":"invalid_request_error",
        "message": format!("Expired API Key provided: oat_****{}", &token[token.len() - 4..])}})
}

#[test]
fn oauth_access_tokens_act_as_the_account_key() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_oauth";
    assert_eq!(
        mock.api(key, "POST", "/v1/customers", "name=Ann").status,
        200
    );
    let rt = grant(
        &mock,
        key,
        json!({"client_id":"cid","client_secret":"shh","expires_in":1800}),
    );
    assert_eq!(
        oauth_stats(&mock, key),
        json!({"refreshes":0,"refresh_failures":0,"current_refresh_token":rt})
    );

    let r = refresh(&mock, "cid", "shh", &rt);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.header("Request-Id").unwrap().starts_with("req_"));
    let tokens = r.json();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert!(access.starts_with("oat_") && access.len() > 20, "{access}");
    assert_eq!(
        tokens,
        json!({"access_token": access, "refresh_token": rt, "expires_in": 1800, "token_type": "bearer"})
    );

    // The token reads and writes the account's data, exactly as the key does.
    let with_key = mock.api(key, "GET", "/v1/customers", "");
    let with_token = mock.api(&access, "GET", "/v1/customers", "");
    assert_eq!(with_token.status, 200, "{}", with_token.body);
    assert_eq!(with_token.json(), with_key.json());
    assert_eq!(ids(&with_token.json()).len(), 1);
    assert_eq!(
        mock.api(&access, "POST", "/v1/customers", "name=Bob")
            .status,
        200
    );
    assert_eq!(
        ids(&mock.api(key, "GET", "/v1/customers", "").json()).len(),
        2
    );
    // Another account's key sees none of it.
    assert_eq!(
        ids(&mock
            .api("sk_test_oauth_other", "GET", "/v1/customers", "")
            .json())
        .len(),
        0
    );

    // Expired by the admin: Stripe's 401, the token masked.
    let r = mock.admin(
        "POST",
        &format!("/_admin/oauth/expire?account={key}"),
        Value::Null,
    );
    assert_eq!(r.json(), json!({"expired": 1}));
    let r = mock.api(&access, "GET", "/v1/customers", "");
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), expired_message(&access));
    assert!(!r.body.contains(&access[4..]));
    // Unknown tokens get the same answer.
    let r = mock.api("oat_neverissued1234", "GET", "/v1/customers", "");
    assert_eq!(
        (r.status, r.json()),
        (401, expired_message("oat_neverissued1234"))
    );

    // Refreshing again gives a working token.
    let r = refresh(&mock, "cid", "shh", &rt);
    assert_eq!(r.status, 200, "{}", r.body);
    let access2 = r.json()["access_token"].as_str().unwrap().to_string();
    assert_ne!(access2, access);
    assert_eq!(mock.api(&access2, "GET", "/v1/customers", "").status, 200);

    // Tokens also expire by themselves.
    let short = grant(
        &mock,
        key,
        json!({"client_id":"cid2","client_secret":"s2","expires_in":1}),
    );
    let r = refresh(&mock, "cid2", "s2", &short);
    assert_eq!(r.json()["expires_in"], 1);
    let quick = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(mock.api(&quick, "GET", "/v1/customers", "").status, 200);
    std::thread::sleep(Duration::from_millis(1200));
    let r = mock.api(&quick, "GET", "/v1/customers", "");
    assert_eq!((r.status, r.json()), (401, expired_message(&quick)));
    // The newest grant's token is the current one.
    assert_eq!(
        oauth_stats(&mock, key),
        json!({"refreshes":3,"refresh_failures":0,"current_refresh_token":short})
    );

    // Token requests and token-authenticated requests count for the account.
    let counts = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(
        counts["by_route"],
        json!({"GET /v1/customers": 7, "POST /v1/customers": 2, "POST /oauth/v1/token": 3})
    );
    let log = mock
        .admin(
            "GET",
            &format!("/_admin/requests/log?account={key}"),
            Value::Null,
        )
        .json();
    let statuses: Vec<(String, u64)> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["route"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(statuses.contains(&("POST /oauth/v1/token".into(), 200)));
    assert!(statuses.contains(&("GET /v1/customers".into(), 401)));
    let text = log.to_string();
    assert!(!text.contains(&access) && !text.contains(&rt) && !text.contains(key));

    // Faults aimed at the account hit its token requests and its token users.
    let r = mock.admin(
        "POST",
        "/_admin/faults",
        json!({"kind":"status","status":503,"account":key,"path_prefix":"/oauth/"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(refresh(&mock, "cid", "shh", &rt).status, 503);
    assert_eq!(refresh(&mock, "cid", "shh", &rt).status, 200);
    mock.admin(
        "POST",
        "/_admin/faults",
        json!({"kind":"status","status":429,"account":key}),
    );
    assert_eq!(mock.api(&access2, "GET", "/v1/customers", "").status, 429);
    assert_eq!(mock.api(&access2, "GET", "/v1/customers", "").status, 200);
}

#[test]
fn oauth_rotation_revocation_and_bad_credentials() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_rotate";
    let spec = json!({"client_id":"app","client_secret":"secret","rotate":true,"expires_in":5});
    let rt1 = grant(&mock, key, spec);

    // Rotation: each refresh replaces the refresh token; the old one fails.
    let r = refresh(&mock, "app", "secret", &rt1);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["expires_in"], 5);
    let rt2 = r.json()["refresh_token"].as_str().unwrap().to_string();
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    assert!(rt2.starts_with("ort_") && rt2 != rt1);
    let bad_refresh =
        json!({"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token"});
    let r = refresh(&mock, "app", "secret", &rt1);
    assert_eq!((r.status, r.json()), (400, bad_refresh.clone()));
    assert_eq!(oauth_stats(&mock, key)["current_refresh_token"], json!(rt2));
    let r = refresh(&mock, "app", "secret", &rt2);
    assert_eq!(r.status, 200, "{}", r.body);
    let rt3 = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt3, rt2);
    assert_eq!(refresh(&mock, "app", "secret", &rt2).json(), bad_refresh);

    // Wrong client credentials, unknown tokens, other grant types.
    let r = refresh(&mock, "app", "wrong", &rt3);
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (400, Some("BAD_CLIENT_SECRET"))
    );
    let r = refresh(&mock, "other-app", "secret", &rt3);
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (400, Some("BAD_CLIENT_ID"))
    );
    let r = token_request(
        &mock,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("client_secret", "secret"),
            ("refresh_token", &rt3),
        ],
    );
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"status":"BAD_GRANT_TYPE","message":"unsupported grant_type"})
        )
    );
    // A failed request changes nothing: rt3 still works after all of these.
    let r = refresh(&mock, "app", "secret", &rt3);
    assert_eq!(r.status, 200, "{}", r.body);
    let rt4 = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        refresh(&mock, "app", "secret", "ort_unknown").json(),
        bad_refresh
    );
    assert_eq!(token_request(&mock, &[]).status, 400);
    assert_eq!(mock.request("GET", "/oauth/v1/token", &[], "").status, 405);
    assert_eq!(
        oauth_stats(&mock, key),
        json!({"refreshes":3,"refresh_failures":5,"current_refresh_token":rt4})
    );

    // Revocation: refreshes fail, issued access tokens live on until they expire.
    let r = mock.admin(
        "DELETE",
        &format!("/_admin/oauth/grants/{rt4}"),
        Value::Null,
    );
    assert_eq!((r.status, r.json()), (200, json!({"revoked": true})));
    assert_eq!(refresh(&mock, "app", "secret", &rt4).json(), bad_refresh);
    assert_eq!(mock.api(&access, "GET", "/v1/customers", "").status, 200);
    assert_eq!(
        oauth_stats(&mock, key),
        json!({"refreshes":3,"refresh_failures":6,"current_refresh_token":null})
    );
    assert_eq!(
        mock.admin("DELETE", "/_admin/oauth/grants/ort_nope", Value::Null)
            .status,
        404
    );

    // Requests with unknown refresh tokens are logged without an account.
    let all = mock.admin("GET", "/_admin/requests", Value::Null).json();
    let mine = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(all["by_route"]["POST /oauth/v1/token"], 11);
    assert_eq!(all["by_route"]["GET /oauth/v1/token"], 1);
    assert_eq!(mine["by_route"]["POST /oauth/v1/token"], 9);

    // Admin errors.
    let r = mock.admin(
        "POST",
        "/_admin/oauth/grants",
        json!({"client_id":"a","client_secret":"b"}),
    );
    assert_eq!(r.status, 400);
    let r = mock.admin(
        "POST",
        &format!("/_admin/oauth/grants?account={key}"),
        json!({"client_id":"a"}),
    );
    assert_eq!(r.status, 400);
    let r = mock.admin(
        "POST",
        &format!("/_admin/oauth/grants?account={key}"),
        json!({"client_id":"a","client_secret":"b","scopes":[]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        mock.admin("GET", "/_admin/oauth/stats", Value::Null).status,
        400
    );
}

#[test]
fn oauth_reset_drops_grants_and_tokens() {
    let mock = Mock::start_with_port_file();
    let (a, b) = ("sk_test_oauth_a", "sk_test_oauth_b");
    let spec = json!({"client_id":"c","client_secret":"s"});
    let (rt_a, rt_b) = (grant(&mock, a, spec.clone()), grant(&mock, b, spec));
    let token = |rt: &str| {
        let r = refresh(&mock, "c", "s", rt);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"].as_str().unwrap().to_string()
    };
    let (at_a, at_b) = (token(&rt_a), token(&rt_b));

    mock.admin("POST", &format!("/_admin/reset?account={a}"), Value::Null);
    let r = mock.api(&at_a, "GET", "/v1/customers", "");
    assert_eq!((r.status, r.json()), (401, expired_message(&at_a)));
    assert_eq!(
        refresh(&mock, "c", "s", &rt_a).json()["status"],
        "BAD_REFRESH_TOKEN"
    );
    assert_eq!(
        oauth_stats(&mock, a),
        json!({"refreshes":0,"refresh_failures":0,"current_refresh_token":null})
    );
    assert_eq!(mock.api(&at_b, "GET", "/v1/customers", "").status, 200);
    assert_eq!(oauth_stats(&mock, b)["refreshes"], 1);

    // A revoked account refuses its tokens too, masking the token.
    mock.admin(
        "POST",
        &format!("/_admin/accounts/revoke?account={b}"),
        Value::Null,
    );
    let r = mock.api(&at_b, "GET", "/v1/customers", "");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        format!(
            "Invalid API Key provided: oat_****{}",
            &at_b[at_b.len() - 4..]
        )
    );

    mock.admin("POST", "/_admin/reset", Value::Null);
    assert_eq!(mock.api(&at_b, "GET", "/v1/customers", "").status, 401);
    assert_eq!(
        refresh(&mock, "c", "s", &rt_b).json()["status"],
        "BAD_REFRESH_TOKEN"
    );
}

#[test]
fn account_endpoint_names_the_account_of_the_key_or_token() {
    let mock = Mock::start_with_port_file();
    let (a, b) = ("sk_test_acct_a", "sk_test_acct_b");
    let r = mock.api(a, "GET", "/v1/account", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let account = r.json();
    let id = account["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("acct_") && id.len() == 5 + 14, "{id}");
    assert_eq!(account["object"], "account");
    assert!(r.body.starts_with(r#"{"id":"acct_"#), "{}", r.body);
    assert_eq!(account["type"], "standard");
    assert!(!r.body.contains(a), "the key is not echoed");

    // Stable for the key (also after a reset), different for another key.
    assert_eq!(mock.api(a, "GET", "/v1/account", "").json()["id"], id);
    let other = mock.api(b, "GET", "/v1/account", "").json();
    assert_ne!(other["id"], id);
    mock.admin("POST", &format!("/_admin/reset?account={a}"), Value::Null);
    assert_eq!(mock.api(a, "GET", "/v1/account", "").json()["id"], id);

    // An OAuth access token reaches the account its grant belongs to.
    let rt = grant(&mock, a, json!({"client_id":"cid","client_secret":"shh"}));
    let access = refresh(&mock, "cid", "shh", &rt).json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(mock.api(&access, "GET", "/v1/account", "").json()["id"], id);

    // Unauthenticated, revoked, other methods: as any other route.
    assert_eq!(mock.request("GET", "/v1/account", &[], "").status, 401);
    let r = mock.api(a, "POST", "/v1/account", "email=x%40example.com");
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL (POST: /v1/account)"));
    mock.admin(
        "POST",
        &format!("/_admin/accounts/revoke?account={b}"),
        Value::Null,
    );
    assert_eq!(mock.api(b, "GET", "/v1/account", "").status, 401);

    // Counted like the other routes, under the account (the token's too).
    let counts = mock
        .admin("GET", &format!("/_admin/requests?account={a}"), Value::Null)
        .json();
    assert_eq!(counts["by_route"]["GET /v1/account"], 2);
    assert_eq!(counts["by_route"]["POST /v1/account"], 1);
}

#[test]
fn events_access_modes_and_changes_without_events() {
    let mock = Mock::start_with_port_file();
    let key = "sk_test_events_access";
    let created = mock.api(key, "POST", "/v1/customers", "email=a%40example.com").json();
    let id = created["id"].as_str().unwrap().to_string();
    let events = |query: &str| mock.api(key, "GET", &format!("/v1/events{query}"), "");
    assert_eq!(ids(&events("").json()).len(), 1);

    // Changes "from outside" with events=false leave no event.
    mock.admin("POST", &format!("/_admin/stripe/customers/{id}?account={key}&events=false"), json!({"name": "Quiet"}));
    mock.admin("POST", &format!("/_admin/stripe/customers?account={key}&events=false"), json!({"email": "b@example.com"}));
    assert_eq!(ids(&events("").json()).len(), 1);
    assert_eq!(mock.api(key, "GET", &format!("/v1/customers/{id}"), "").json()["name"], "Quiet");
    assert_eq!(ids(&mock.api(key, "GET", "/v1/customers", "").json()).len(), 2);
    mock.admin("DELETE", &format!("/_admin/stripe/customers/{id}?account={key}&events=false"), Value::Null);
    assert_eq!(ids(&events("").json()).len(), 1);
    // Without the flag, events as before.
    mock.admin("POST", &format!("/_admin/stripe/customers?account={key}"), json!({"email": "c@example.com"}));
    assert_eq!(ids(&events("").json()).len(), 2);

    // An imitation without the types[] filter: 400 on it, the rest works.
    let r = mock.admin("POST", &format!("/_admin/stripe/events/access?account={key}&mode=no_types_filter"), Value::Null);
    assert_eq!(r.status, 200);
    let refused = events("?types[]=customer.created");
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["message"], "Received unknown parameter: types");
    assert_eq!(events("?limit=1").status, 200);

    // A restricted key without the Events permission: 403 on every events request.
    mock.admin("POST", &format!("/_admin/stripe/events/access?account={key}&mode=forbidden"), Value::Null);
    let refused = events("?limit=1");
    assert_eq!(refused.status, 403);
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("rak_event_read"));
    assert_eq!(mock.api(key, "GET", "/v1/customers", "").status, 200);
    assert_eq!(mock.admin("POST", &format!("/_admin/stripe/events/access?account={key}&mode=sometimes"), Value::Null).status, 400);
    mock.admin("POST", &format!("/_admin/stripe/events/access?account={key}&mode=full"), Value::Null);
    assert_eq!(events("?types[]=customer.created").status, 200);
}
