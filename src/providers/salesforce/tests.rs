use super::sync::*;
use super::*;
use crate::schema::{bind, TableColumn};
use Writable::{Always, Never};

/// The mock's fields of the four sObjects 0.1.0 synced: (name, type,
/// createable and updateable).
fn sobject_fields(sobject: &str) -> Vec<(&'static str, &'static str, bool)> {
    let system = [
        ("IsDeleted", "boolean", false),
        ("CreatedDate", "datetime", false),
        ("LastModifiedDate", "datetime", false),
        ("SystemModstamp", "datetime", false),
    ];
    let own: &[(&str, &str, bool)] = match sobject {
        "Account" => &[
            ("Name", "string", true),
            ("Type", "picklist", true),
            ("Industry", "picklist", true),
            ("Phone", "phone", true),
            ("Website", "url", true),
            ("BillingCity", "string", true),
            ("BillingCountry", "string", true),
            ("AnnualRevenue", "currency", true),
            ("NumberOfEmployees", "int", true),
            ("Description", "textarea", true),
        ],
        "Contact" => &[
            ("FirstName", "string", true),
            ("LastName", "string", true),
            ("Name", "string", false),
            ("Email", "email", true),
            ("Phone", "phone", true),
            ("Title", "string", true),
            ("Department", "string", true),
            ("AccountId", "reference", true),
            ("MailingCity", "string", true),
            ("LeadSource", "picklist", true),
        ],
        "Opportunity" => &[
            ("Name", "string", true),
            ("StageName", "picklist", true),
            ("CloseDate", "date", true),
            ("Amount", "currency", true),
            ("Probability", "percent", true),
            ("AccountId", "reference", true),
            ("Type", "picklist", true),
            ("LeadSource", "picklist", true),
            ("Description", "textarea", true),
        ],
        other => panic!("no fixture for {other}"),
    };
    own.iter().copied().chain(system).collect()
}

/// The schema describe gives for one of them.
pub(super) fn described(sobject: &str) -> CollectionSchema {
    let fields: Vec<Value> = std::iter::once(json!({"name": "Id", "type": "id"}))
        .chain(sobject_fields(sobject).into_iter().map(|(name, api_type, writable)| {
            json!({"name": name, "type": api_type, "createable": writable, "updateable": writable, "nillable": true})
        }))
        .collect();
    let body = json!({"name": sobject, "custom": false, "createable": true, "updateable": true, "deletable": true, "fields": fields});
    schema::describe_response(&reply(200, body)).unwrap()
}

/// A table as 0.1.0's IMPORT made it (`contacts`, columns without field
/// options), bound to the describe.
fn collection(table: &str) -> CollectionSpec {
    let sobject = match table {
        "accounts" => "Account",
        "contacts" => "Contact",
        "opportunities" => "Opportunity",
        other => panic!("no fixture for {other}"),
    };
    let schema = described(sobject);
    let columns: Vec<TableColumn> = std::iter::once(("Id", "text"))
        .chain(schema.fields.iter().map(|f| (f.name.as_str(), f.sql_type.as_deref().unwrap_or("text"))))
        .map(|(field, sql_type)| TableColumn {
            name: crate::schema::column_name(field),
            sql_type: if field == "NumberOfEmployees" { "integer".into() } else { sql_type.into() },
            field: None,
        })
        .collect();
    let bound = bind(&schema, &columns);
    assert_eq!(bound.mismatches, []);
    bound.spec
}

fn contacts() -> CollectionSpec {
    collection("contacts")
}

    pub(super) fn reply(status: u16, body: Value) -> ApiResponse {
        ApiResponse { status, headers: vec![], body: serde_json::to_vec(&body).unwrap() }
    }

    fn at(iso: &str) -> i64 {
        parse_datetime(iso).unwrap()
    }

    fn contact(id: &str, stamp: &str) -> Value {
        json!({"attributes": {"type": "Contact", "url": format!("/services/data/v60.0/sobjects/Contact/{id}")},
               "Id": id, "FirstName": "Ann", "LastName": "Lee", "Name": "Ann Lee", "Email": "ann@example.com",
               "Phone": null, "Title": "", "AccountId": null, "IsDeleted": false,
               "CreatedDate": "2026-01-01T00:00:00.000+0000", "LastModifiedDate": stamp, "SystemModstamp": stamp})
    }

    fn page(records: Vec<Value>, next: Option<&str>) -> ApiResponse {
        let mut body = json!({"totalSize": 4500, "done": next.is_none(), "records": records});
        if let Some(next) = next {
            body["nextRecordsUrl"] = json!(next);
        }
        reply(200, body)
    }

    fn text(name: &str, value: &str) -> (String, WriteValue) {
        (name.to_string(), WriteValue::Text(value.into()))
    }

    const CONTACT_FIELDS: &str = "Id,FirstName,LastName,Name,Email,Phone,Title,Department,AccountId,MailingCity,\
                                  LeadSource,IsDeleted,CreatedDate,LastModifiedDate,SystemModstamp";

    fn field_list(spec: &CollectionSpec) -> String {
        let query = sync_request_at(spec, &json!({}), 0).path;
        let soql = query.split("q=").nth(1).unwrap().to_string();
        soql.strip_prefix("SELECT+").unwrap().split('+').next().unwrap().to_string()
    }

    #[test]
    fn tables_of_0_1_0_bind_their_columns_to_the_described_fields() {
        assert_eq!(field_list(&contacts()), CONTACT_FIELDS);
        let spec = collection("opportunities");
        for system in ["is_deleted", "created_date", "last_modified_date", "system_modstamp"] {
            assert_eq!(spec.column(system).unwrap().writable, Never, "{system}");
        }
        assert!(WriteOp::ALL.iter().all(|op| spec.writes.contains(op)));
        assert_eq!(spec.column("close_date").unwrap().field, "CloseDate");
        assert_eq!(contacts().column("name").unwrap().writable, Never);
        assert_eq!(collection("accounts").column("name").unwrap().writable, Always);
        assert_eq!(collection("accounts").column("number_of_employees").unwrap().field, "NumberOfEmployees");
        assert_eq!(Salesforce.statement_limit(WriteOp::Insert), 200);
        assert!(WriteOp::ALL.iter().all(|op| Salesforce.batch_limit(*op) == 200));
        assert_eq!(Salesforce.auth_headers("tok"), vec![("Authorization".to_string(), "Bearer tok".to_string())]);
        assert!(super::super::by_name("salesforce").is_some());
    }

    #[test]
    fn times_and_dates_convert() {
        assert_eq!(at("2026-01-01T00:00:00.000+0000"), 1_767_225_600_000_000);
        assert_eq!(at("2026-01-01T00:00:00Z"), 1_767_225_600_000_000);
        assert_eq!(at("2026-01-01T02:00:00.5+02:00"), 1_767_225_600_500_000);
        assert_eq!(at("2025-12-31T23:00:00.123-0100"), 1_767_225_600_123_000);
        assert_eq!(parse_datetime("2026-01-01"), None);
        assert_eq!(parse_datetime("2026-13-01T00:00:00Z"), None);
        assert_eq!(iso_ms(1_767_225_600_123_456), "2026-01-01T00:00:00.123Z");
        assert_eq!(deleted_bound(1_767_225_659_999_999), "2026-01-01T00:00:59+00:00");

        let mut opportunity = json!({"attributes": {"type": "Opportunity"}, "Id": "0065g00000000001AAA",
            "Name": "Big", "CloseDate": "2026-12-31", "Amount": 1000.0, "SystemModstamp": "2026-01-01T00:00:00.000+0000",
            "CreatedDate": "2026-01-01T00:00:00.000+0000"});
        let record = record_from_sobject(&collection("opportunities"), &opportunity, 7).unwrap();
        assert_eq!(record.columns["close_date"], json!("2026-12-31"));
        assert_eq!(record.columns["amount"], json!(1000.0));
        assert_eq!(record.columns["created_date"], json!("2026-01-01T00:00:00.000000Z"));
        assert_eq!(record.columns["system_modstamp"], json!("2026-01-01T00:00:00.000000Z"));
        assert!(record.raw.get("attributes").is_none());
        assert_eq!(record.raw["SystemModstamp"], json!("2026-01-01T00:00:00.000+0000"));
        opportunity["NumberOfEmployees"] = json!(50.0);
        let account = record_from_sobject(&collection("accounts"), &opportunity, 7).unwrap();
        assert_eq!(account.columns["number_of_employees"], json!(50));
    }

    #[test]
    fn the_backfill_queries_every_field_ordered_by_systemmodstamp() {
        let spec = &contacts();
        for cursor in [json!({}), json!({"phase": "backfill"})] {
            let request = sync_request_at(spec, &cursor, 0);
            assert_eq!(request.method, Method::Get);
            assert_eq!(
                request.path,
                format!("/services/data/v60.0/query?q=SELECT+{CONTACT_FIELDS}+FROM+Contact+ORDER+BY+SystemModstamp,+Id")
            );
        }
    }

    #[test]
    fn backfill_pages_follow_next_records_url_then_switch_to_incremental() {
        let spec = &contacts();
        let started = at("2026-03-01T12:00:00.000Z") + 456;
        let next = "/services/data/v60.0/query/01gA-2000";
        let body = page(vec![contact("003A", "2026-01-01T00:00:00.000+0000"), contact("003B", "2026-03-01T12:00:05.000+0000")], Some(next));
        let first = Salesforce.sync_response(spec, &json!({"phase": "backfill"}), &body, started).unwrap();
        assert_eq!(
            first.cursor,
            json!({"phase": "backfill", "started": "2026-03-01T12:00:00.000Z", "last": "2026-03-01T12:00:05.000Z",
                   "next": next, "next_at": "2026-03-01T12:00:00.000Z"})
        );
        assert_eq!(first.phase, Phase::Backfill);
        // A record's version is its SystemModstamp.
        assert_eq!(first.records[0].version_us, at("2026-01-01T00:00:00.000Z"));
        assert_eq!(first.records[1].version_us, at("2026-03-01T12:00:05.000Z"));
        assert_eq!(first.records[0].columns["first_name"], json!("Ann"));
        assert_eq!(first.records[0].columns["title"], Value::Null);

        // The next page is the locator's path, fetched as it is.
        let later = started + 2_000_000;
        assert_eq!(sync_request_at(spec, &first.cursor, later).path, next);
        let last = page(vec![contact("003C", "2026-02-01T00:00:00.000+0000")], None);
        let done = Salesforce.sync_response(spec, &first.cursor, &last, later).unwrap();
        assert_eq!(done.phase, Phase::Incremental);
        assert!(done.more);
        assert_eq!(
            done.cursor,
            json!({"phase": "incremental", "since": "2026-03-01T12:00:00.000Z", "deleted_from": "2026-03-01T12:00:00.000Z"})
        );
        assert_eq!(done.records[0].version_us, at("2026-02-01T00:00:00.000Z"));
    }

    #[test]
    fn a_stale_locator_is_replaced_by_the_query_from_where_the_cursor_is() {
        let spec = &contacts();
        let cursor = json!({"phase": "backfill", "started": "2026-03-01T12:00:00.000Z", "last": "2026-03-01T12:00:05.000Z",
                            "next": "/services/data/v60.0/query/01gA-2000", "next_at": "2026-03-01T12:00:00.000Z"});
        let now = at("2026-03-01T12:01:00.001Z");
        let path = sync_request_at(spec, &cursor, now).path;
        assert!(path.ends_with("+FROM+Contact+WHERE+SystemModstamp+%3E%3D+2026-03-01T12%3A00%3A05.000Z+ORDER+BY+SystemModstamp,+Id"), "{path}");
        let incremental = json!({"phase": "incremental", "since": "2026-03-01T12:00:40.000Z", "deleted_from": "2026-03-01T12:00:00.000Z",
                                 "next": "/services/data/v60.0/query/01gB-2000", "next_at": "2026-03-01T12:00:00.000Z"});
        let path = sync_request_at(spec, &incremental, now).path;
        assert!(path.contains("+WHERE+SystemModstamp+%3E+2026-03-01T12%3A00%3A10.000Z+"), "{path}");
        // A refused locator fails the page (not a backfill); its retry runs the query.
        let error = SequinError { api_code: Some("INVALID_QUERY_LOCATOR".into()), ..SequinError::new(ErrorKind::Validation, "x") };
        assert_eq!(Salesforce.cursor_expired(spec, &incremental, &error), None);
        assert_eq!(Salesforce.cursor_expired(spec, &cursor, &error), None);
    }

    #[test]
    fn incremental_reads_back_a_lookback_window_and_then_the_deletions() {
        let spec = &contacts();
        let cursor = json!({"phase": "incremental", "since": "2026-03-01T12:00:40.000Z", "deleted_from": "2026-03-01T12:00:00.000Z"});
        let path = sync_request_at(spec, &cursor, 0).path;
        assert_eq!(
            path,
            format!("/services/data/v60.0/query?q=SELECT+{CONTACT_FIELDS}+FROM+Contact+WHERE+SystemModstamp+%3E+\
                     2026-03-01T12%3A00%3A10.000Z+ORDER+BY+SystemModstamp,+Id")
        );
        let now = at("2026-03-01T12:05:00.000Z");
        let body = page(vec![contact("003A", "2026-03-01T12:00:30.000+0000"), contact("003B", "2026-03-01T12:04:00.000+0000")], Some("/services/data/v60.0/query/01gC-2000"));
        let first = Salesforce.sync_response(spec, &cursor, &body, now).unwrap();
        assert_eq!(first.records[0].version_us, at("2026-03-01T12:00:30.000Z"));
        assert_eq!(first.cursor["since"], json!("2026-03-01T12:04:00.000Z"));
        assert_eq!(first.cursor["next"], json!("/services/data/v60.0/query/01gC-2000"));
        assert!(first.more && first.phase == Phase::Incremental);
        // An older record on a later page never moves `since` back.
        let last = page(vec![contact("003C", "2026-03-01T12:03:00.000+0000")], None);
        let done = Salesforce.sync_response(spec, &first.cursor, &last, now + 1000).unwrap();
        assert_eq!(
            done.cursor,
            json!({"phase": "incremental", "since": "2026-03-01T12:04:00.000Z", "deleted_from": "2026-03-01T12:00:00.000Z",
                   "deleted_to": "2026-03-01T12:05:00.001Z"})
        );
        assert!(done.more);

        let request = sync_request_at(spec, &done.cursor, 0);
        assert_eq!(
            request.path,
            "/services/data/v60.0/sobjects/Contact/deleted/?start=2026-03-01T12%3A00%3A00%2B00%3A00&end=2026-03-01T12%3A05%3A00%2B00%3A00"
        );
        let deleted = reply(200, json!({"deletedRecords": [{"id": "003A", "deletedDate": "2026-03-01T12:01:02.000+0000"}],
                                        "earliestDateAvailable": "2026-02-14T12:00:00.000+0000",
                                        "latestDateCovered": "2026-03-01T12:05:00.000+0000"}));
        let gone = Salesforce.sync_response(spec, &done.cursor, &deleted, now).unwrap();
        assert_eq!(gone.records, vec![Record::gone("003A", at("2026-03-01T12:01:02Z"))]);
        assert_eq!(
            gone.cursor,
            json!({"phase": "incremental", "since": "2026-03-01T12:04:00.000Z", "deleted_from": "2026-03-01T12:05:00.000Z"})
        );
        assert!(!gone.more && gone.phase == Phase::Incremental);

        // The end is always more than a minute after the start.
        let soon = json!({"phase": "incremental", "since": "2026-03-01T12:05:00.000Z", "deleted_from": "2026-03-01T12:05:00.000Z",
                          "deleted_to": "2026-03-01T12:05:20.000Z"});
        assert!(sync_request_at(spec, &soon, 0).path.ends_with("&end=2026-03-01T12%3A07%3A00%2B00%3A00"));
    }

    #[test]
    fn a_deleted_check_older_than_15_days_has_expired() {
        let spec = &contacts();
        let refusal = |code: &str| SequinError { api_code: Some(code.into()), ..SequinError::new(ErrorKind::Validation, "x") };
        let deleting = json!({"phase": "incremental", "since": "2026-03-01T12:00:00.000Z", "deleted_from": "2026-02-01T00:00:00.000Z",
                              "deleted_to": "2026-03-01T12:00:00.000Z"});
        assert_eq!(
            Salesforce.cursor_expired(spec, &deleting, &refusal("INVALID_REPLICATION_DATE")).as_deref(),
            Some("Salesforce keeps deleted records for 15 days and the sync's last check (2026-02-01T00:00:00.000Z) is older; starting a new backfill")
        );
        assert_eq!(Salesforce.cursor_expired(spec, &deleting, &refusal("UNKNOWN_EXCEPTION")), None);
        let querying = json!({"phase": "incremental", "since": "2026-03-01T12:00:00.000Z", "deleted_from": "2026-02-01T00:00:00.000Z"});
        assert_eq!(Salesforce.cursor_expired(spec, &querying, &refusal("INVALID_REPLICATION_DATE")), None);
        assert_eq!(Salesforce.cursor_expired(spec, &json!({}), &refusal("INVALID_REPLICATION_DATE")), None);
    }

    #[test]
    fn the_org_comes_from_the_token_replys_identity_url() {
        let org = |id: Value| Salesforce.account_from_token_reply(&json!({"access_token": "00Dx!secret", "id": id}));
        assert_eq!(
            org(json!("https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS")).as_deref(),
            Some("00Dxx0000001gPLEAY")
        );
        assert_eq!(org(json!("http://127.0.0.1:8080/id/00D000000000001AAA/005000000000001AAA/")).as_deref(), Some("00D000000000001AAA"));
        for wrong in [json!(null), json!(42), json!("https://x/id/005xx/00Dxx"), json!("https://x/services/00Dxx/005xx"), json!("00Dxx")] {
            assert_eq!(org(wrong), None);
        }
        assert_eq!(Salesforce.account_from_token_reply(&json!({"access_token": "t"})), None);
        // No request of its own: the org is known from the token reply.
        assert_eq!(Salesforce.account_request(), None);
    }

    #[test]
    fn errors_map_salesforce_codes() {
        let error = |status: u16, code: &str, fields: Value| {
            Salesforce.error(&reply(status, json!([{"message": "m", "errorCode": code, "fields": fields}])))
        };
        let kind = |status: u16, code: &str| error(status, code, json!([])).kind;
        assert_eq!(kind(400, "DUPLICATES_DETECTED"), ErrorKind::Conflict);
        for code in [
            "REQUIRED_FIELD_MISSING",
            "INVALID_EMAIL_ADDRESS",
            "STRING_TOO_LONG",
            "FIELD_INTEGRITY_EXCEPTION",
            "INVALID_FIELD",
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "INVALID_CROSS_REFERENCE_KEY",
            "INVALID_TYPE",
            "MALFORMED_ID",
            "JSON_PARSER_ERROR",
        ] {
            assert_eq!(kind(400, code), ErrorKind::Validation, "{code}");
        }
        assert_eq!(kind(401, "INVALID_SESSION_ID"), ErrorKind::Unauthorized);
        assert_eq!(kind(403, "REQUEST_LIMIT_EXCEEDED"), ErrorKind::RateLimited);
        assert_eq!(kind(404, "NOT_FOUND"), ErrorKind::NotFound);
        assert_eq!(kind(404, "ENTITY_IS_DELETED"), ErrorKind::NotFound);
        assert_eq!(kind(500, "UNKNOWN_EXCEPTION"), ErrorKind::Upstream);
        assert_eq!(kind(405, "METHOD_NOT_ALLOWED"), ErrorKind::Upstream);

        let body = json!([{"message": "Email: invalid email address: andrea__invalid", "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}]);
        let invalid = Salesforce.error(&reply(400, body));
        assert_eq!(invalid.message, "Email: invalid email address: andrea__invalid");
        assert_eq!(invalid.code.as_deref(), Some("INVALID_EMAIL_ADDRESS"));
        assert_eq!(invalid.field.as_deref(), Some("Email"));
        let request = Salesforce.fetch_request(&contacts(), "003A", None);
        let user_error = invalid.into_error("Salesforce", &request);
        assert_eq!(user_error.message, "[Salesforce]: Email: invalid email address: andrea__invalid");
        assert_eq!(
            user_error.detail.as_deref(),
            Some("HTTP 400 on GET /services/data/v60.0/sobjects/Contact/003A, code INVALID_EMAIL_ADDRESS, field \"Email\"")
        );
        assert_eq!(error(400, "REQUIRED_FIELD_MISSING", json!(["LastName", "Company"])).field.as_deref(), Some("LastName, Company"));
        assert_eq!(Salesforce.error(&reply(400, json!([{"message": "x", "errorCode": "INVALID_FIELD"}]))).field, None);
        let oauth = Salesforce.error(&reply(400, json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})));
        assert_eq!((oauth.kind, oauth.message.as_str()), (ErrorKind::Validation, "expired access/refresh token"));
        assert_eq!(oauth.code.as_deref(), Some("invalid_grant"));
        let html = Salesforce.error(&ApiResponse { status: 502, headers: vec![], body: b"<html>".to_vec() });
        assert_eq!((html.kind, html.message.as_str()), (ErrorKind::Upstream, "HTTP 502 with a reply that is not JSON"));
    }

    #[test]
    fn the_daily_limit_pauses_the_server() {
        let limited = reply(403, json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]));
        assert_eq!(Salesforce.rate_limit_pause(&limited), Some(Duration::from_secs(60)));
        let forbidden = reply(403, json!([{"message": "no", "errorCode": "INSUFFICIENT_ACCESS"}]));
        assert_eq!(Salesforce.rate_limit_pause(&forbidden), None);
        assert_eq!(Salesforce.rate_limit_pause(&reply(200, json!({}))), None);
        let mut faulted = reply(429, json!({}));
        faulted.headers.push(("retry-after".into(), "2".into()));
        assert_eq!(Salesforce.rate_limit_pause(&faulted), Some(Duration::from_secs(2)));
    }

    fn insert_rows() -> Vec<BatchRow> {
        vec![
            BatchRow {
                id: None,
                row: vec![text("last_name", "Lee"), ("first_name".into(), WriteValue::Null), text("email", "ann@example.com")],
                old: None,
            },
            BatchRow { id: None, row: vec![text("last_name", "Ng")], old: None },
        ]
    }

    #[test]
    fn inserts_are_one_all_or_none_collection_request() {
        let request = Salesforce.batch_request(&contacts(), WriteOp::Insert, &insert_rows()).unwrap();
        assert_eq!((request.method, request.path.as_str()), (Method::Post, "/services/data/v60.0/composite/sobjects"));
        assert_eq!(
            request.body,
            Some(Body::Json(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Contact"}, "LastName": "Lee", "Email": "ann@example.com"},
                {"attributes": {"type": "Contact"}, "LastName": "Ng"},
            ]})))
        );
        let numbers = vec![BatchRow {
            id: None,
            row: vec![text("name", "Big"), text("close_date", "2026-12-31"), ("amount".into(), WriteValue::Json(json!(1500.5)))],
            old: None,
        }];
        let request = Salesforce.batch_request(&collection("opportunities"), WriteOp::Insert, &numbers).unwrap();
        assert_eq!(
            request.body,
            Some(Body::Json(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Opportunity"}, "Name": "Big", "CloseDate": "2026-12-31", "Amount": 1500.5}]})))
        );
    }

    #[test]
    fn updates_send_the_id_and_the_set_columns_with_nulls_and_deletes_send_ids() {
        let rows = vec![BatchRow {
            id: Some("003A".into()),
            row: vec![text("title", "VP"), ("phone".into(), WriteValue::Null)],
            old: None,
        }];
        let request = Salesforce.batch_request(&contacts(), WriteOp::Update, &rows).unwrap();
        assert_eq!((request.method, request.path.as_str()), (Method::Patch, "/services/data/v60.0/composite/sobjects"));
        assert_eq!(
            request.body,
            Some(Body::Json(json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Contact"}, "id": "003A", "Title": "VP", "Phone": null}]})))
        );
        let ids = ["003A", "003B"].map(|id| BatchRow { id: Some(id.into()), row: vec![], old: None });
        let request = Salesforce.batch_request(&contacts(), WriteOp::Delete, &ids).unwrap();
        assert_eq!(request.method, Method::Delete);
        assert_eq!(request.path, "/services/data/v60.0/composite/sobjects?ids=003A,003B&allOrNone=true");
        assert_eq!(request.body, None);
    }

    #[test]
    fn read_only_and_unknown_columns_are_refused_before_any_request() {
        let rows = |row: WriteRow| vec![BatchRow { id: Some("003A".into()), row, old: None }];
        let error = Salesforce.batch_request(&contacts(), WriteOp::Update, &rows(vec![text("system_modstamp", "2026-01-01")])).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
        assert_eq!(error.message, "column \"system_modstamp\" of Salesforce Contact cannot be set by UPDATE");
        assert_eq!(error.detail.as_deref(), Some("Salesforce says field SystemModstamp is not updateable (describe)."));
        assert!(error.hint.unwrap().starts_with("Columns an UPDATE may set: first_name, last_name, email,"));
        let error = Salesforce.batch_request(&contacts(), WriteOp::Insert, &rows(vec![text("name", "Ann Lee")])).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
        let error = Salesforce.batch_request(&contacts(), WriteOp::Insert, &rows(vec![text("nickname", "A")])).unwrap_err();
        assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
        // An INSERT's unset columns (nulls) are not sent, so never refused.
        let implicit = vec![("id".to_string(), WriteValue::Null), text("last_name", "Lee")];
        assert!(Salesforce.batch_request(&contacts(), WriteOp::Insert, &rows(implicit)).is_ok());
    }

    #[test]
    fn a_successful_batch_applies_what_was_sent() {
        let ok = |id: &str| json!({"id": id, "success": true, "errors": []});
        let inserted = Salesforce
            .batch_response(&contacts(), WriteOp::Insert, &insert_rows(), &reply(200, json!([ok("003A"), ok("003B")])), 9)
            .unwrap();
        assert_eq!(inserted.len(), 2);
        assert_eq!((inserted[0].id.as_str(), inserted[0].version_us, inserted[0].deleted), ("003A", 0, false));
        assert_eq!(inserted[0].raw, json!({"Id": "003A", "LastName": "Lee", "Email": "ann@example.com"}));
        assert_eq!(inserted[0].columns["last_name"], json!("Lee"));
        assert_eq!(inserted[1].columns["last_name"], json!("Ng"));

        let old = contact("003A", "2026-01-01T00:00:00.000+0000");
        let mut old_raw = old.clone();
        old_raw.as_object_mut().unwrap().remove("attributes");
        let rows = vec![BatchRow {
            id: Some("003A".into()),
            row: vec![text("title", "VP"), ("email".into(), WriteValue::Null)],
            old: Some((old_raw, 42)),
        }];
        let updated = Salesforce.batch_response(&contacts(), WriteOp::Update, &rows, &reply(200, json!([ok("003A")])), 9).unwrap();
        assert_eq!(updated[0].version_us, 42);
        assert_eq!(updated[0].raw["Title"], json!("VP"));
        assert_eq!(updated[0].raw["Email"], Value::Null);
        assert_eq!(updated[0].raw["LastName"], json!("Lee"));
        assert_eq!(updated[0].columns["title"], json!("VP"));
        assert_eq!(updated[0].columns["first_name"], json!("Ann"));
        assert_eq!(updated[0].columns["system_modstamp"], json!("2026-01-01T00:00:00.000000Z"));

        let ids = ["003A", "003B"].map(|id| BatchRow { id: Some(id.into()), row: vec![], old: None });
        let deleted = Salesforce.batch_response(&contacts(), WriteOp::Delete, &ids, &reply(200, json!([ok("003A"), ok("003B")])), 9).unwrap();
        assert_eq!(deleted, vec![Record::gone("003A", 9), Record::gone("003B", 9)]);
        // Not one result per row: unparseable.
        let short = Salesforce.batch_response(&contacts(), WriteOp::Delete, &ids, &reply(200, json!([ok("003A")])), 9).unwrap_err();
        assert_eq!(short.error.kind, ErrorKind::Upstream);
    }

    #[test]
    fn a_refused_batch_names_the_first_row_at_fault() {
        let rolled_back = json!({"success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []}]});
        let refused = |code: &str, message: &str, fields: Value| {
            json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]})
        };
        let body = json!([
            rolled_back,
            refused("DUPLICATES_DETECTED", "Use one of these records?", json!([])),
            refused("INVALID_EMAIL_ADDRESS", "Email: invalid email address: x", json!(["Email"])),
        ]);
        let rows = vec![insert_rows()[1].clone(), insert_rows()[1].clone(), insert_rows()[1].clone()];
        let refusal = Salesforce.batch_response(&contacts(), WriteOp::Insert, &rows, &reply(200, body), 0).unwrap_err();
        assert_eq!(refusal.position, 1);
        assert_eq!(refusal.error.kind, ErrorKind::Conflict);
        assert_eq!(refusal.error.message, "Use one of these records?");
        assert_eq!(refusal.error.code.as_deref(), Some("DUPLICATES_DETECTED"));
        assert_eq!(refusal.error.field, None);

        let body = json!([rolled_back, refused("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", json!(["LastName"]))]);
        let refusal = Salesforce.batch_response(&contacts(), WriteOp::Insert, &rows[..2], &reply(200, body), 0).unwrap_err();
        assert_eq!((refusal.position, refusal.error.kind), (1, ErrorKind::Validation));
        assert_eq!(refusal.error.field.as_deref(), Some("LastName"));
    }

    #[test]
    fn single_row_writes_are_one_row_batches_and_deletes_the_record_endpoint() {
        let spec = &contacts();
        let create = Salesforce.create_request(spec, &vec![text("last_name", "Lee")]).unwrap();
        assert_eq!(create.path, "/services/data/v60.0/composite/sobjects");
        let record = Salesforce.write_response(spec, None, &reply(200, json!([{"id": "003A", "success": true, "errors": []}])), 5).unwrap();
        assert_eq!((record.id.as_str(), record.version_us, record.deleted), ("003A", 0, false));
        let update = Salesforce.update_request(spec, "003A", &vec![text("title", "VP")], None).unwrap();
        assert_eq!(update.method, Method::Patch);
        let refused = json!([{"success": false, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}]);
        assert_eq!(Salesforce.write_response(spec, Some("003A"), &reply(200, refused), 5).unwrap_err().kind, ErrorKind::NotFound);
        let delete = Salesforce.delete_request(spec, "003A", None);
        assert_eq!((delete.method, delete.path.as_str()), (Method::Delete, "/services/data/v60.0/sobjects/Contact/003A"));
        let gone = Salesforce.write_response(spec, Some("003A"), &ApiResponse { status: 204, headers: vec![], body: vec![] }, 5).unwrap();
        assert_eq!(gone, Record::gone("003A", 5));
    }

    #[test]
    fn several_records_are_read_back_with_one_query() {
        let spec = &contacts();
        let request = Salesforce.fetch_many_request(spec, &["003A", "003B"]).unwrap();
        assert_eq!(
            request.path,
            format!("/services/data/v60.0/query?q=SELECT+{CONTACT_FIELDS}+FROM+Contact+WHERE+Id+IN+%28%27003A%27,%27003B%27%29")
        );
        let body = page(vec![contact("003B", "2026-01-02T00:00:00.000+0000"), contact("003A", "2026-01-01T00:00:00.000+0000")], None);
        let records = Salesforce.fetch_many_response(spec, &body).unwrap();
        assert_eq!(records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["003B", "003A"]);
        assert_eq!(records[1].version_us, at("2026-01-01T00:00:00.000Z"));
    }

    #[test]
    fn fetch_reads_one_record_with_the_synced_fields() {
        let request = Salesforce.fetch_request(&contacts(), "003A", None);
        assert_eq!(request.path, format!("/services/data/v60.0/sobjects/Contact/003A?fields={CONTACT_FIELDS}"));
        let record = Salesforce.fetch_response(&contacts(), "003A", &reply(200, contact("003A", "2026-01-02T00:00:00.000+0000")), 0).unwrap();
        assert_eq!(record.version_us, at("2026-01-02T00:00:00Z"));
        assert_eq!(record.columns["last_modified_date"], json!("2026-01-02T00:00:00.000000Z"));
        assert!(Salesforce.fetch_response(&contacts(), "003B", &reply(200, contact("003A", "2026-01-02T00:00:00.000+0000")), 0).is_err());
    }

    #[test]
    fn a_request_reply_applies_whole_records_of_synced_types() {
        let mut whole = contact("003A", "2026-01-02T00:00:00.000+0000");
        for field in ["Department", "MailingCity", "LeadSource"] {
            whole[field] = Value::Null;
        }
        // One record (GET …/sobjects/Contact/003A) or a query's page.
        let found = records_in_reply(&Salesforce, &whole, 0);
        assert_eq!(found.len(), 1);
        let (spec, record) = &found[0];
        assert_eq!((spec.as_str(), record.id.as_str()), ("Contact", "003A"));
        assert_eq!(record.version_us, at("2026-01-02T00:00:00Z"));
        assert_eq!(record.raw.get("attributes"), None);
        let page = json!({"totalSize": 2, "done": true, "records": [whole.clone(), contact("003B", "2026-01-02T00:00:00.000+0000")]});
        let found = records_in_reply(&Salesforce, &page, 0);
        assert_eq!(found.iter().map(|(_, r)| r.id.as_str()).collect::<Vec<_>>(), vec!["003A", "003B"]);
        // 003B lacks fields the table syncs: a partial record is not applied.
        assert!(Salesforce.whole_record(&contacts(), &found[0].1.raw));
        assert!(!Salesforce.whole_record(&contacts(), &found[1].1.raw));
        // Any sObject type is a record (the tables of its collection take
        // it); write replies and records without SystemModstamp are not.
        let mut user = whole.clone();
        user["attributes"]["type"] = json!("User");
        assert_eq!(records_in_reply(&Salesforce, &user, 0)[0].0, "User");
        let mut unstamped = whole.clone();
        unstamped.as_object_mut().unwrap().remove("SystemModstamp");
        for reply in [unstamped, json!({"id": "003A", "success": true, "errors": []}), json!([{"id": "003A", "success": true}])] {
            assert!(records_in_reply(&Salesforce, &reply, 0).is_empty(), "{reply}");
        }
        // Bodies are JSON, sent as given; there is no idempotency key.
        assert_eq!(Salesforce.request_body(&json!({"LastName": "Lee"})).unwrap(), Body::Json(json!({"LastName": "Lee"})));
        assert_eq!(Salesforce.idempotency_key(Method::Post), None);
    }

    #[test]
    fn single_record_writes_name_what_they_changed() {
        let id = "003000000000001AAA";
        let request = |method: Method, path: &str| ApiRequest { method, ..ApiRequest::get(path) };
        let no_content = ApiResponse { status: 204, headers: vec![], body: vec![] };
        let touched = |method, path: &str, response: &ApiResponse| Salesforce.records_touched(&request(method, path), response, 7);
        assert_eq!(
            touched(Method::Delete, &format!("/services/data/v60.0/sobjects/Contact/{id}"), &no_content),
            vec![Touched::Gone("Contact".into(), Record::gone(id, 7))]
        );
        assert_eq!(
            touched(Method::Patch, &format!("/services/data/v58.0/sobjects/Contact/{id}?x=1"), &no_content),
            vec![Touched::Changed("Contact".into(), id.to_string())]
        );
        let created = reply(201, json!({"id": id, "success": true, "errors": []}));
        assert_eq!(
            touched(Method::Post, "/services/data/v60.0/sobjects/Contact", &created),
            vec![Touched::Changed("Contact".into(), id.to_string())]
        );
        // Any type: the tables of its collection take it.
        assert_eq!(
            touched(Method::Delete, &format!("/services/data/v60.0/sobjects/User/{id}"), &no_content),
            vec![Touched::Gone("User".into(), Record::gone(id, 7))]
        );
        // A 15-character id, other routes: nothing.
        for (method, path) in [
            (Method::Delete, "/services/data/v60.0/sobjects/Contact/003000000000001".to_string()),
            (Method::Get, format!("/services/data/v60.0/sobjects/Contact/{id}")),
            (Method::Patch, format!("/services/data/v60.0/sobjects/Contact/Email/{id}")),
            (Method::Delete, format!("/services/data/v60.0/composite/sobjects?ids={id}")),
            (Method::Delete, format!("/other/sobjects/Contact/{id}")),
        ] {
            assert!(touched(method, &path, &no_content).is_empty(), "{method:?} {path}");
        }
    }
