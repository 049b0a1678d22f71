use super::sync::*;
use super::*;
use crate::schema::imported_spec;

fn spec(name: &str) -> CollectionSpec {
    let schema = Github.compiled_collections().into_iter().find(|c| c.name == name).unwrap();
    let mut spec = imported_spec(&schema);
    spec.settings = vec![("repository".into(), "octo/hello".into()), ("close_reason".into(), "not_planned".into())];
    spec
}

fn reply(status: u16, headers: &[(&str, &str)], body: Value) -> ApiResponse {
    ApiResponse {
        status,
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        body: if body.is_null() { vec![] } else { body.to_string().into_bytes() },
    }
}

fn issue(id: i64, number: i64, updated: &str, pull_request: bool) -> Value {
    let mut item = json!({
        "id": id, "number": number, "title": format!("Issue {number}"), "body": "text", "state": "open",
        "state_reason": null, "labels": [{"name": "bug"}, {"name": "ui"}], "assignees": [{"login": "ann"}],
        "milestone": {"number": 3}, "user": {"login": "bob"}, "locked": false, "comments": 2,
        "html_url": format!("https://github.com/octo/hello/issues/{number}"),
        "repository_url": "https://api.github.com/repos/octo/hello",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": updated, "closed_at": null,
    });
    if pull_request {
        item["pull_request"] = json!({"url": "u", "merged_at": "2026-01-02T00:00:00Z"});
        item["draft"] = json!(false);
    }
    item
}

const NOW: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

#[test]
fn settings_need_one_repository_and_a_known_close_reason() {
    let s = |pairs: &[(&str, &str)]| pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>();
    assert!(Github.check_settings(&s(&[("repository", "octo/hello")]), true).is_ok());
    assert!(Github.check_settings(&s(&[]), true).unwrap_err().message.contains("needs the option repository"));
    for bad in ["octo", "octo/", "/hello", "octo/hello/x", "octo/..", "oc to/hello", "octo/hé"] {
        assert!(Github.check_settings(&s(&[("repository", bad)]), true).is_err(), "{bad}");
    }
    assert!(Github.check_settings(&s(&[("close_reason", "not_planned")]), false).is_ok());
    assert!(Github.check_settings(&s(&[("close_reason", "wontfix")]), false).is_err());
    let names: Vec<(String, String)> = Github.fixed_headers();
    assert!(names.contains(&("X-GitHub-Api-Version".into(), "2022-11-28".into())));
    assert!(names.contains(&("Accept".into(), "application/vnd.github+json".into())));
    assert!(names.iter().any(|(n, v)| n == "User-Agent" && v.starts_with("sequin_fdw/")));
    assert_eq!(Github.write_spacing(), Some(Duration::from_secs(1)));
    assert_eq!(Github.statement_limit(WriteOp::Insert), 100);
}

#[test]
fn link_headers_give_the_next_page_as_a_path() {
    let link = r#"<https://api.github.com/repositories/1/issues?state=all&page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
    assert_eq!(next_link(&reply(200, &[("link", link)], json!([]))).as_deref(), Some("/repositories/1/issues?state=all&page=2"));
    let last = r#"<http://127.0.0.1:9/x?page=1>; rel="prev", <http://127.0.0.1:9/x?page=1>; rel="first""#;
    assert_eq!(next_link(&reply(200, &[("link", last)], json!([]))), None);
    for garbage in ["", "<>; rel=\"next\"", "nonsense", "<ftp://x/y>; rel=\"next\"", "<https://host>; rel=\"next\""] {
        let _ = next_link(&reply(200, &[("link", garbage)], json!([])));
    }
}

#[test]
fn issues_and_pull_requests_share_a_list_and_go_to_their_own_tables() {
    let body = json!([issue(11, 1, "2026-01-01T00:00:05Z", false), issue(12, 2, "2026-01-01T00:00:06Z", true)]);
    let page = reply(200, &[], body);
    let issues = Github.sync_response(&spec("issues"), &json!({}), &page, NOW).unwrap();
    let pulls = Github.sync_response(&spec("pull_requests"), &json!({}), &page, NOW).unwrap();
    assert_eq!(issues.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["11"]);
    assert_eq!(pulls.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["12"]);
    let columns = &issues.records[0].columns;
    assert_eq!(columns["labels"], json!(["bug", "ui"]));
    assert_eq!(columns["assignees"], json!(["ann"]));
    assert_eq!((&columns["milestone"], &columns["author"], &columns["repository"]), (&json!(3), &json!("bob"), &json!("octo/hello")));
    assert_eq!(issues.records[0].version_us, NOW + 5_000_000);
    assert_eq!(pulls.records[0].columns["merged_at"], json!("2026-01-02T00:00:00Z"));
    assert_eq!(pulls.records[0].columns["draft"], json!(false));
}

#[test]
fn the_backfill_pages_then_polls_since_its_start_with_etags() {
    let issues = spec("issues");
    let first = Github.sync_request(&issues, &json!({}));
    assert_eq!(first.path, "/repos/octo/hello/issues?state=all&sort=updated&direction=asc&per_page=100");
    let next = r#"<https://api.github.com/repos/octo/hello/issues?page=2>; rel="next""#;
    let page1 = Github
        .sync_response(&issues, &json!({}), &reply(200, &[("link", next)], json!([issue(1, 1, "2025-12-01T00:00:00Z", false)])), NOW)
        .unwrap();
    assert_eq!((page1.phase, page1.more), (Phase::Backfill, true));
    assert_eq!(page1.cursor["next"], json!("/repos/octo/hello/issues?page=2"));
    assert_eq!(Github.sync_request(&issues, &page1.cursor).path, "/repos/octo/hello/issues?page=2");
    let later = NOW + 60_000_000;
    let page2 = Github
        .sync_response(&issues, &page1.cursor, &reply(200, &[("etag", "W/\"a\"")], json!([issue(2, 2, "2025-12-02T00:00:00Z", false)])), later)
        .unwrap();
    // Changes made while the backfill paged are read again: since its start.
    assert_eq!(page2.cursor, json!({"phase": "incremental", "since": "2026-01-01T00:00:00Z"}));
    assert_eq!((page2.phase, page2.more), (Phase::Incremental, true));
    let poll = Github.sync_request(&issues, &page2.cursor);
    assert_eq!(poll.path, "/repos/octo/hello/issues?state=all&sort=updated&direction=asc&per_page=100&since=2026-01-01T00%3A00%3A00Z");
    assert!(poll.headers.is_empty());
    // A poll that moves `since` keeps no ETag; one that leaves it keeps it.
    let moved = Github
        .sync_response(&issues, &page2.cursor, &reply(200, &[("etag", "W/\"b\"")], json!([issue(3, 3, "2026-01-01T00:01:00Z", false)])), later)
        .unwrap();
    assert_eq!(moved.cursor, json!({"phase": "incremental", "since": "2026-01-01T00:01:00Z"}));
    assert!(!moved.more);
    let same = Github
        .sync_response(&issues, &moved.cursor, &reply(200, &[("etag", "W/\"c\"")], json!([issue(3, 3, "2026-01-01T00:01:00Z", false)])), later)
        .unwrap();
    assert_eq!(same.cursor["etag"], json!("W/\"c\""));
    let conditional = Github.sync_request(&issues, &same.cursor);
    assert_eq!(conditional.headers, vec![("If-None-Match".to_string(), "W/\"c\"".to_string())]);
    // 304: nothing to apply, the cursor stays.
    let unchanged = Github.sync_response(&issues, &same.cursor, &reply(304, &[], Value::Null), later).unwrap();
    assert_eq!((unchanged.records.len(), &unchanged.cursor, unchanged.more), (0, &same.cursor, false));
}

#[test]
fn labels_are_listed_whole_and_comments_since() {
    assert_eq!(Github.sync_request(&spec("labels"), &json!({"phase": "incremental"})).path, "/repos/octo/hello/labels?per_page=100");
    let comments = spec("issue_comments");
    let page = reply(
        200,
        &[],
        json!([{"id": 7, "body": "hi", "user": {"login": "ann"}, "issue_url": "https://api.github.com/repos/octo/hello/issues/12",
                "updated_at": "2026-01-01T00:00:09Z", "created_at": "2026-01-01T00:00:09Z"}]),
    );
    let synced = Github.sync_response(&comments, &json!({}), &page, NOW).unwrap();
    assert_eq!(synced.records[0].columns["issue_number"], json!(12));
    assert_eq!(synced.records[0].columns["author"], json!("ann"));
    let labels = Github.sync_response(&spec("labels"), &json!({}), &reply(200, &[], json!([{"id": 5, "name": "bug", "color": "f00"}])), NOW + 1).unwrap();
    assert_eq!(labels.records[0].version_us, NOW);
    assert_eq!(labels.cursor, json!({"phase": "incremental"}));
}

#[test]
fn writes_are_json_and_delete_closes_an_issue() {
    let issues = spec("issues");
    let row = vec![
        ("title".to_string(), WriteValue::Text("Bug".into())),
        ("labels".to_string(), WriteValue::Json(json!(["bug"]))),
        ("milestone".to_string(), WriteValue::Json(json!(3))),
        ("body".to_string(), WriteValue::Null),
    ];
    let create = Github.create_request(&issues, &row).unwrap();
    assert_eq!((create.method, create.path.as_str()), (Method::Post, "/repos/octo/hello/issues"));
    assert_eq!(create.body, Some(Body::Json(json!({"title": "Bug", "labels": ["bug"], "milestone": 3}))));
    let old = issue(11, 42, "2026-01-01T00:00:00Z", false);
    let update = Github
        .update_request(&issues, "11", &vec![("state".into(), WriteValue::Text("closed".into())), ("labels".into(), WriteValue::Null)], Some(&old))
        .unwrap();
    assert_eq!((update.method, update.path.as_str()), (Method::Patch, "/repos/octo/hello/issues/42"));
    assert_eq!(update.body, Some(Body::Json(json!({"state": "closed", "labels": []}))));
    let close = Github.delete_request(&issues, "11", Some(&old));
    assert_eq!((close.method, close.path.as_str()), (Method::Patch, "/repos/octo/hello/issues/42"));
    assert_eq!(close.body, Some(Body::Json(json!({"state": "closed", "state_reason": "not_planned"}))));
    // The row stays, closed.
    let mut closed = old.clone();
    closed["state"] = json!("closed");
    let record = Github.write_response(&issues, Some("11"), &reply(200, &[], closed), NOW).unwrap();
    assert!(!record.deleted);
    assert_eq!(record.columns["state"], json!("closed"));
    // Read-only and insert-only columns are refused before any request.
    let error = Github.create_request(&issues, &vec![("state".into(), WriteValue::Text("closed".into()))]).unwrap_err();
    assert_eq!(error.kind, ErrorKind::ReadOnlyColumn);
    assert!(Github.create_request(&issues, &vec![("author".into(), WriteValue::Text("x".into()))]).is_err());
    // Comments: created on their issue, deleted for real.
    let comments = spec("issue_comments");
    let request = Github
        .create_request(&comments, &vec![("issue_number".into(), WriteValue::Json(json!(42))), ("body".into(), WriteValue::Text("hi".into()))])
        .unwrap();
    assert_eq!((request.path.as_str(), request.body), ("/repos/octo/hello/issues/42/comments", Some(Body::Json(json!({"body": "hi"})))));
    assert!(Github.create_request(&comments, &vec![("body".into(), WriteValue::Text("hi".into()))]).is_err());
    let delete = Github.delete_request(&comments, "7", None);
    assert_eq!((delete.method, delete.path.as_str()), (Method::Delete, "/repos/octo/hello/issues/comments/7"));
    assert!(Github.write_response(&comments, Some("7"), &reply(204, &[], Value::Null), NOW).unwrap().deleted);
    // Labels are addressed by name; a new name is new_name.
    let label = json!({"id": 5, "name": "bug fix", "color": "f00"});
    let rename = Github.update_request(&spec("labels"), "5", &vec![("name".into(), WriteValue::Text("fix".into()))], Some(&label)).unwrap();
    assert_eq!((rename.path.as_str(), rename.body), ("/repos/octo/hello/labels/bug%20fix", Some(Body::Json(json!({"new_name": "fix"})))));
    assert!(Github.create_request(&spec("pull_requests"), &vec![]).is_err());
}

#[test]
fn refusals_name_the_field_and_limits_pause_the_server() {
    let invalid = reply(
        422,
        &[("x-github-request-id", "AB:CD")],
        json!({"message": "Validation Failed", "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}]}),
    );
    let error = Github.error(&invalid);
    assert_eq!((error.kind, error.field.as_deref(), error.code.as_deref()), (ErrorKind::Validation, Some("title"), Some("missing_field")));
    assert_eq!(error.message, "Validation Failed: title missing field");
    assert_eq!(error.request_id.as_deref(), Some("AB:CD"));
    assert_eq!(Github.error(&reply(410, &[], json!({"message": "This issue was deleted"}))).kind, ErrorKind::NotFound);
    assert_eq!(Github.error(&reply(404, &[], json!({"message": "Not Found"}))).kind, ErrorKind::NotFound);
    assert_eq!(Github.error(&reply(301, &[], json!({"message": "Moved Permanently"}))).kind, ErrorKind::NotFound);
    assert_eq!(Github.error(&reply(401, &[], json!({"message": "Bad credentials"}))).kind, ErrorKind::Unauthorized);
    assert_eq!(Github.error(&reply(403, &[], json!({"message": "Forbidden"}))).kind, ErrorKind::Unauthorized);
    let reset = (crate::time::now_us() / 1_000_000 + 30).to_string();
    let primary = reply(403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)], json!({"message": "API rate limit exceeded"}));
    assert_eq!(Github.error(&primary).kind, ErrorKind::RateLimited);
    let pause = Github.rate_limit_pause(&primary).unwrap();
    assert!(pause > Duration::from_secs(25) && pause <= Duration::from_secs(30), "{pause:?}");
    let too_many = reply(429, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "99999999999999")], json!({}));
    assert_eq!(Github.rate_limit_pause(&too_many), Some(crate::rate_limit::MAX_UPSTREAM_PAUSE));
    let secondary = reply(403, &[("retry-after", "60"), ("x-ratelimit-remaining", "4000")], json!({"message": "secondary rate limit"}));
    assert_eq!((Github.error(&secondary).kind, Github.rate_limit_pause(&secondary)), (ErrorKind::RateLimited, Some(Duration::from_secs(60))));
    assert_eq!(Github.rate_limit_pause(&reply(200, &[("x-ratelimit-remaining", "0")], json!([]))), None);
}

#[test]
fn request_replies_apply_items_of_this_repository_only() {
    let item = issue(11, 1, "2026-01-01T00:00:05Z", false);
    match Github.reply_object(&item, NOW) {
        ReplyObject::Record(collection, record) => assert_eq!((collection.as_str(), record.id.as_str()), ("issues", "11")),
        other => panic!("{other:?}"),
    }
    assert!(Github.whole_record(&spec("issues"), &item));
    let mut elsewhere = item.clone();
    elsewhere["repository_url"] = json!("https://api.github.com/repos/octo/other");
    assert!(!Github.whole_record(&spec("issues"), &elsewhere));
    assert_eq!(Github.reply_object(&json!({"login": "ann"}), NOW), ReplyObject::Other);
}

#[test]
fn a_deleted_comment_is_named_by_its_path() {
    let reply = ApiResponse { status: 204, headers: vec![], body: vec![] };
    let request = |method, path: &str| ApiRequest { method, path: path.into(), body: None, idempotency_key: None, headers: vec![] };
    let touched = Github.records_touched(&request(Method::Delete, "/repos/octo/hello/issues/comments/42"), &reply, 7);
    assert!(matches!(touched.as_slice(), [Touched::Gone(c, r)] if c == "issue_comments" && r.id == "42" && r.deleted));
    for (method, path) in [(Method::Delete, "/repos/octo/hello/issues/42"), (Method::Patch, "/repos/octo/hello/issues/comments/42"), (Method::Delete, "/repos/octo/hello/issues/comments/x")] {
        assert!(Github.records_touched(&request(method, path), &reply, 7).is_empty(), "{path}");
    }
}
