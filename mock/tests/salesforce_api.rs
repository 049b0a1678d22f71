//! The Salesforce subset over real HTTP: starts the `sequin-mock` binary and
//! talks HTTP/1.1 to it, the way the extension does.

mod common;

use std::collections::HashSet;

use serde_json::{json, Value};

use common::{body_text, Mock, Resp};

const V: &str = "/services/data/v60.0";

impl Mock {
    /// A Salesforce API call with a Bearer token and a JSON body.
    fn api(&self, token: &str, method: &str, path: &str, body: Value) -> Resp {
        let auth = format!("Bearer {token}");
        self.request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &body_text(&body),
        )
    }

    fn token_request(&self, client_id: &str, secret: &str, refresh_token: &str) -> Resp {
        self.request(
            "POST",
            "/services/oauth2/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &format!("grant_type=refresh_token&client_id={client_id}&client_secret={secret}&refresh_token={refresh_token}"),
        )
    }

    /// A grant for `key` and a fresh access token from it.
    fn login(&self, key: &str) -> (String, String) {
        let r = self.admin(
            "POST",
            &format!("/_admin/oauth/grants?account={key}"),
            json!({"client_id":"cid","client_secret":"shh"}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let rt = r.json()["refresh_token"].as_str().unwrap().to_string();
        let r = self.token_request("cid", "shh", &rt);
        assert_eq!(r.status, 200, "{}", r.body);
        (rt, r.json()["access_token"].as_str().unwrap().to_string())
    }

    fn query(&self, token: &str, soql: &str) -> Resp {
        let q = soql
            .replace('%', "%25")
            .replace('+', "%2B")
            .replace(' ', "+")
            .replace('>', "%3E")
            .replace('=', "%3D")
            .replace(',', "%2C");
        self.api(token, "GET", &format!("{V}/query?q={q}"), Value::Null)
    }
}

fn error_code(r: &Resp) -> String {
    r.json()[0]["errorCode"].as_str().unwrap_or("").to_string()
}

#[test]
fn token_flow_expiry_and_request_counts() {
    let mock = Mock::start();
    let key = "sk_test_sf_token";
    let (rt, access) = mock.login(key);

    let r = mock.token_request("cid", "shh", &rt);
    let t = r.json();
    let keys: HashSet<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from([
            "access_token",
            "instance_url",
            "id",
            "token_type",
            "issued_at",
            "signature"
        ])
    );
    assert_eq!(t["instance_url"], mock.url());
    assert_eq!(t["token_type"], "Bearer");
    assert!(t["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/id/00D", mock.url())));
    assert!(t["issued_at"].as_str().unwrap().parse::<u64>().is_ok());

    // Bad credentials: Salesforce's OAuth error bodies.
    let r = mock.token_request("cid", "wrong", &rt);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("invalid_client"))
    );
    let r = mock.token_request("cid", "shh", "nope");
    assert_eq!(
        r.json(),
        json!({"error":"invalid_grant","error_description":"expired access/refresh token"})
    );

    let r = mock.query(&access, "SELECT Id FROM Contact");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"totalSize":0,"done":true,"records":[]}));
    assert_eq!(r.header("Sforce-Limit-Info"), Some("api-usage=1/15000"));

    // Expired sessions (and unknown tokens) get 401 INVALID_SESSION_ID.
    let r = mock.admin(
        "POST",
        &format!("/_admin/oauth/expire?account={key}"),
        Value::Null,
    );
    assert_eq!(r.json(), json!({"expired": 2}));
    let r = mock.query(&access, "SELECT Id FROM Contact");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])
    );
    assert_eq!(
        mock.api(
            "garbage",
            "GET",
            &format!("{V}/sobjects/Contact/x"),
            Value::Null
        )
        .status,
        401
    );
    assert_eq!(
        mock.request("GET", &format!("{V}/query?q=x"), &[], "")
            .status,
        401
    );
    // Refresh and retry.
    let fresh = mock.token_request("cid", "shh", &rt).json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(mock.query(&fresh, "SELECT Id FROM Contact").status, 200);

    let stats = mock
        .admin(
            "GET",
            &format!("/_admin/oauth/stats?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(
        (
            stats["refreshes"].clone(),
            stats["refresh_failures"].clone()
        ),
        (json!(3), json!(1))
    );
    let counts = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(
        counts["by_route"],
        json!({"POST /services/oauth2/token": 4, "GET /services/data/v60.0/query": 3})
    );

    // Resetting the account ends its sessions.
    mock.admin("POST", &format!("/_admin/reset?account={key}"), Value::Null);
    assert_eq!(mock.query(&fresh, "SELECT Id FROM Contact").status, 401);
}

/// The org id in a token reply's identity URL (`…/id/<org>/<user>`).
fn org_of(token_reply: &Value) -> String {
    let id = token_reply["id"].as_str().unwrap();
    let mut parts = id.rsplit('/');
    let (_user, org) = (parts.next().unwrap(), parts.next().unwrap());
    org.to_string()
}

#[test]
fn token_replies_name_the_org_of_the_grant() {
    let mock = Mock::start();
    let grant = |key: &str, client_id: &str| {
        let r = mock.admin(
            "POST",
            &format!("/_admin/oauth/grants?account={key}"),
            json!({"client_id": client_id, "client_secret": "shh"}),
        );
        let rt = r.json()["refresh_token"].as_str().unwrap().to_string();
        let r = mock.token_request(client_id, "shh", &rt);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let a1 = grant("sk_test_org_a", "cid");
    let a2 = grant("sk_test_org_a", "other_app");
    let b = grant("sk_test_org_b", "cid");
    let org = org_of(&a1);
    assert!(org.starts_with("00D") && org.len() == 18, "{org}");
    // Two grants of one account are one org (and user); another account is another org.
    assert_eq!(a1["id"], a2["id"]);
    assert_ne!(org_of(&b), org);
    assert!(a1["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/id/{org}/005", mock.url())));
}

#[test]
fn records_crud_and_validation() {
    let mock = Mock::start();
    let key = "sk_test_sf_crud";
    let (_, token) = mock.login(key);

    let r = mock.api(
        &token,
        "POST",
        &format!("{V}/sobjects/Account"),
        json!({"Name":"Acme"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let account = r.json()["id"].as_str().unwrap().to_string();
    assert!(account.starts_with("001") && account.len() == 18);
    assert_eq!(
        r.json(),
        json!({"id": account, "success": true, "errors": []})
    );

    let contact =
        json!({"FirstName":"Ann","LastName":"Lee","Email":"ann@example.com","AccountId":account});
    let r = mock.api(
        &token,
        "POST",
        &format!("{V}/sobjects/Contact"),
        contact.clone(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(r.header("Sforce-Limit-Info").is_some());

    let r = mock.api(
        &token,
        "GET",
        &format!("{V}/sobjects/Contact/{id}"),
        Value::Null,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let c = r.json();
    assert_eq!(
        c["attributes"],
        json!({"type":"Contact","url":format!("{V}/sobjects/Contact/{id}")})
    );
    assert_eq!(
        (c["Name"].clone(), c["AccountId"].clone()),
        (json!("Ann Lee"), json!(account))
    );
    assert_eq!(c["IsDeleted"], false);
    let stamp = c["SystemModstamp"].as_str().unwrap().to_string();
    assert!(stamp.ends_with("+0000") && stamp.len() == 28, "{stamp}");
    // Fields come in the type's order, attributes first.
    assert!(r.body.starts_with("{\"attributes\":{\"type\":\"Contact\""));
    let r = mock.api(
        &token,
        "GET",
        &format!("{V}/sobjects/Contact/{id}?fields=Email"),
        Value::Null,
    );
    let keys: Vec<String> = r.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["Email", "attributes"]);

    // Validation errors: 400 with the error array.
    let cases = [
        (
            json!({"FirstName":"X"}),
            "REQUIRED_FIELD_MISSING",
            json!(["LastName"]),
        ),
        (
            json!({"LastName":"X","Email":"andrea__invalid"}),
            "INVALID_EMAIL_ADDRESS",
            json!(["Email"]),
        ),
        (
            json!({"LastName":"X","Email":"ANN@example.com"}),
            "DUPLICATES_DETECTED",
            json!([]),
        ),
        (
            json!({"LastName":"X","AccountId":id}),
            "FIELD_INTEGRITY_EXCEPTION",
            json!(["AccountId"]),
        ),
        (
            json!({"LastName":"X","AccountId":"001000000000000AAA"}),
            "INVALID_CROSS_REFERENCE_KEY",
            json!([]),
        ),
    ];
    for (body, code, fields) in cases {
        let r = mock.api(&token, "POST", &format!("{V}/sobjects/Contact"), body);
        assert_eq!(
            (r.status, error_code(&r)),
            (400, code.to_string()),
            "{}",
            r.body
        );
        assert_eq!(r.json()[0]["fields"], fields, "{}", r.body);
    }
    let r = mock.api(
        &token,
        "POST",
        &format!("{V}/sobjects/Contact"),
        json!({"LastName":"X","Foo":"y"}),
    );
    assert_eq!(
        r.json(),
        json!([{"message":"No such column 'Foo' on sobject of type Contact","errorCode":"INVALID_FIELD"}])
    );
    let r = mock.api(
        &token,
        "POST",
        &format!("{V}/sobjects/Contact"),
        json!({"LastName":"X","Email":"andrea__invalid"}),
    );
    assert_eq!(
        r.json()[0]["message"],
        "Email: invalid email address: andrea__invalid"
    );

    let r = mock.api(
        &token,
        "PATCH",
        &format!("{V}/sobjects/Contact/{id}"),
        json!({"Title":"CTO"}),
    );
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let after = mock
        .admin(
            "GET",
            &format!("/_admin/salesforce/Contact/{id}?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(after["Title"], "CTO");
    assert!(after["SystemModstamp"].as_str().unwrap() >= stamp.as_str());
    let r = mock.api(
        &token,
        "PATCH",
        &format!("{V}/sobjects/Contact/{id}"),
        json!({"LastName":null}),
    );
    assert_eq!(error_code(&r), "REQUIRED_FIELD_MISSING");

    assert_eq!(
        mock.api(
            &token,
            "DELETE",
            &format!("{V}/sobjects/Contact/{id}"),
            Value::Null
        )
        .status,
        204
    );
    let r = mock.api(
        &token,
        "GET",
        &format!("{V}/sobjects/Contact/{id}"),
        Value::Null,
    );
    assert_eq!((r.status, error_code(&r)), (404, "NOT_FOUND".to_string()));
    let r = mock.api(
        &token,
        "DELETE",
        &format!("{V}/sobjects/Contact/{id}"),
        Value::Null,
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (404, "ENTITY_IS_DELETED".to_string())
    );
    assert_eq!(
        mock.api(
            &token,
            "GET",
            &format!("{V}/sobjects/Widget/x"),
            Value::Null
        )
        .status,
        404
    );
    assert_eq!(
        mock.api(
            &token,
            "GET",
            "/services/data/latest/query?q=x",
            Value::Null
        )
        .status,
        404
    );

    // "From outside": admin create/update/delete with the same validation.
    let r = mock.admin(
        "POST",
        &format!("/_admin/salesforce/Lead?account={key}"),
        json!({"LastName":"L"}),
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "REQUIRED_FIELD_MISSING".to_string())
    );
    let r = mock.admin(
        "POST",
        &format!("/_admin/salesforce/Lead?account={key}"),
        json!({"LastName":"L","Company":"C"}),
    );
    let lead = r.json();
    assert_eq!(
        (lead["Status"].clone(), lead["Name"].clone()),
        (json!("Open - Not Contacted"), json!("L"))
    );
    let lead_id = lead["Id"].as_str().unwrap();
    assert!(lead_id.starts_with("00Q"));
    let r = mock.admin(
        "PATCH",
        &format!("/_admin/salesforce/Lead/{lead_id}?account={key}"),
        json!({"Status":"Working"}),
    );
    assert_eq!(r.json()["Status"], "Working");
    let all = mock
        .admin(
            "GET",
            &format!("/_admin/salesforce/Lead?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(all["records"].as_array().unwrap().len(), 1);
    let r = mock.admin(
        "DELETE",
        &format!("/_admin/salesforce/Lead/{lead_id}?account={key}"),
        Value::Null,
    );
    assert_eq!(r.json(), json!({"id": lead_id, "deleted": true}));
}

#[test]
fn query_pages_follow_next_records_url() {
    let mock = Mock::start();
    let key = "sk_test_sf_query";
    let (_, token) = mock.login(key);
    let r = mock.admin(
        "POST",
        &format!("/_admin/salesforce/Contact/seed?account={key}&count=4500&step_ms=0"),
        Value::Null,
    );
    assert_eq!(r.json(), json!({"created": 4500}));

    let soql = "SELECT Id, LastName, SystemModstamp FROM Contact WHERE SystemModstamp > 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id";
    let mut r = mock.query(&token, soql);
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        assert_eq!(page["totalSize"], 4500);
        pages += 1;
        for rec in page["records"].as_array().unwrap() {
            ids.push(rec["Id"].as_str().unwrap().to_string());
        }
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        let next = page["nextRecordsUrl"].as_str().unwrap().to_string();
        assert!(next.starts_with(&format!("{V}/query/01g")), "{next}");
        assert!(next.ends_with(&format!("-{}", ids.len())), "{next}");
        // Changes made meanwhile don't shift the pages.
        if pages == 1 {
            mock.admin(
                "POST",
                &format!("/_admin/salesforce/Contact/seed?account={key}&count=10"),
                Value::Null,
            );
        }
        r = mock.api(&token, "GET", &next, Value::Null);
    }
    assert_eq!((pages, ids.len()), (3, 4500));
    let admin_ids: Vec<String> = mock
        .admin(
            "GET",
            &format!("/_admin/salesforce/Contact?account={key}"),
            Value::Null,
        )
        .json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(admin_ids.len(), 4510);
    assert_eq!(
        ids[..],
        admin_ids[..4500],
        "ids in (SystemModstamp, Id) order"
    );

    // Incremental: only what changed after the last SystemModstamp seen.
    let r = mock.query(
        &token,
        "SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp DESC LIMIT 1",
    );
    let last = r.json()["records"][0]["SystemModstamp"]
        .as_str()
        .unwrap()
        .to_string();
    let r = mock.query(
        &token,
        &format!("SELECT Id FROM Contact WHERE SystemModstamp >= {last}"),
    );
    assert!(r.json()["totalSize"].as_u64().unwrap() >= 1);
    let r = mock.query(
        &token,
        &format!("SELECT Id FROM Contact WHERE SystemModstamp > {last}"),
    );
    assert_eq!(r.json()["totalSize"], 0);

    for (soql, code) in [
        ("SELECT Id, Nope FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Widget", "INVALID_TYPE"),
        (
            "SELECT Id FROM Contact WHERE LastName = 'x'",
            "MALFORMED_QUERY",
        ),
    ] {
        let r = mock.query(&token, soql);
        assert_eq!(
            (r.status, error_code(&r)),
            (400, code.to_string()),
            "{soql}"
        );
    }
    let r = mock.api(
        &token,
        "GET",
        &format!("{V}/query/01gXXXXXXXXXXXXXXX-2000"),
        Value::Null,
    );
    assert_eq!(error_code(&r), "INVALID_QUERY_LOCATOR");
}

#[test]
fn deleted_records_and_their_window() {
    let mock = Mock::start();
    let key = "sk_test_sf_deleted";
    let (_, token) = mock.login(key);
    // Millisecond precision, so the test doesn't wait for the minute to turn.
    let r = mock.admin(
        "POST",
        &format!("/_admin/salesforce/settings?account={key}"),
        json!({"deleted_precision_ms": 1}),
    );
    assert_eq!(r.json()["deleted_precision_ms"], 1);
    mock.admin(
        "POST",
        &format!("/_admin/salesforce/Opportunity/seed?account={key}&count=3"),
        Value::Null,
    );
    let all = mock
        .admin(
            "GET",
            &format!("/_admin/salesforce/Opportunity?account={key}"),
            Value::Null,
        )
        .json();
    let ids: Vec<String> = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.iter().all(|id| id.starts_with("006")));
    assert_eq!(
        mock.api(
            &token,
            "DELETE",
            &format!("{V}/sobjects/Opportunity/{}", ids[0]),
            Value::Null
        )
        .status,
        204
    );
    std::thread::sleep(std::time::Duration::from_millis(5));

    let deleted = |start: &str, end: &str| {
        mock.api(
            &token,
            "GET",
            &format!(
                "{V}/sobjects/Opportunity/deleted/?start={}&end={}",
                start.replace('+', "%2B"),
                end.replace('+', "%2B")
            ),
            Value::Null,
        )
    };
    let r = deleted("2000-01-01T00:00:00Z", "2100-01-01T00:00:00+00:00");
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "INVALID_REPLICATION_DATE".to_string()),
        "start too old"
    );
    // When it was deleted, from the admin's view of the delete log.
    let log = mock
        .admin(
            "GET",
            &format!("/_admin/salesforce/Opportunity/deleted?account={key}"),
            Value::Null,
        )
        .json();
    let deleted_at = log["deletedRecords"][0]["deletedDate"]
        .as_str()
        .unwrap()
        .to_string();
    let start = format!("{}00:00.000+0000", &deleted_at[..14]); // the start of that hour
    let r = deleted(&start, "2100-01-01T00:00:00Z");
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(
        body["deletedRecords"],
        json!([{"id": ids[0], "deletedDate": deleted_at}])
    );
    assert!(body["earliestDateAvailable"].as_str().unwrap() < start.as_str());
    assert!(body["latestDateCovered"].as_str().unwrap() > deleted_at.as_str());
    let r = deleted("2100-01-01T00:00:00Z", "2099-01-01T00:00:00Z");
    assert_eq!(error_code(&r), "INVALID_REPLICATION_DATE");

    // As if 15 days had passed: the log is gone and old starts are refused.
    let r = mock.admin(
        "POST",
        &format!("/_admin/salesforce/deleted/expire?account={key}"),
        Value::Null,
    );
    assert_eq!(r.json(), json!({"expired": 1}));
    let r = deleted(&start, "2100-01-01T00:00:00Z");
    assert_eq!(error_code(&r), "INVALID_REPLICATION_DATE");
}

#[test]
fn collections_all_or_none_and_limits() {
    let mock = Mock::start();
    let key = "sk_test_sf_coll";
    let (_, token) = mock.login(key);
    let url = format!("{V}/composite/sobjects");
    let contact = |i: usize| json!({"attributes":{"type":"Contact"},"LastName":format!("C{i}"),"Email":format!("c{i}@example.com")});
    let mut records: Vec<Value> = (0..200).map(contact).collect();
    records[120]["Email"] = json!("andrea__invalid");

    let r = mock.api(
        &token,
        "POST",
        &url,
        json!({"allOrNone": true, "records": records}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json();
    assert_eq!(out.as_array().unwrap().len(), 200);
    assert_eq!(
        out[120],
        json!({"success":false,"errors":[{"statusCode":"INVALID_EMAIL_ADDRESS","message":"Email: invalid email address: andrea__invalid","fields":["Email"]}]})
    );
    for (i, res) in out
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 120)
    {
        assert_eq!(
            res["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "{i}"
        );
        assert_eq!(res["errors"][0]["message"], "Record rolled back because not all records were valid and the request was using AllOrNone header");
    }
    let all = mock
        .admin(
            "GET",
            &format!("/_admin/salesforce/Contact?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(all["records"], json!([]), "nothing applied");

    // 201 records: refused whole.
    let many: Vec<Value> = (0..201).map(contact).collect();
    let r = mock.api(
        &token,
        "POST",
        &url,
        json!({"allOrNone": true, "records": many}),
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "EXCEEDED_ID_LIMIT".to_string())
    );

    // Valid: created in order; then updated and deleted as collections.
    let r = mock.api(
        &token,
        "POST",
        &url,
        json!({"allOrNone": true, "records": [contact(1), contact(2)]}),
    );
    let ids: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    let r = mock.api(
        &token,
        "PATCH",
        &url,
        json!({"allOrNone": false, "records": [
        {"attributes":{"type":"Contact"},"id":ids[0],"Title":"VP"},
        {"attributes":{"type":"Contact"},"id":ids[1],"Email":"c1@example.com"}]}),
    );
    let out = r.json();
    assert_eq!(out[0], json!({"id": ids[0], "success": true, "errors": []}));
    assert_eq!(out[1]["errors"][0]["statusCode"], "DUPLICATES_DETECTED");
    let r = mock.api(
        &token,
        "DELETE",
        &format!("{url}?ids={},{}&allOrNone=true", ids[0], ids[1]),
        Value::Null,
    );
    assert_eq!(
        r.json()[1],
        json!({"id": ids[1], "success": true, "errors": []})
    );
    let r = mock.api(
        &token,
        "DELETE",
        &format!("{url}?ids={}&allOrNone=true", ids[0]),
        Value::Null,
    );
    assert_eq!(r.json()[0]["errors"][0]["statusCode"], "ENTITY_IS_DELETED");
}

#[test]
fn daily_limit_faults_and_counts() {
    let mock = Mock::start();
    let key = "sk_test_sf_limit";
    let (_, token) = mock.login(key);
    let r = mock.admin(
        "POST",
        &format!("/_admin/salesforce/settings?account={key}"),
        json!({"daily_limit": 3, "api_usage": 1}),
    );
    assert_eq!(r.json()["daily_limit"], 3);
    assert_eq!(
        mock.query(&token, "SELECT Id FROM Lead")
            .header("Sforce-Limit-Info"),
        Some("api-usage=2/3")
    );
    assert_eq!(
        mock.query(&token, "SELECT Id FROM Lead")
            .header("Sforce-Limit-Info"),
        Some("api-usage=3/3")
    );
    let r = mock.query(&token, "SELECT Id FROM Lead");
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!([{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(r.header("Sforce-Limit-Info"), Some("api-usage=3/3"));
    let r = mock.admin(
        "POST",
        &format!("/_admin/salesforce/settings?account={key}"),
        json!({"api_usage": 0}),
    );
    assert_eq!(r.json()["api_usage"], 0);
    assert_eq!(mock.query(&token, "SELECT Id FROM Lead").status, 200);

    // Faults: a Salesforce-shaped body by default.
    mock.admin(
        "POST",
        "/_admin/faults",
        json!({"kind":"status","status":503,"account":key,"path_prefix":"/services/data/"}),
    );
    let r = mock.query(&token, "SELECT Id FROM Lead");
    assert_eq!(
        (r.status, error_code(&r)),
        (503, "UNKNOWN_EXCEPTION".to_string())
    );
    assert!(r.header("Request-Id").is_some());
    assert_eq!(mock.query(&token, "SELECT Id FROM Lead").status, 200);

    let counts = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(counts["by_route"]["GET /services/data/v60.0/query"], 6);
    let r = mock.api(
        &token,
        "GET",
        &format!("{V}/sobjects/Lead/00Q000000000000AAA"),
        Value::Null,
    );
    assert_eq!(r.status, 404);
    let counts = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(
        counts["by_route"]["GET /services/data/v60.0/sobjects/Lead/{id}"],
        1
    );
}

/// The describe entry of one field.
fn described(describe: &Value, name: &str) -> Value {
    describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .clone()
}

fn usage(r: &Resp) -> String {
    r.header("Sforce-Limit-Info").unwrap_or("").to_string()
}

#[test]
fn describe_global_and_describe() {
    let mock = Mock::start();
    let (_, token) = mock.login("sk_test_describe");
    let global = mock.api(&token, "GET", &format!("{V}/sobjects/"), Value::Null);
    assert_eq!(global.status, 200, "{}", global.body);
    let g = global.json();
    assert_eq!(
        (g["encoding"].clone(), g["maxBatchSize"].clone()),
        (json!("UTF-8"), json!(200))
    );
    let entry = |name: &str| {
        g["sobjects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
            .clone()
    };
    let invoice = entry("Invoice__c");
    assert_eq!(
        (
            invoice["custom"].clone(),
            invoice["keyPrefix"].clone(),
            invoice["label"].clone(),
            invoice["queryable"].clone()
        ),
        (json!(true), json!("a01"), json!("Invoice"), json!(true))
    );
    assert_eq!(
        invoice["urls"]["describe"],
        "/services/data/v60.0/sobjects/Invoice__c/describe"
    );
    assert_eq!(entry("Contact")["custom"], false);
    assert_eq!(entry("Wide__c")["keyPrefix"], "a02");
    assert_eq!(entry("Narrow__c")["keyPrefix"], "a03");
    assert_eq!(entry("NoteAndAttachment")["queryable"], false);
    // Without the slash, and a describe counts as an API call.
    let again = mock.api(&token, "GET", &format!("{V}/sobjects"), Value::Null);
    assert_eq!(again.json(), g);
    let before = usage(&again);

    let r = mock.api(
        &token,
        "GET",
        &format!("{V}/sobjects/invoice__c/describe/"),
        Value::Null,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(usage(&r), before);
    let d = r.json();
    assert_eq!(
        (d["name"].clone(), d["custom"].clone()),
        (json!("Invoice__c"), json!(true))
    );
    assert_eq!(d["fields"][0]["name"], "Id");
    assert_eq!(d["fields"][0]["soapType"], "tns:ID");
    let flags = |f: &Value| {
        (
            f["type"].as_str().unwrap().to_string(),
            f["createable"].as_bool().unwrap(),
            f["updateable"].as_bool().unwrap(),
            f["calculated"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        flags(&described(&d, "Total__c")),
        ("currency".into(), false, false, true)
    );
    assert_eq!(
        flags(&described(&d, "Code__c")),
        ("string".into(), true, false, false)
    );
    assert_eq!(
        flags(&described(&d, "Location__c")),
        ("location".into(), false, false, false)
    );
    let latitude = described(&d, "Location__Latitude__s");
    assert_eq!(flags(&latitude), ("double".into(), true, true, false));
    assert_eq!(latitude["compoundFieldName"], "Location__c");
    assert_eq!(described(&d, "Location__c")["soapType"], "urn:location");
    let status = described(&d, "Status__c");
    assert_eq!(status["restrictedPicklist"], true);
    assert_eq!(
        status["picklistValues"][0],
        json!({"value":"Draft","label":"Draft","active":true,"defaultValue":true})
    );
    let paid = described(&d, "Paid__c");
    assert_eq!(
        (
            paid["nillable"].clone(),
            paid["defaultedOnCreate"].clone(),
            paid["soapType"].clone()
        ),
        (json!(false), json!(true), json!("xsd:boolean"))
    );
    let account = described(&d, "Account__c");
    assert_eq!(
        (
            account["referenceTo"].clone(),
            account["relationshipName"].clone()
        ),
        (json!(["Account"]), json!("Account__r"))
    );
    assert_eq!(described(&d, "Reminder__c")["soapType"], "xsd:time");
    assert_eq!(
        described(&d, "Attachment__c")["soapType"],
        "xsd:base64Binary"
    );
    assert_eq!(described(&d, "Name")["nillable"], false);
    let names: Vec<&str> = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[names.len() - 4..],
        [
            "IsDeleted",
            "CreatedDate",
            "LastModifiedDate",
            "SystemModstamp"
        ]
    );

    let a = mock
        .api(
            &token,
            "GET",
            &format!("{V}/sobjects/Account/describe"),
            Value::Null,
        )
        .json();
    assert_eq!(described(&a, "BillingAddress")["type"], "address");
    assert_eq!(described(&a, "BillingAddress")["soapType"], "urn:address");
    for part in [
        "BillingStreet",
        "BillingCity",
        "BillingPostalCode",
        "BillingState",
        "BillingCountry",
    ] {
        let f = described(&a, part);
        assert_eq!(
            (f["compoundFieldName"].clone(), f["createable"].clone()),
            (json!("BillingAddress"), json!(true)),
            "{part}"
        );
    }
    assert_eq!(described(&a, "Phone")["type"], "phone");
    assert_eq!(described(&a, "Website")["type"], "url");
    assert_eq!(described(&a, "NumberOfEmployees")["type"], "int");
    let c = mock
        .api(
            &token,
            "GET",
            &format!("{V}/sobjects/Contact/describe"),
            Value::Null,
        )
        .json();
    let score = described(&c, "Score__c");
    assert_eq!(
        (
            score["type"].clone(),
            score["precision"].clone(),
            score["scale"].clone(),
            score["custom"].clone(),
            score["nillable"].clone()
        ),
        (
            json!("double"),
            json!(18),
            json!(2),
            json!(true),
            json!(true)
        )
    );
    assert_eq!(described(&c, "AccountId")["type"], "reference");

    let n = mock.api(
        &token,
        "GET",
        &format!("{V}/sobjects/NoteAndAttachment/describe"),
        Value::Null,
    );
    assert_eq!(n.status, 200);
    let q = mock.query(&token, "SELECT Id FROM NoteAndAttachment");
    assert_eq!(
        (q.status, error_code(&q)),
        (400, "INVALID_TYPE".to_string())
    );
    assert_eq!(
        q.json()[0]["message"],
        "sObject type 'NoteAndAttachment' is not supported."
    );
    let r = mock.api(
        &token,
        "GET",
        &format!("{V}/sobjects/Nope__c/describe"),
        Value::Null,
    );
    assert_eq!((r.status, error_code(&r)), (404, "NOT_FOUND".to_string()));
}

#[test]
fn schema_changes_by_the_admin() {
    let mock = Mock::start();
    let key = "sk_test_schema";
    let (_, token) = mock.login(key);
    let (_, other) = mock.login("sk_test_schema_other");
    let describe = |token: &str, since: Option<&str>| {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(s) = since {
            headers.push(("If-Modified-Since", s));
        }
        mock.request(
            "GET",
            &format!("{V}/sobjects/Invoice__c/describe"),
            &headers,
            "",
        )
    };
    let first = describe(&token, None);
    let last_modified = first.header("Last-Modified").unwrap().to_string();
    let unchanged = describe(&token, Some(&last_modified));
    assert_eq!((unchanged.status, unchanged.body.as_str()), (304, ""));
    assert_eq!(
        describe(&token, Some("Wed, 21 Oct 2099 07:28:00 GMT")).status,
        304
    );
    assert_eq!(
        describe(&token, Some("Wed, 21 Oct 2015 07:28:00 GMT")).status,
        200
    );

    let created = mock.api(
        &token,
        "POST",
        &format!("{V}/sobjects/Invoice__c"),
        json!({"Name":"Before"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let before_id = created.json()["id"].as_str().unwrap().to_string();
    let stamp = |id: &str| {
        mock.api(
            &token,
            "GET",
            &format!("{V}/sobjects/Invoice__c/{id}?fields=SystemModstamp"),
            Value::Null,
        )
        .json()["SystemModstamp"]
            .clone()
    };
    let stamp_before = stamp(&before_id);

    // If-Modified-Since has second precision: change the schema a second later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let fields = format!("/_admin/salesforce/Invoice__c/fields?account={key}");
    let r = mock.admin(
        "POST",
        &fields,
        json!({"name":"Region__c","type":"picklist","length":80,"createable":true,"updateable":true,"nillable":true,
               "picklistValues":["North","South"],"restrictedPicklist":true}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.json()["type"].clone(), r.json()["custom"].clone()),
        (json!("picklist"), json!(true))
    );
    let r = mock.admin(
        "POST",
        &fields,
        json!({"name":"Weight__c","type":"double","precision":10,"scale":3}),
    );
    assert_eq!(r.json()["scale"], 3);
    let changed = describe(&token, Some(&last_modified));
    assert_eq!(changed.status, 200);
    assert_eq!(described(&changed.json(), "Region__c")["length"], 80);
    assert_ne!(changed.header("Last-Modified").unwrap(), last_modified);
    // Existing records get null, and keep their SystemModstamp.
    let q = mock.query(&token, "SELECT Id, Region__c, Weight__c FROM Invoice__c");
    assert_eq!(q.status, 200, "{}", q.body);
    assert_eq!(q.json()["records"][0]["Region__c"], Value::Null);
    assert_eq!(stamp(&before_id), stamp_before);

    for bad in [
        json!({"name":"Region","type":"string"}),
        json!({"name":"region__c","type":"string"}),
        json!({"name":"Spot__c","type":"address"}),
        json!({"name":"Spot__c","type":"nope"}),
        json!({"name":"Spot__c","type":"string","bogus":1}),
    ] {
        assert_eq!(
            mock.admin("POST", &fields, bad.clone()).status,
            400,
            "{bad}"
        );
    }

    let invoices = format!("{V}/sobjects/Invoice__c");
    let r = mock.api(
        &token,
        "POST",
        &invoices,
        json!({"Name":"A","Region__c":"North","Weight__c":1.5}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = mock.api(
        &token,
        "POST",
        &invoices,
        json!({"Name":"A","Region__c":"West"}),
    );
    assert_eq!(error_code(&r), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");

    // Field-level access.
    let region = format!("/_admin/salesforce/Invoice__c/fields/Region__c?account={key}");
    let r = mock.admin("PATCH", &region, json!({"updateable":false}));
    assert_eq!(
        (
            r.status,
            r.json()["updateable"].clone(),
            r.json()["createable"].clone()
        ),
        (200, json!(false), json!(true))
    );
    let r = mock.api(
        &token,
        "PATCH",
        &format!("{invoices}/{id}"),
        json!({"Region__c":"South"}),
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "INVALID_FIELD_FOR_INSERT_UPDATE".to_string())
    );
    assert_eq!(r.json()[0]["fields"], json!(["Region__c"]));
    mock.admin(
        "PATCH",
        &region,
        json!({"createable":false,"updateable":true}),
    );
    let r = mock.api(
        &token,
        "POST",
        &invoices,
        json!({"Name":"B","Region__c":"South"}),
    );
    assert_eq!(error_code(&r), "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(
        mock.api(
            &token,
            "PATCH",
            &format!("{invoices}/{id}"),
            json!({"Region__c":"South"})
        )
        .status,
        204
    );
    let total = format!("/_admin/salesforce/Invoice__c/fields/Total__c?account={key}");
    assert_eq!(
        mock.admin("PATCH", &total, json!({"createable":true}))
            .status,
        400
    );

    // Another account's org is untouched.
    let theirs = mock
        .api(
            &other,
            "GET",
            &format!("{V}/sobjects/Invoice__c/describe"),
            Value::Null,
        )
        .json();
    assert!(theirs["fields"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["name"] != "Region__c"));
    let q = mock.query(&other, "SELECT Region__c FROM Invoice__c");
    assert_eq!(error_code(&q), "INVALID_FIELD");

    // Removed: unknown to SOQL, writes and describe.
    assert_eq!(
        mock.admin(
            "DELETE",
            &format!("/_admin/salesforce/Invoice__c/fields/Name?account={key}"),
            Value::Null
        )
        .status,
        400
    );
    let r = mock.admin("DELETE", &region, Value::Null);
    assert_eq!((r.status, r.json()), (200, json!({"deleted":true})));
    let q = mock.query(&token, "SELECT Id, Region__c FROM Invoice__c");
    assert_eq!(error_code(&q), "INVALID_FIELD");
    assert!(q.json()[0]["message"]
        .as_str()
        .unwrap()
        .contains("No such column 'Region__c' on entity 'Invoice__c'"));
    let r = mock.api(
        &token,
        "PATCH",
        &format!("{invoices}/{id}"),
        json!({"Region__c":"South"}),
    );
    assert_eq!(
        r.json()[0]["message"],
        "No such column 'Region__c' on sobject of type Invoice__c"
    );
    let d = describe(&token, None).json();
    assert!(d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["name"] != "Region__c"));
    // Added again, it starts empty.
    mock.admin("POST", &fields, json!({"name":"Region__c","type":"string"}));
    let r = mock.api(
        &token,
        "GET",
        &format!("{invoices}/{id}?fields=Region__c"),
        Value::Null,
    );
    assert_eq!(r.json()["Region__c"], Value::Null);

    // A reset brings back the default schema.
    mock.admin("POST", &format!("/_admin/reset?account={key}"), Value::Null);
    let (_, token) = mock.login(key);
    let d = describe(&token, None).json();
    assert!(d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["name"] != "Weight__c"));
}

/// An Account and an Invoice__c with every writable field set.
fn full_invoice(mock: &Mock, token: &str) -> (String, String) {
    let r = mock.api(
        token,
        "POST",
        &format!("{V}/sobjects/Account"),
        json!({"Name":"Acme","BillingStreet":"1 Main St","BillingCity":"Springfield","BillingPostalCode":"12345",
               "BillingState":"IL","BillingCountry":"US","NumberOfEmployees":12,"AnnualRevenue":1000.5}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let account = r.json()["id"].as_str().unwrap().to_string();
    let r = mock.api(
        token,
        "POST",
        &format!("{V}/sobjects/Invoice__c"),
        json!({"Name":"INV-1","Amount__c":12.5,"Score__c":33.3,"Tags__c":"Urgent; Gift","Paid__c":true,
               "Quantity__c":3,"Due_Date__c":"2026-03-01","Paid_At__c":"2026-03-01T12:00:00+02:00",
               "Reminder__c":"09:30","Account__c":account,"Code__c":"C-1",
               "Location__Latitude__s":48.8566,"Location__Longitude__s":2.3522,"Attachment__c":"aGVsbG8="}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    (account, r.json()["id"].as_str().unwrap().to_string())
}

#[test]
fn typed_values_in_queries_and_retrieves() {
    let mock = Mock::start();
    let (_, token) = mock.login("sk_test_typed");
    let (account, id) = full_invoice(&mock, &token);
    let expected = json!({
        "Name":"INV-1","Amount__c":12.5,"Score__c":33.3,"Status__c":"Draft","Tags__c":"Urgent;Gift","Paid__c":true,
        "Quantity__c":3,"Due_Date__c":"2026-03-01","Paid_At__c":"2026-03-01T10:00:00.000+0000",
        "Reminder__c":"09:30:00.000Z","Account__c":account,"Total__c":37.5,"Code__c":"C-1",
        "Location__c":{"latitude":48.8566,"longitude":2.3522},
        "Attachment__c":format!("/services/data/v60.0/sobjects/Invoice__c/{id}/Attachment__c"),
        "IsDeleted":false,
    });
    let names: Vec<&String> = expected.as_object().unwrap().keys().collect();
    let soql = format!(
        "SELECT Id, {} FROM Invoice__c",
        names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let q = mock.query(&token, &soql);
    assert_eq!(q.status, 200, "{}", q.body);
    let from_query = q.json()["records"][0].clone();
    let retrieved = mock
        .api(
            &token,
            "GET",
            &format!("{V}/sobjects/Invoice__c/{id}"),
            Value::Null,
        )
        .json();
    for (name, want) in expected.as_object().unwrap() {
        assert_eq!(&from_query[name], want, "query {name}");
        assert_eq!(&retrieved[name], want, "retrieve {name}");
    }
    assert!(from_query["Quantity__c"].is_i64());
    assert!(
        retrieved["Paid_At__c"].is_string()
            && retrieved["CreatedDate"]
                .as_str()
                .unwrap()
                .ends_with("+0000")
    );

    let q = mock.query(
        &token,
        "SELECT BillingAddress, NumberOfEmployees, AnnualRevenue, BillingCity FROM Account",
    );
    assert_eq!(q.status, 200, "{}", q.body);
    let a = &q.json()["records"][0];
    assert_eq!(
        a["BillingAddress"],
        json!({"city":"Springfield","country":"US","geocodeAccuracy":null,"latitude":null,"longitude":null,
               "postalCode":"12345","state":"IL","street":"1 Main St"})
    );
    assert!(a["NumberOfEmployees"].is_i64());
    assert_eq!(a["AnnualRevenue"], 1000.5);

    // A calculated field follows its inputs; null when one is missing.
    let r = mock.api(
        &token,
        "PATCH",
        &format!("{V}/sobjects/Invoice__c/{id}"),
        json!({"Quantity__c":null}),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = mock.api(
        &token,
        "GET",
        &format!("{V}/sobjects/Invoice__c/{id}?fields=Total__c,Location__c"),
        Value::Null,
    );
    assert_eq!(r.json()["Total__c"], Value::Null);
    // Seeds fill the writable custom fields with valid values.
    mock.admin(
        "POST",
        "/_admin/salesforce/Invoice__c/seed?account=sk_test_typed&count=3",
        Value::Null,
    );
    let q = mock.query(&token, "SELECT Name, Status__c, Tags__c, Total__c, Reminder__c, Location__c FROM Invoice__c WHERE SystemModstamp > 2000-01-01T00:00:00Z");
    let records = q.json()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 4);
    assert!(
        records
            .iter()
            .filter(|r| r["Name"].as_str().unwrap().starts_with("Invoice "))
            .all(|r| !r["Total__c"].is_null() && !r["Location__c"].is_null()),
        "{records:?}"
    );
}

#[test]
fn write_validation_by_type() {
    let mock = Mock::start();
    let key = "sk_test_validate";
    let (_, token) = mock.login(key);
    let (_, id) = full_invoice(&mock, &token);
    let invoices = format!("{V}/sobjects/Invoice__c");
    let create = |body: Value| mock.api(&token, "POST", &invoices, body);
    let code = |r: Resp| (r.status, error_code(&r));
    let e = |c: &str| (400, c.to_string());
    for (field, value) in [
        ("Paid__c", json!("yes")),
        ("Quantity__c", json!(1.5)),
        ("Quantity__c", json!("3")),
        ("Amount__c", json!("12")),
        ("Score__c", json!(true)),
        ("Due_Date__c", json!("2026-13-01")),
        ("Paid_At__c", json!("2026-03-01")),
        ("Reminder__c", json!("25:00")),
        ("Name", json!(5)),
    ] {
        let mut body = json!({"Name":"X"});
        body[field] = value;
        assert_eq!(code(create(body)), e("JSON_PARSER_ERROR"), "{field}");
    }
    assert_eq!(
        code(create(json!({"Name":"X","Status__c":"Bogus"}))),
        e("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert_eq!(
        code(create(json!({"Name":"X","Tags__c":"Urgent;Nope"}))),
        e("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert_eq!(
        code(create(json!({"Name":"x".repeat(81)}))),
        e("STRING_TOO_LONG")
    );
    assert_eq!(
        code(create(json!({"Name":"X","Paid__c":null}))),
        e("REQUIRED_FIELD_MISSING")
    );
    assert_eq!(
        code(create(
            json!({"Name":"X","Account__c":"001000000000000AAA"})
        )),
        e("INVALID_CROSS_REFERENCE_KEY")
    );
    assert_eq!(
        code(create(
            json!({"Name":"X","Location__c":{"latitude":1,"longitude":2}})
        )),
        e("INVALID_FIELD_FOR_INSERT_UPDATE")
    );
    let r = create(json!({"Name":"X","Total__c":5}));
    assert_eq!(
        r.json(),
        json!([{"message":"Unable to create/update fields: Total__c. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                "errorCode":"INVALID_FIELD_FOR_INSERT_UPDATE","fields":["Total__c"]}])
    );
    let r = create(json!({"Name":"X","Foo__c":1}));
    assert_eq!(
        r.json()[0]["message"],
        "No such column 'Foo__c' on sobject of type Invoice__c"
    );
    assert_eq!(error_code(&r), "INVALID_FIELD");
    // Code__c: set on create, read-only after.
    let r = mock.api(
        &token,
        "PATCH",
        &format!("{invoices}/{id}"),
        json!({"Code__c":"C-2"}),
    );
    assert_eq!(code(r), e("INVALID_FIELD_FOR_INSERT_UPDATE"));
    let r = mock.api(
        &token,
        "PATCH",
        &format!("{invoices}/{id}"),
        json!({"Status__c":"Paid","Tags__c":"Gift"}),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let contact = mock.api(
        &token,
        "POST",
        &format!("{V}/sobjects/Contact"),
        json!({"LastName":"L","Score__c":"high"}),
    );
    assert_eq!(code(contact), e("JSON_PARSER_ERROR"));

    // sObject Collections and the admin's writes check the same.
    let r = mock.api(
        &token,
        "POST",
        &format!("{V}/composite/sobjects"),
        json!({"allOrNone":false,"records":[
            {"attributes":{"type":"Invoice__c"},"Name":"Ok","Status__c":"Sent"},
            {"attributes":{"type":"Invoice__c"},"Name":"Bad","Status__c":"Bogus"},
            {"attributes":{"type":"Invoice__c"},"Name":"Calc","Total__c":1}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json();
    assert_eq!(out[0]["success"], true);
    assert_eq!(
        out[1]["errors"][0]["statusCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    assert_eq!(
        out[2]["errors"][0]["statusCode"],
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    );
    let r = mock.api(
        &token,
        "POST",
        &format!("{V}/composite/sobjects"),
        json!({"records":[{"attributes":{"type":"Invoice__c"},"Name":"X","Paid__c":"no"}]}),
    );
    assert_eq!(code(r), e("JSON_PARSER_ERROR"));
    let r = mock.admin(
        "POST",
        &format!("/_admin/salesforce/Invoice__c?account={key}"),
        json!({"Name":"X","Quantity__c":2.5}),
    );
    assert_eq!(code(r), e("JSON_PARSER_ERROR"));
    let r = mock.admin(
        "PATCH",
        &format!("/_admin/salesforce/Invoice__c/{id}?account={key}"),
        json!({"Code__c":"C-9"}),
    );
    assert_eq!(code(r), e("INVALID_FIELD_FOR_INSERT_UPDATE"));
}

#[test]
fn collections_retrieve() {
    let mock = Mock::start();
    let (_, token) = mock.login("sk_test_retrieve");
    let invoices = format!("{V}/sobjects/Invoice__c");
    let make = |name: &str| {
        mock.api(
            &token,
            "POST",
            &invoices,
            json!({"Name":name,"Amount__c":2,"Quantity__c":4}),
        )
        .json()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, gone, b) = (make("A"), make("Gone"), make("B"));
    assert_eq!(
        mock.api(&token, "DELETE", &format!("{invoices}/{gone}"), Value::Null)
            .status,
        204
    );
    let url = format!("{V}/composite/sobjects/Invoice__c");
    let r = mock.api(
        &token,
        "POST",
        &url,
        json!({"ids":[b, gone, "bogus", &a[..15]],"fields":["Name","Total__c"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json();
    assert_eq!(
        out,
        json!([
            {"attributes":{"type":"Invoice__c","url":format!("/services/data/v60.0/sobjects/Invoice__c/{b}")},"Id":b,"Name":"B","Total__c":8.0},
            null,
            null,
            {"attributes":{"type":"Invoice__c","url":format!("/services/data/v60.0/sobjects/Invoice__c/{a}")},"Id":a,"Name":"A","Total__c":8.0}
        ])
    );
    let r = mock.api(
        &token,
        "GET",
        &format!("{url}?ids={a},{gone}&fields=Name"),
        Value::Null,
    );
    assert_eq!(
        r.json(),
        json!([{"attributes":{"type":"Invoice__c","url":format!("/services/data/v60.0/sobjects/Invoice__c/{a}")},"Id":a,"Name":"A"}, null])
    );
    let r = mock.api(
        &token,
        "POST",
        &url,
        json!({"ids":[a],"fields":["Name","Foo__c"]}),
    );
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "INVALID_FIELD".to_string())
    );
    let many: Vec<String> = (0..2001).map(|_| a.clone()).collect();
    let r = mock.api(&token, "POST", &url, json!({"ids":many,"fields":["Name"]}));
    assert_eq!(
        (r.status, error_code(&r)),
        (400, "EXCEEDED_ID_LIMIT".to_string())
    );
    // The writes without a type still work next to it.
    let r = mock.api(
        &token,
        "DELETE",
        &format!("{V}/composite/sobjects?ids={a}"),
        Value::Null,
    );
    assert_eq!(r.json()[0]["success"], true);
}

#[test]
fn wide_objects_and_the_url_limit() {
    let mock = Mock::start();
    let key = "sk_test_wide";
    let (_, token) = mock.login(key);
    for t in ["Wide__c", "Narrow__c"] {
        let r = mock.admin(
            "POST",
            &format!("/_admin/salesforce/{t}/seed?account={key}&count=3"),
            Value::Null,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let d = mock
        .api(
            &token,
            "GET",
            &format!("{V}/sobjects/Wide__c/describe"),
            Value::Null,
        )
        .json();
    let custom: Vec<String> = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["name"]
                .as_str()
                .unwrap()
                .starts_with("Custom_Field_Number_")
        })
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(custom.len(), 800);
    assert_eq!(custom[799], "Custom_Field_Number_800__c");
    assert_eq!(described(&d, "Custom_Field_Number_004__c")["type"], "date");

    let all = mock.query(
        &token,
        &format!("SELECT Id, Name, {} FROM Wide__c", custom.join(", ")),
    );
    assert_eq!(all.status, 431);
    assert_eq!(
        all.json(),
        json!([{"errorCode":"REQUEST_HEADER_FIELDS_TOO_LARGE","message":"Request Header Fields Too Large"}])
    );
    let mut rows: Vec<serde_json::Map<String, Value>> = vec![serde_json::Map::new(); 3];
    for part in custom.chunks(200) {
        let q = mock.query(
            &token,
            &format!(
                "SELECT Id, Name, {} FROM Wide__c ORDER BY Id",
                part.join(", ")
            ),
        );
        assert_eq!(q.status, 200, "{}", &q.body[..q.body.len().min(300)]);
        for (row, r) in rows.iter_mut().zip(q.json()["records"].as_array().unwrap()) {
            row.extend(r.as_object().unwrap().clone());
        }
    }
    assert!(
        rows.iter()
            .all(|r| r.len() == 803 && r.values().all(|v| !v.is_null())),
        "every field filled"
    );

    // Narrow__c's k-th field holds Wide__c's k-th field's value, record by record.
    let narrow_fields: Vec<String> = (1..=48)
        .map(|k| format!("Custom_Field_Number_{k:02}__c"))
        .collect();
    let q = mock.query(
        &token,
        &format!(
            "SELECT Name, {} FROM Narrow__c ORDER BY Id",
            narrow_fields.join(", ")
        ),
    );
    assert_eq!(q.status, 200, "{}", q.body);
    for (n, narrow) in q.json()["records"].as_array().unwrap().iter().enumerate() {
        let wide = &rows[n];
        assert_eq!(
            narrow["Name"].as_str().unwrap().replace("Narrow", "Wide"),
            wide["Name"]
        );
        for k in 1..=48 {
            assert_eq!(
                narrow[format!("Custom_Field_Number_{k:02}__c")],
                wide[&format!("Custom_Field_Number_{k:03}__c")]
            );
        }
    }

    // A request-target of a megabyte gets the same answer, not a dropped connection.
    let huge = format!(
        "{V}/query?q=SELECT+Id+FROM+Wide__c+WHERE+Name+%3D+%27{}%27",
        "x".repeat(1 << 20)
    );
    let r = mock.api(&token, "GET", &huge, Value::Null);
    assert_eq!(
        (r.status, error_code(&r)),
        (431, "REQUEST_HEADER_FIELDS_TOO_LARGE".to_string())
    );
    let at_limit = format!(
        "{V}/sobjects/Wide__c/describe?pad={}",
        "p".repeat(16_384 - V.len() - 31)
    );
    assert_eq!(at_limit.len(), 16_384);
    assert_eq!(mock.api(&token, "GET", &at_limit, Value::Null).status, 200);
    assert_eq!(
        mock.api(&token, "GET", &format!("{at_limit}p"), Value::Null)
            .status,
        431
    );
}
