//! The GitHub subset over real HTTP: starts the `sequin-mock` binary and
//! talks HTTP/1.1 to it, the way the extension does.

mod common;

use serde_json::{json, Value};

use common::{body_text, Mock, Resp};

const UA: (&str, &str) = ("User-Agent", "sequin-fdw-test");
const ACCEPT: (&str, &str) = ("Accept", "application/vnd.github+json");
const VERSION: (&str, &str) = ("X-GitHub-Api-Version", "2022-11-28");

impl Mock {
    /// An account with one repository `octo/hello` and no secondary limit
    /// (unless a test turns it back on).
    fn account(&self, key: &str) {
        let r = self.admin(
            "POST",
            &format!("/_admin/github/repos?account={key}"),
            json!({"full_name":"octo/hello"}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        self.settings(key, json!({"min_mutation_interval_ms":0}));
    }

    fn settings(&self, key: &str, body: Value) -> Value {
        let r = self.admin(
            "POST",
            &format!("/_admin/github/settings?account={key}"),
            body,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// A GitHub API call with the headers a well-behaved client sends.
    fn gh(&self, token: &str, method: &str, path: &str, body: Value) -> Resp {
        self.gh_with(token, method, path, body, &[])
    }

    fn gh_with(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
        extra: &[(&str, &str)],
    ) -> Resp {
        let auth = format!("Bearer {token}");
        let mut headers = vec![UA, ACCEPT, VERSION, ("Authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        self.request(method, path, &headers, &body_text(&body))
    }

    /// A path on the mock from an absolute URL it handed out.
    fn path_of(&self, url: &str) -> String {
        url.strip_prefix(&self.url())
            .unwrap_or_else(|| panic!("{url} is not on {}", self.url()))
            .to_string()
    }
}

const ISSUES: &str = "/repos/octo/hello/issues";

#[test]
fn list_paging_since_pull_requests_and_etags() {
    let mock = Mock::start();
    let key = "ghp_list";
    mock.account(key);
    let r = mock.admin(
        "POST",
        &format!("/_admin/github/repos/octo/hello/seed?account={key}"),
        json!({"issues":5,"pull_requests":3,"step_s":10}),
    );
    assert_eq!(r.json()["numbers"], json!([1, 2, 3, 4, 5, 6, 7, 8]));

    // Page 1 of 3, newest first by default; Link with next and last on the mock's host.
    let r = mock.gh(
        key,
        "GET",
        &format!("{ISSUES}?state=all&per_page=3"),
        Value::Null,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let numbers: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![8, 7, 6]);
    assert_eq!(
        r.link("next").unwrap(),
        format!("{}{ISSUES}?state=all&per_page=3&page=2", mock.url())
    );
    assert_eq!(
        r.link("last").unwrap(),
        format!("{}{ISSUES}?state=all&per_page=3&page=3", mock.url())
    );
    assert_eq!(r.link("prev"), None);
    // Pull requests are in the list and carry pull_request.
    let first = &r.json()[0];
    assert_eq!(
        first["pull_request"]["url"],
        format!("{}/repos/octo/hello/pulls/8", mock.url())
    );
    assert_eq!(first["url"], format!("{}{ISSUES}/8", mock.url()));
    let page3 = mock.gh(
        key,
        "GET",
        &mock.path_of(&r.link("last").unwrap()),
        Value::Null,
    );
    assert_eq!(page3.json().as_array().unwrap().len(), 2);
    assert!(
        page3.link("next").is_none()
            && page3.link("prev").is_some()
            && page3.link("first").is_some()
    );

    // since: updated at or after, oldest first when asked.
    let all = mock
        .gh(
            key,
            "GET",
            &format!("{ISSUES}?state=all&sort=updated&direction=asc&per_page=100"),
            Value::Null,
        )
        .json();
    let cut = all[5]["updated_at"].as_str().unwrap().to_string();
    let r = mock.gh(
        key,
        "GET",
        &format!("{ISSUES}?state=all&sort=updated&direction=asc&since={cut}"),
        Value::Null,
    );
    let numbers: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![6, 7, 8]);
    assert!(cut.ends_with('Z') && cut.len() == 20, "{cut}");

    // A change from outside moves the issue past the cut (possibly into the
    // same second as the newest seeded one: GitHub's times are seconds).
    let r = mock.admin(
        "PATCH",
        &format!("/_admin/github/repos/octo/hello/issues/1?account={key}"),
        json!({"title":"Renamed","as":"hubot"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = mock.gh(
        key,
        "GET",
        &format!("{ISSUES}?state=all&sort=updated&direction=asc&since={cut}"),
        Value::Null,
    );
    let numbers: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers.len(), 4);
    assert!(numbers.contains(&1), "{numbers:?}");

    // ETag: the same GET with If-None-Match is a free 304.
    let r = mock.gh(key, "GET", &format!("{ISSUES}/2"), Value::Null);
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    let remaining: u64 = r.header("x-ratelimit-remaining").unwrap().parse().unwrap();
    let r = mock.gh_with(
        key,
        "GET",
        &format!("{ISSUES}/2"),
        Value::Null,
        &[("If-None-Match", &etag)],
    );
    assert_eq!((r.status, r.body.as_str()), (304, ""));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        r.header("x-ratelimit-remaining")
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        remaining
    );
    let r = mock.gh_with(
        key,
        "GET",
        &format!("{ISSUES}/2"),
        Value::Null,
        &[("If-None-Match", "W/\"stale\"")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-ratelimit-remaining")
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        remaining - 1
    );

    // The request log keeps the headers a test asserts.
    let r = mock.admin(
        "GET",
        &format!("/_admin/requests/recent?account={key}&limit=2"),
        Value::Null,
    );
    let recent = r.json();
    assert_eq!(recent.as_array().unwrap().len(), 2);
    assert_eq!(recent[0]["status"], 304);
    assert_eq!(recent[0]["path"], format!("{ISSUES}/2"));
    assert_eq!(
        recent[0]["headers"],
        json!({"accept":"application/vnd.github+json","x-github-api-version":"2022-11-28","user-agent":"sequin-fdw-test","if-none-match":etag})
    );
    let counts = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(
        counts["by_route"]["GET /repos/{owner}/{repo}/issues/{issue_number}"],
        3
    );
}

#[test]
fn deleted_and_transferred_issues() {
    let mock = Mock::start();
    let key = "ghp_gone";
    mock.account(key);
    mock.admin(
        "POST",
        &format!("/_admin/github/repos?account={key}"),
        json!({"full_name":"octo/other"}),
    );
    mock.admin(
        "POST",
        &format!("/_admin/github/repos/octo/hello/seed?account={key}"),
        json!({"issues":3}),
    );
    let r = mock.gh(
        key,
        "POST",
        &format!("{ISSUES}/2/comments"),
        json!({"body":"moving along"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    let r = mock.admin(
        "DELETE",
        &format!("/_admin/github/repos/octo/hello/issues/1?account={key}"),
        Value::Null,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = mock.gh(key, "GET", &format!("{ISSUES}/1"), Value::Null);
    assert_eq!(
        (r.status, r.json()),
        (
            410,
            json!({"message":"This issue was deleted","documentation_url":"https://docs.github.com/rest","status":"410"})
        )
    );

    let r = mock.admin(
        "POST",
        &format!("/_admin/github/repos/octo/hello/issues/2/transfer?account={key}"),
        json!({"to":"octo/other"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["number"], 1);
    let new_url = format!("{}/repos/octo/other/issues/1", mock.url());
    let r = mock.gh(key, "GET", &format!("{ISSUES}/2"), Value::Null);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some(new_url.as_str()));
    assert_eq!(
        r.json(),
        json!({"message":"Moved Permanently","url":new_url,"documentation_url":"https://docs.github.com/rest"})
    );
    let moved = mock
        .gh(key, "GET", "/repos/octo/other/issues/1", Value::Null)
        .json();
    assert_eq!(
        (moved["title"].clone(), moved["comments"].clone()),
        (json!("Issue 2"), json!(1))
    );

    let r = mock.gh(key, "GET", &format!("{ISSUES}?state=all"), Value::Null);
    let numbers: Vec<u64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3]);
    assert_eq!(
        mock.gh(key, "GET", "/repos/octo/hello/issues/comments", Value::Null)
            .json(),
        json!([])
    );
    assert_eq!(
        mock.gh(key, "GET", "/repos/octo/other/issues/comments", Value::Null)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Unknown repository and disabled issues.
    let r = mock.gh(key, "GET", "/repos/octo/nope/issues", Value::Null);
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            json!({"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"})
        )
    );
    mock.admin(
        "POST",
        &format!("/_admin/github/repos?account={key}"),
        json!({"full_name":"octo/quiet","has_issues":false}),
    );
    let r = mock.gh(key, "GET", "/repos/octo/quiet/issues", Value::Null);
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (410, json!("Issues are disabled for this repo"))
    );
    assert_eq!(
        mock.gh(key, "GET", "/repos/octo/quiet/labels", Value::Null)
            .status,
        200
    );
}

#[test]
fn create_update_close_and_validation_errors() {
    let mock = Mock::start();
    let key = "github_pat_writes";
    mock.account(key);

    let r = mock.gh(key, "POST", ISSUES, json!({"body":"no title"}));
    assert_eq!(
        (r.status, r.json()),
        (
            422,
            json!({"message":"Validation Failed","errors":[{"resource":"Issue","field":"title","code":"missing_field"}],
                   "documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"422"})
        )
    );
    let r = mock.gh(
        key,
        "POST",
        ISSUES,
        json!({"title":"x","assignees":["nobody"]}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["errors"],
        json!([{"resource":"Issue","field":"assignees","code":"invalid","value":"nobody"}])
    );

    mock.admin(
        "POST",
        &format!("/_admin/github/users?account={key}"),
        json!({"login":"hubot"}),
    );
    let r = mock.gh(
        key,
        "POST",
        ISSUES,
        json!({"title":"Broken","body":"It is.","labels":["bug"],"assignees":["hubot"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let issue = r.json();
    assert_eq!(issue["number"], 1);
    assert_eq!(issue["state"], "open");
    assert_eq!(issue["labels"][0]["name"], "bug");
    assert_eq!(issue["labels"][0]["color"], "ededed");
    assert_eq!(issue["assignee"]["login"], "hubot");
    assert_eq!(issue["user"]["login"], "mock-user");
    assert_eq!(issue["closed_at"], Value::Null);
    assert_eq!(issue["created_at"], issue["updated_at"]);
    // The label was created in the repository.
    assert_eq!(
        mock.gh(key, "GET", "/repos/octo/hello/labels/bug", Value::Null)
            .status,
        200
    );

    let r = mock.gh(
        key,
        "PATCH",
        &format!("{ISSUES}/1"),
        json!({"state":"closed","state_reason":"later"}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["errors"][0],
        json!({"resource":"Issue","field":"state_reason","code":"invalid","value":"later"})
    );
    let r = mock.gh(
        key,
        "PATCH",
        &format!("{ISSUES}/1"),
        json!({"state":"closed","state_reason":"not_planned"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let closed = r.json();
    assert_eq!(
        (closed["state"].clone(), closed["state_reason"].clone()),
        (json!("closed"), json!("not_planned"))
    );
    assert!(closed["closed_at"].is_string());
    assert_eq!(closed["closed_by"]["login"], "mock-user");
    assert_eq!(mock.gh(key, "GET", ISSUES, Value::Null).json(), json!([]));
    assert_eq!(
        mock.gh(key, "GET", &format!("{ISSUES}?state=closed"), Value::Null)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let r = mock.gh(
        key,
        "PATCH",
        &format!("{ISSUES}/1"),
        json!({"state":"open","labels":[],"title":"Fixed?"}),
    );
    let reopened = r.json();
    assert_eq!(reopened["state_reason"], "reopened");
    assert_eq!(reopened["closed_at"], Value::Null);
    assert_eq!(reopened["labels"], json!([]));
    assert_eq!(reopened["title"], "Fixed?");
    assert_eq!(
        mock.gh(key, "PATCH", &format!("{ISSUES}/9"), json!({"title":"x"}))
            .status,
        404
    );
}

#[test]
fn comments_and_labels_crud() {
    let mock = Mock::start();
    let key = "ghp_crud";
    mock.account(key);
    mock.gh(key, "POST", ISSUES, json!({"title":"One"}));
    let before = mock
        .gh(key, "GET", &format!("{ISSUES}/1"), Value::Null)
        .json();

    let r = mock.gh(
        key,
        "POST",
        &format!("{ISSUES}/1/comments"),
        json!({"body":""}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["errors"],
        json!([{"resource":"IssueComment","field":"body","code":"missing_field"}])
    );
    let c = mock
        .gh(
            key,
            "POST",
            &format!("{ISSUES}/1/comments"),
            json!({"body":"first"}),
        )
        .json();
    let id = c["id"].as_u64().unwrap();
    assert!(id > before["id"].as_u64().unwrap());
    assert_eq!(c["issue_url"], before["url"]);
    let r = mock.admin(
        "POST",
        &format!("/_admin/github/repos/octo/hello/issues/1/comments?account={key}"),
        json!({"body":"from outside","as":"hubot"}),
    );
    assert_eq!(
        (r.status, r.json()["user"]["login"].clone()),
        (201, json!("hubot"))
    );
    assert_eq!(
        mock.gh(key, "GET", &format!("{ISSUES}/1"), Value::Null)
            .json()["comments"],
        2
    );

    let r = mock.gh(
        key,
        "PATCH",
        &format!("{ISSUES}/comments/{id}"),
        json!({"body":"edited"}),
    );
    assert_eq!((r.status, r.json()["body"].clone()), (200, json!("edited")));
    let list = mock
        .gh(key, "GET", &format!("{ISSUES}/1/comments"), Value::Null)
        .json();
    assert_eq!(list[0]["body"], "edited");
    let r = mock.gh(
        key,
        "GET",
        &format!("{ISSUES}/comments?sort=updated&direction=desc&per_page=1"),
        Value::Null,
    );
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert!(r.link("next").is_some());
    let r = mock.gh(
        key,
        "DELETE",
        &format!("{ISSUES}/comments/{id}"),
        Value::Null,
    );
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(
        mock.gh(key, "GET", &format!("{ISSUES}/comments/{id}"), Value::Null)
            .status,
        404
    );
    assert_eq!(
        mock.gh(key, "GET", &format!("{ISSUES}/1"), Value::Null)
            .json()["comments"],
        1
    );

    let r = mock.gh(
        key,
        "POST",
        "/repos/octo/hello/labels",
        json!({"name":"needs triage","color":"#FF0000","description":"New"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["color"], "ff0000");
    assert_eq!(
        r.json()["url"],
        format!("{}/repos/octo/hello/labels/needs%20triage", mock.url())
    );
    let r = mock.gh(
        key,
        "POST",
        "/repos/octo/hello/labels",
        json!({"name":"Needs Triage"}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["errors"],
        json!([{"resource":"Label","code":"already_exists","field":"name"}])
    );
    let r = mock.gh(
        key,
        "PATCH",
        "/repos/octo/hello/labels/needs%20triage",
        json!({"new_name":"triage","description":null}),
    );
    assert_eq!(
        (r.json()["name"].clone(), r.json()["description"].clone()),
        (json!("triage"), Value::Null)
    );
    for i in 0..3 {
        mock.gh(
            key,
            "POST",
            "/repos/octo/hello/labels",
            json!({"name":format!("l{i}")}),
        );
    }
    let r = mock.gh(
        key,
        "GET",
        "/repos/octo/hello/labels?per_page=2",
        Value::Null,
    );
    assert_eq!(
        r.link("last").unwrap(),
        format!("{}/repos/octo/hello/labels?per_page=2&page=2", mock.url())
    );
    assert_eq!(
        mock.gh(
            key,
            "DELETE",
            "/repos/octo/hello/labels/triage",
            Value::Null
        )
        .status,
        204
    );
    assert_eq!(
        mock.gh(key, "GET", "/repos/octo/hello/labels/triage", Value::Null)
            .status,
        404
    );
}

#[test]
fn primary_rate_limit_403_then_429() {
    let mock = Mock::start();
    let key = "ghp_primary";
    mock.account(key);
    mock.settings(key, json!({"rate_limit":3}));
    let r = mock.gh(key, "GET", ISSUES, Value::Null);
    assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(r.header("x-ratelimit-used"), Some("1"));
    assert_eq!(r.header("x-ratelimit-resource"), Some("core"));
    let reset: i64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > 1_700_000_000);
    mock.gh(key, "GET", ISSUES, Value::Null);
    mock.gh(key, "GET", ISSUES, Value::Null);
    let r = mock.gh(key, "GET", ISSUES, Value::Null);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let body = r.json();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("API rate limit exceeded for user ID 1."));
    assert_eq!(
        body["documentation_url"],
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
    );
    assert_eq!(body["status"], "403");

    mock.settings(key, json!({"limit_status":429}));
    assert_eq!(mock.gh(key, "GET", ISSUES, Value::Null).status, 429);
    // A new window: the admin moves the reset to now.
    let s = mock.settings(key, json!({"reset_in_s":0}));
    assert_eq!(s["remaining"], 3);
    assert_eq!(mock.gh(key, "GET", ISSUES, Value::Null).status, 200);
    mock.settings(key, json!({"remaining":0}));
    assert_eq!(mock.gh(key, "GET", ISSUES, Value::Null).status, 429);
}

#[test]
fn secondary_rate_limit_on_quick_mutations() {
    let mock = Mock::start();
    let key = "ghp_secondary";
    mock.account(key);
    mock.settings(
        key,
        json!({"min_mutation_interval_ms":60_000,"secondary_retry_after_s":7}),
    );
    assert_eq!(
        mock.gh(key, "POST", ISSUES, json!({"title":"a"})).status,
        201
    );
    // Reads are not mutations.
    assert_eq!(mock.gh(key, "GET", ISSUES, Value::Null).status, 200);
    let r = mock.gh(key, "POST", ISSUES, json!({"title":"b"}));
    assert_eq!(r.status, 403);
    assert_eq!(r.header("retry-after"), Some("7"));
    let body = r.json();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("You have exceeded a secondary rate limit."));
    assert_eq!(
        body["documentation_url"],
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
    );
    assert_eq!(
        mock.gh(key, "GET", ISSUES, Value::Null)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    mock.settings(key, json!({"min_mutation_interval_ms":0}));
    assert_eq!(
        mock.gh(key, "POST", ISSUES, json!({"title":"c"})).status,
        201
    );
}

#[test]
fn user_agent_required_and_bad_credentials() {
    let mock = Mock::start();
    let key = "ghp_auth";
    mock.account(key);
    let r = mock.request("GET", ISSUES, &[("Authorization", "Bearer ghp_auth")], "");
    assert_eq!(r.status, 403);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Request forbidden by administrative rules."));
    let r = mock.request(
        "GET",
        ISSUES,
        &[UA, ("Authorization", "token ghp_auth")],
        "",
    );
    assert_eq!(r.status, 200);
    let bad = json!({"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"});
    for auth in ["Bearer sk_test_nope", "Bearer ", "Basic Z2hwX2F1dGg6"] {
        let r = mock.request("GET", ISSUES, &[UA, ("Authorization", auth)], "");
        assert_eq!((r.status, r.json()), (401, bad.clone()), "{auth}");
    }
    mock.admin(
        "POST",
        &format!("/_admin/accounts/revoke?account={key}"),
        Value::Null,
    );
    let r = mock.gh(key, "GET", ISSUES, Value::Null);
    assert_eq!((r.status, r.json()), (401, bad));
}

#[test]
fn app_user_token_refresh_rotation_and_expiry() {
    let mock = Mock::start();
    let key = "ghp_app";
    mock.account(key);
    let r = mock.admin(
        "POST",
        &format!("/_admin/github/app_grants?account={key}"),
        json!({"client_id":"Iv1.abc","client_secret":"shh"}),
    );
    let rt = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert!(rt.starts_with("ghr_"), "{rt}");
    let form = |rt: &str| {
        format!("client_id=Iv1.abc&client_secret=shh&grant_type=refresh_token&refresh_token={rt}")
    };
    let token = |rt: &str, accept: &str| {
        mock.request(
            "POST",
            "/login/oauth/access_token",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", accept),
            ],
            &form(rt),
        )
    };

    let r = token(&rt, "application/json");
    assert_eq!(r.status, 200);
    let t = r.json();
    assert_eq!(t["expires_in"], 28800);
    assert_eq!(t["refresh_token_expires_in"], 15897600);
    assert_eq!(
        (t["token_type"].clone(), t["scope"].clone()),
        (json!("bearer"), json!(""))
    );
    let access = t["access_token"].as_str().unwrap().to_string();
    let rt2 = t["refresh_token"].as_str().unwrap().to_string();
    assert!(access.starts_with("ghu_") && rt2.starts_with("ghr_") && rt2 != rt);

    // The rotated-away token is refused, with HTTP 200 as GitHub does.
    let r = token(&rt, "application/json");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"], "bad_refresh_token");
    assert_eq!(
        r.json()["error_description"],
        "The refresh token passed is incorrect or expired."
    );

    // Without Accept: application/json the reply is form-encoded.
    let r = token(&rt2, "*/*");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    assert!(
        r.body.starts_with("access_token=ghu_") && r.body.contains("&token_type=bearer"),
        "{}",
        r.body
    );

    // The access token acts as the grant's account.
    let r = mock.gh(&access, "GET", ISSUES, Value::Null);
    assert_eq!(r.status, 200, "{}", r.body);
    let counts = mock
        .admin(
            "GET",
            &format!("/_admin/requests?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(counts["by_route"]["GET /repos/{owner}/{repo}/issues"], 1);
    mock.admin(
        "POST",
        &format!("/_admin/oauth/expire?account={key}"),
        Value::Null,
    );
    let r = mock.gh(&access, "GET", ISSUES, Value::Null);
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (401, json!("Bad credentials"))
    );
}

#[test]
fn faults_apply_with_github_shaped_bodies() {
    let mock = Mock::start();
    let key = "ghp_faults";
    mock.account(key);
    let r = mock.admin(
        "POST",
        "/_admin/faults",
        json!({"account":key,"path_prefix":"/repos/","kind":"status","status":502}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = mock.gh(key, "GET", ISSUES, Value::Null);
    assert_eq!(
        (r.status, r.json()),
        (
            502,
            json!({"message":"Bad Gateway","documentation_url":"https://docs.github.com/rest","status":"502"})
        )
    );
    assert_eq!(mock.gh(key, "GET", ISSUES, Value::Null).status, 200);
    let log = mock
        .admin(
            "GET",
            &format!("/_admin/requests/log?account={key}"),
            Value::Null,
        )
        .json();
    assert_eq!(log["requests"][0]["fault"], "status");
}
