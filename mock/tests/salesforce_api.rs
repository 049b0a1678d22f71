//! The Salesforce subset over real HTTP: starts the `sequin-mock` binary and
//! talks HTTP/1.1 to it, the way the extension does.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

struct Mock {
    child: Child,
    addr: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

const V: &str = "/services/data/v60.0";

impl Mock {
    fn start() -> Mock {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sequin-mock"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sequin-mock");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("sequin-mock listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Mock {
            child,
            addr: url.trim_start_matches("http://").to_string(),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no response: {text:?}"));
        let mut lines = head.lines();
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn admin(&self, method: &str, path: &str, body: Value) -> Resp {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.request(method, path, &[("Content-Type", "application/json")], &body)
    }

    /// A Salesforce API call with a Bearer token and a JSON body.
    fn api(&self, token: &str, method: &str, path: &str, body: Value) -> Resp {
        let auth = format!("Bearer {token}");
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &body,
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
