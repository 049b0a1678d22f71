//! `/_admin/github/…?account=K`: repositories, users, app grants, seeds,
//! changes "from outside" (as another user, with the API's validation and
//! its error replies), deletion and transfer of issues, reads of what is
//! stored, and the rate-limit settings. Never counted, never rate limited.

use serde_json::{json, Map, Value};

use super::errors::GhError;
use super::rate_limit::Settings;
use super::store::{Fate, Milestone, Store};
use super::{
    base_url, comments, issue_repo, issues, labels, objects, repo, time, token, GithubState,
};
use crate::admin::json_body;
use crate::http::{Reply, Req};
use crate::state::{lock, App};
use crate::stripe::errors::ApiError;
use crate::stripe::form;

/// Seeding more than this in one call is almost certainly a mistake.
const MAX_SEED: u64 = 1_000_000;

fn body_map(req: &Req) -> Result<Map<String, Value>, ApiError> {
    json_body::<Map<String, Value>>(req)
}

fn u64_field(body: &Map<String, Value>, name: &str, default: u64) -> Result<u64, ApiError> {
    match body.get(name) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::invalid(format!("{name} must be a non-negative integer"))),
    }
}

fn settings_json(gh: &GithubState) -> Value {
    let mut v = json!(gh.limits.settings);
    v["remaining"] = json!(gh.limits.remaining());
    v["used"] = json!(gh.limits.settings.rate_limit - gh.limits.remaining());
    v["reset"] = json!(gh.limits.reset_s());
    v
}

/// `{"rate_limit","rate_window_s","limit_status","min_mutation_interval_ms",
/// "secondary_retry_after_s"}` and the counters `remaining`, `reset_in_s`; any subset.
fn update_settings(gh: &mut GithubState, req: &Req) -> Result<Value, ApiError> {
    let mut body = body_map(req)?;
    let remaining = body.remove("remaining");
    let reset_in_s = body.remove("reset_in_s");
    let mut merged = json!(gh.limits.settings);
    for (k, v) in body {
        merged[k] = v;
    }
    let settings: Settings = serde_json::from_value(merged)
        .map_err(|e| ApiError::invalid(format!("Invalid settings: {e}")))?;
    if settings.limit_status != 403 && settings.limit_status != 429 {
        return Err(ApiError::invalid("limit_status must be 403 or 429"));
    }
    gh.limits.settings = settings;
    let now = time::now_s();
    if let Some(v) = reset_in_s {
        let s = v
            .as_i64()
            .ok_or_else(|| ApiError::invalid("reset_in_s must be an integer"))?;
        gh.limits.set_reset_in(now, s);
    }
    // A window that has ended (perhaps just now) starts over before `remaining` applies.
    gh.limits.roll(now);
    if let Some(v) = remaining {
        let n = v
            .as_u64()
            .ok_or_else(|| ApiError::invalid("remaining must be a non-negative integer"))?;
        gh.limits.set_remaining(n);
    }
    Ok(settings_json(gh))
}

/// Who an outside change is made by: `"as"` (created if new), else the repository's owner.
fn actor(
    store: &mut Store,
    full_name: &str,
    body: &mut Map<String, Value>,
) -> Result<u64, ApiError> {
    match body.remove("as") {
        Some(Value::String(login)) if !login.is_empty() => Ok(store.ensure_user(&login)),
        Some(_) => Err(ApiError::invalid("as must be a login")),
        None => {
            let owner = store
                .repo(full_name)
                .map(|r| r.owner.clone())
                .unwrap_or_default();
            Ok(store.ensure_user(&owner))
        }
    }
}

/// N issues then M pull requests by the owner, `updated_at` = `created_at`
/// running `step_s` apart and ending now.
fn seed(store: &mut Store, full_name: &str, body: &Map<String, Value>) -> Result<Value, ApiError> {
    let issue_count = u64_field(body, "issues", 0)?;
    let pr_count = u64_field(body, "pull_requests", 0)?;
    let step_s = u64_field(body, "step_s", 1)? as i64;
    let total = issue_count + pr_count;
    if total > MAX_SEED {
        return Err(ApiError::invalid(format!("at most {MAX_SEED} per seed")));
    }
    let end = store.tick(time::now_s());
    let owner = store
        .repo(full_name)
        .map(|r| r.owner.clone())
        .unwrap_or_default();
    let owner = store.ensure_user(&owner);
    let mut numbers = Vec::new();
    for i in 0..total {
        let at = end - (total - 1 - i) as i64 * step_s;
        let pull_request = i >= issue_count;
        let number = store.repo(full_name).map_or(1, |r| r.next_number());
        let kind = if pull_request {
            "Pull request"
        } else {
            "Issue"
        };
        let body = json!({ "title": format!("{kind} {number}"), "body": format!("Seeded {} {number}.", kind.to_lowercase()) });
        let n = issues::create_as(
            store,
            full_name,
            body.as_object().expect("object"),
            owner,
            at,
            pull_request,
        )
        .expect("a seeded issue is valid: a title, no labels or users to resolve");
        numbers.push(n);
    }
    Ok(json!({ "numbers": numbers }))
}

/// Moves a live issue to another repository: a new id and number there,
/// its comments with it, labels that exist there by name; the old number
/// then answers 301. Returns the new number.
fn transfer(
    store: &mut Store,
    from: &str,
    number: u64,
    to: &str,
    now_s: i64,
) -> Result<u64, ApiError> {
    let target = store
        .repo(to)
        .ok_or_else(|| ApiError::invalid(format!("No repository {to}")))?;
    if target.full_name.eq_ignore_ascii_case(from) {
        return Err(ApiError::invalid(
            "cannot transfer an issue to its own repository",
        ));
    }
    let to = target.full_name.clone();
    let source = store
        .repo(from)
        .ok_or_else(|| ApiError::invalid(format!("No repository {from}")))?;
    let old = source
        .issue(number)
        .map_err(|_| ApiError::invalid(format!("No live issue #{number} in {from}")))?
        .clone();
    if old.pull_request {
        return Err(ApiError::invalid("pull requests cannot be transferred"));
    }
    let label_names: Vec<String> = old
        .labels
        .iter()
        .filter_map(|id| source.label_by_id(*id))
        .map(|l| l.name.clone())
        .collect();
    let id = store.next_id();
    let source = store.repo_mut(from).expect("found");
    let moved: Vec<_> = source
        .comments
        .values()
        .filter(|c| c.issue_number == number)
        .map(|c| c.id)
        .collect();
    let moved: Vec<_> = moved
        .into_iter()
        .filter_map(|c| source.comments.remove(&c))
        .collect();
    let target = store.repo_mut(&to).expect("found");
    let new_number = target.next_number();
    let labels = label_names
        .iter()
        .filter_map(|n| target.label(n))
        .map(|l| l.id)
        .collect();
    for mut c in moved {
        c.issue_number = new_number;
        target.comments.insert(c.id, c);
    }
    target.issues.insert(
        new_number,
        super::store::Issue {
            id,
            number: new_number,
            labels,
            milestone: None,
            updated_s: now_s,
            ..old
        },
    );
    store
        .repo_mut(from)
        .expect("found")
        .issues
        .get_mut(&number)
        .expect("found")
        .fate = Fate::Transferred {
        full_name: to,
        number: new_number,
    };
    Ok(new_number)
}

/// An issue as stored, whatever became of it (`fate`: live, deleted, transferred).
fn stored_issue(store: &Store, full_name: &str, number: u64, base: &str) -> Result<Reply, GhError> {
    let repo = repo(store, full_name)?;
    let issue = repo.issues.get(&number).ok_or_else(GhError::not_found)?;
    let mut v = objects::issue(base, store, repo, issue);
    v["fate"] = json!(match &issue.fate {
        Fate::Live => "live",
        Fate::Deleted => "deleted",
        Fate::Transferred { .. } => "transferred",
    });
    Ok(Reply::json(200, &v))
}

/// `segments` is the path after `/_admin/github/`.
pub fn handle(app: &App, req: &Req, segments: &[&str], account: &str) -> Result<Reply, ApiError> {
    if let ("POST", ["app_grants"]) = (req.method.as_str(), segments) {
        let body = body_map(req)?;
        let string = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| ApiError::missing_param(name))
        };
        let expires_in = u64_field(&body, "expires_in", token::ACCESS_EXPIRES_IN)?;
        let refresh_token = token::create_grant(
            app,
            account,
            string("client_id")?,
            string("client_secret")?,
            expires_in,
        );
        return Ok(Reply::json(200, &json!({ "refresh_token": refresh_token })));
    }
    let account = app.account(account);
    let mut account = lock(&account);
    let gh = &mut account.github;
    let base = base_url(req);
    let base = base.as_str();
    let now_s = gh.store.tick(time::now_s());
    let ok = |v: Value| Ok(Reply::json(200, &v));
    let segments: Vec<String> = segments
        .iter()
        .map(|s| form::percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| ApiError::invalid(format!("not a number: {s}")))
    };

    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["settings"]) => ok(settings_json(gh)),
        ("POST", ["settings"]) => ok(update_settings(gh, req)?),
        ("POST", ["users"]) => {
            let body = body_map(req)?;
            let login = body
                .get("login")
                .and_then(Value::as_str)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| ApiError::missing_param("login"))?;
            let id = gh.store.ensure_user(login);
            ok(objects::user(base, gh.store.user(id).expect("just made")))
        }
        ("POST", ["repos"]) => {
            let body = body_map(req)?;
            let full_name = body
                .get("full_name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::missing_param("full_name"))?;
            let has_issues = body
                .get("has_issues")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let repo = gh
                .store
                .create_repo(full_name, has_issues)
                .map_err(ApiError::invalid)?;
            ok(json!({ "id": repo.id, "full_name": repo.full_name, "has_issues": repo.has_issues }))
        }
        (method, ["repos", owner, name, rest @ ..]) => {
            let full_name = format!("{owner}/{name}");
            if gh.store.repo(&full_name).is_none() {
                return Err(ApiError::invalid(format!("No repository {full_name}")).status(404));
            }
            let store = &mut gh.store;
            let api = |r: Result<Reply, GhError>| Ok(r.unwrap_or_else(|e| e.reply()));
            match (method, rest) {
                ("PATCH", []) => {
                    let body = body_map(req)?;
                    let repo = store.repo_mut(&full_name).expect("found");
                    if let Some(v) = body.get("has_issues").and_then(Value::as_bool) {
                        repo.has_issues = v;
                    }
                    ok(
                        json!({ "id": repo.id, "full_name": repo.full_name, "has_issues": repo.has_issues }),
                    )
                }
                ("POST", ["seed"]) => ok(seed(store, &full_name, &body_map(req)?)?),
                ("POST", ["milestones"]) => {
                    let body = body_map(req)?;
                    let title = body
                        .get("title")
                        .and_then(Value::as_str)
                        .ok_or_else(|| ApiError::missing_param("title"))?;
                    let creator =
                        store.ensure_user(&store.repo(&full_name).expect("found").owner.clone());
                    let id = store.next_id();
                    let repo = store.repo_mut(&full_name).expect("found");
                    let number = repo.milestones.len() as u64 + 1;
                    repo.milestones.push(Milestone {
                        id,
                        number,
                        title: title.to_string(),
                        creator,
                        created_s: now_s,
                    });
                    let repo = store.repo(&full_name).expect("found");
                    ok(objects::milestone(
                        base,
                        store,
                        repo,
                        repo.milestone(number).expect("just made"),
                    ))
                }
                ("POST", ["issues"]) => {
                    let mut body = body_map(req)?;
                    let actor = actor(store, &full_name, &mut body)?;
                    let pull_request =
                        matches!(body.remove("pull_request"), Some(Value::Bool(true)));
                    api(issue_repo(store, &full_name)
                        .map(|_| ())
                        .and_then(|()| {
                            issues::create_as(store, &full_name, &body, actor, now_s, pull_request)
                        })
                        .and_then(|n| issues::render(store, &full_name, n, base, 201)))
                }
                ("GET", ["issues", "comments", id]) => api(comments::render(
                    store,
                    repo(store, &full_name).expect("found"),
                    number(id)?,
                    base,
                    200,
                )),
                ("PATCH", ["issues", "comments", id]) => {
                    let id = number(id)?;
                    let body = body_map(req)?;
                    api(
                        comments::update(store, &full_name, id, &body, now_s).and_then(|()| {
                            comments::render(store, repo(store, &full_name)?, id, base, 200)
                        }),
                    )
                }
                ("DELETE", ["issues", "comments", id]) => {
                    api(comments::delete(store, &full_name, number(id)?, now_s)
                        .map(|()| Reply::raw(204, Vec::new())))
                }
                ("GET", ["issues", n]) => api(stored_issue(store, &full_name, number(n)?, base)),
                ("PATCH", ["issues", n]) => {
                    let n = number(n)?;
                    let mut body = body_map(req)?;
                    let actor = actor(store, &full_name, &mut body)?;
                    api(issues::update(store, &full_name, n, &body, actor, now_s)
                        .map_err(|e| super::gone(base, e))
                        .and_then(|()| issues::render(store, &full_name, n, base, 200)))
                }
                ("DELETE", ["issues", n]) => {
                    let n = number(n)?;
                    let repo = store.repo_mut(&full_name).expect("found");
                    let issue = repo.issues.get_mut(&n).filter(|i| i.fate == Fate::Live);
                    let issue = issue.ok_or_else(|| {
                        ApiError::invalid(format!("No live issue #{n}")).status(404)
                    })?;
                    issue.fate = Fate::Deleted;
                    ok(json!({ "number": n, "deleted": true }))
                }
                ("POST", ["issues", n, "transfer"]) => {
                    let body = body_map(req)?;
                    let to = body
                        .get("to")
                        .and_then(Value::as_str)
                        .ok_or_else(|| ApiError::missing_param("to"))?;
                    let new_number = transfer(store, &full_name, number(n)?, to, now_s)?;
                    let to = store.repo(to).expect("found").full_name.clone();
                    api(issues::render(store, &to, new_number, base, 200))
                }
                ("POST", ["issues", n, "comments"]) => {
                    let n = number(n)?;
                    let mut body = body_map(req)?;
                    let actor = actor(store, &full_name, &mut body)?;
                    api(comments::create(store, &full_name, n, &body, actor, now_s)
                        .map_err(|e| super::gone(base, e))
                        .and_then(|id| {
                            comments::render(store, repo(store, &full_name)?, id, base, 201)
                        }))
                }
                ("POST", ["labels"]) => {
                    let body = body_map(req)?;
                    api(labels::create(store, &full_name, &body).and_then(|name| {
                        labels::render(repo(store, &full_name)?, &name, base, 201)
                    }))
                }
                ("GET", ["labels", name]) => api(labels::render(
                    repo(store, &full_name).expect("found"),
                    name,
                    base,
                    200,
                )),
                _ => Err(unknown(req)),
            }
        }
        _ => Err(unknown(req)),
    }
}

fn unknown(req: &Req) -> ApiError {
    ApiError::invalid(format!(
        "Unknown admin endpoint: {} {}",
        req.method, req.path
    ))
    .status(404)
}
