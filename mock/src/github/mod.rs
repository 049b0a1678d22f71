//! The GitHub REST subset: issues (pull requests among them), issue comments
//! and labels of an account's repositories, with GitHub's auth, `User-Agent`
//! rule, ETags, `Link` paging, primary and secondary rate limits, and the
//! app user-token endpoint. Shapes follow `@octokit/openapi`
//! (`tests/github_openapi/` checks them). State lives per account; a
//! request's account is its token (see `auth.rs`).

pub mod admin;
pub mod auth;
pub mod comments;
pub mod conditional;
pub mod errors;
pub mod issues;
pub mod labels;
pub mod objects;
pub mod paging;
pub mod rate_limit;
pub mod store;
pub mod time;
pub mod token;

use serde_json::{Map, Value};

use crate::http::{Reply, Req};
use crate::state::{lock, App};
use crate::stripe::form;
use errors::GhError;
use rate_limit::RateLimit;
use store::{IssueGone, Repo, Store};

pub use token::TOKEN_PATH;

const REPOS_PREFIX: &str = "/repos/";

/// One account's GitHub: its data and its rate-limit counters.
#[derive(Default)]
pub struct GithubState {
    pub store: Store,
    pub limits: RateLimit,
}

pub fn is_github_path(path: &str) -> bool {
    path == TOKEN_PATH || path.starts_with(REPOS_PREFIX)
}

/// The mock's root as the client addressed it: links and object URLs use it.
pub fn base_url(req: &Req) -> String {
    format!("http://{}", req.header("host").unwrap_or("127.0.0.1"))
}

/// Answers one GitHub request (`request_id` goes into rate-limit messages).
pub fn handle(app: &App, req: &Req, request_id: &str) -> Reply {
    if req.path == TOKEN_PATH {
        return token::endpoint(app, req);
    }
    // GitHub refuses a request without User-Agent before looking at its token.
    if req.header("user-agent").is_none_or(str::is_empty) {
        return GhError::user_agent_required().reply();
    }
    let key = match auth::authenticate(app, &req.headers) {
        Ok(key) => key,
        Err(e) => return e.reply(),
    };
    let account = app.account(&key);
    let mut account = lock(&account);
    if account.revoked {
        return GhError::bad_credentials().reply();
    }
    let gh = &mut account.github;
    gh.limits.roll(time::now_s());
    let checked = gh.limits.check_primary(request_id).and_then(|()| {
        gh.limits
            .check_secondary(&req.method, time::now_ms(), request_id)
    });
    let reply = match checked {
        Ok(()) => {
            let now_s = gh.store.tick(time::now_s());
            route(&mut gh.store, req, now_s).unwrap_or_else(|e| e.reply())
        }
        Err(e) => e.reply(),
    };
    let mut reply = conditional::apply(req, reply);
    // A 304 is free (GitHub's rule), and so is being refused for the limit itself.
    let over_primary = gh.limits.remaining() == 0;
    if reply.status != 304 && !over_primary {
        gh.limits.count();
    }
    gh.limits.add_headers(&mut reply);
    reply
}

fn route(store: &mut Store, req: &Req, now_s: i64) -> Result<Reply, GhError> {
    let rest = req.path[REPOS_PREFIX.len()..].trim_end_matches('/');
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| form::percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let Some((owner, name, segments)) = (match segments.as_slice() {
        [owner, name, rest @ ..] => Some((*owner, *name, rest)),
        _ => None,
    }) else {
        return Err(GhError::not_found());
    };
    let full_name = format!("{owner}/{name}");
    let base = base_url(req);
    let base = base.as_str();
    let method = req.method.as_str();
    let actor = store::VIEWER_ID;
    let number = |s: &str| s.parse::<u64>().map_err(|_| GhError::not_found());
    match (method, segments) {
        ("GET", ["issues"]) => issues::list(store, issue_repo(store, &full_name)?, req, base),
        ("POST", ["issues"]) => {
            issue_repo(store, &full_name)?;
            let n = issues::create(store, &full_name, &json_object(req)?, actor, now_s)?;
            issues::render(store, &full_name, n, base, 201)
        }
        ("GET", ["issues", "comments"]) => {
            comments::list_repo(store, issue_repo(store, &full_name)?, req, base)
        }
        ("GET", ["issues", "comments", id]) => comments::render(
            store,
            issue_repo(store, &full_name)?,
            number(id)?,
            base,
            200,
        ),
        ("PATCH", ["issues", "comments", id]) => {
            issue_repo(store, &full_name)?;
            let id = number(id)?;
            comments::update(store, &full_name, id, &json_object(req)?, now_s)?;
            comments::render(store, issue_repo(store, &full_name)?, id, base, 200)
        }
        ("DELETE", ["issues", "comments", id]) => {
            issue_repo(store, &full_name)?;
            comments::delete(store, &full_name, number(id)?, now_s)?;
            Ok(Reply::raw(204, Vec::new()))
        }
        ("GET", ["issues", n]) => issues::render(store, &full_name, number(n)?, base, 200),
        ("PATCH", ["issues", n]) => {
            issue_repo(store, &full_name)?;
            let n = number(n)?;
            issues::update(store, &full_name, n, &json_object(req)?, actor, now_s)
                .map_err(|e| gone(base, e))?;
            issues::render(store, &full_name, n, base, 200)
        }
        ("GET", ["issues", n, "comments"]) => {
            comments::list_issue(store, issue_repo(store, &full_name)?, number(n)?, req, base)
        }
        ("POST", ["issues", n, "comments"]) => {
            issue_repo(store, &full_name)?;
            let id = comments::create(
                store,
                &full_name,
                number(n)?,
                &json_object(req)?,
                actor,
                now_s,
            )
            .map_err(|e| gone(base, e))?;
            comments::render(store, issue_repo(store, &full_name)?, id, base, 201)
        }
        ("GET", ["labels"]) => labels::list(repo(store, &full_name)?, req, base),
        ("POST", ["labels"]) => {
            repo(store, &full_name)?;
            let name = labels::create(store, &full_name, &json_object(req)?)?;
            labels::render(repo(store, &full_name)?, &name, base, 201)
        }
        ("GET", ["labels", label]) => labels::render(repo(store, &full_name)?, label, base, 200),
        ("PATCH", ["labels", label]) => {
            repo(store, &full_name)?;
            let name = labels::update(store, &full_name, label, &json_object(req)?)?;
            labels::render(repo(store, &full_name)?, &name, base, 200)
        }
        ("DELETE", ["labels", label]) => {
            repo(store, &full_name)?;
            labels::delete(store, &full_name, label)?;
            Ok(Reply::raw(204, Vec::new()))
        }
        _ => Err(GhError::not_found()),
    }
}

/// The repository, or 404.
pub fn repo<'a>(store: &'a Store, full_name: &str) -> Result<&'a Repo, GhError> {
    store.repo(full_name).ok_or_else(GhError::not_found)
}

/// The repository for an issue route: 404, or 410 when issues are disabled.
pub fn issue_repo<'a>(store: &'a Store, full_name: &str) -> Result<&'a Repo, GhError> {
    let repo = repo(store, full_name)?;
    if repo.has_issues {
        Ok(repo)
    } else {
        Err(GhError::issues_disabled())
    }
}

/// The error for an issue that is not there: its 404/410, or the 301 of a transferred one.
pub fn gone(base: &str, e: IssueGone) -> GhError {
    match e {
        IssueGone::Error(e) => e,
        IssueGone::Moved { full_name, number } => {
            GhError::moved(&objects::issue_url(base, &full_name, number))
        }
    }
}

/// A JSON object body (empty means `{}`), or GitHub's 400.
pub fn json_object(req: &Req) -> Result<Map<String, Value>, GhError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(GhError::problems_parsing_json()),
    }
}

/// The route for request counts: owner, repo, numbers and names replaced.
pub fn route_name(method: &str, path: &str) -> String {
    let Some(rest) = path.strip_prefix(REPOS_PREFIX) else {
        return format!("{method} {path}");
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let tail = match segments.get(2..).unwrap_or(&[]) {
        ["issues", "comments", _] => "/issues/comments/{comment_id}".to_string(),
        ["issues", n] if *n != "comments" => "/issues/{issue_number}".to_string(),
        ["issues", _, "comments"] => "/issues/{issue_number}/comments".to_string(),
        ["labels", _] => "/labels/{name}".to_string(),
        other => other.iter().map(|s| format!("/{s}")).collect(),
    };
    format!("{method} /repos/{{owner}}/{{repo}}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names() {
        assert_eq!(
            route_name("GET", "/repos/o/r/issues"),
            "GET /repos/{owner}/{repo}/issues"
        );
        assert_eq!(
            route_name("GET", "/repos/o/r/issues/7"),
            "GET /repos/{owner}/{repo}/issues/{issue_number}"
        );
        assert_eq!(
            route_name("GET", "/repos/o/r/issues/comments"),
            "GET /repos/{owner}/{repo}/issues/comments"
        );
        assert_eq!(
            route_name("DELETE", "/repos/o/r/issues/comments/9"),
            "DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}"
        );
        assert_eq!(
            route_name("POST", "/repos/o/r/issues/7/comments"),
            "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
        );
        assert_eq!(
            route_name("PATCH", "/repos/o/r/labels/bug"),
            "PATCH /repos/{owner}/{repo}/labels/{name}"
        );
    }
}
