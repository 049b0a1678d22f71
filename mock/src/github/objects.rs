//! The JSON GitHub answers with, per `@octokit/openapi`'s `issue`,
//! `issue-comment`, `label`, `milestone` and `simple-user` schemas. URLs are
//! built on `base`, the mock's root as the client addressed it.

use serde_json::{json, Value};

use super::store::{Comment, Issue, Label, Milestone, Repo, Store, User};
use super::time;

/// GitHub's node ids are opaque base64; these only need to be unique strings.
fn node_id(kind: &str, id: u64) -> String {
    format!("{kind}_kwDO{id:08X}")
}

pub fn user(base: &str, u: &User) -> Value {
    let url = format!("{base}/users/{}", u.login);
    json!({
        "login": u.login,
        "id": u.id,
        "node_id": node_id("U", u.id),
        "avatar_url": format!("{base}/avatars/u/{}", u.id),
        "gravatar_id": "",
        "url": url,
        "html_url": format!("{base}/{}", u.login),
        "followers_url": format!("{url}/followers"),
        "following_url": format!("{url}/following{{/other_user}}"),
        "gists_url": format!("{url}/gists{{/gist_id}}"),
        "starred_url": format!("{url}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{url}/subscriptions"),
        "organizations_url": format!("{url}/orgs"),
        "repos_url": format!("{url}/repos"),
        "events_url": format!("{url}/events{{/privacy}}"),
        "received_events_url": format!("{url}/received_events"),
        "type": "User",
        "user_view_type": "public",
        "site_admin": false,
    })
}

fn user_by_id(base: &str, store: &Store, id: u64) -> Value {
    store.user(id).map_or(Value::Null, |u| user(base, u))
}

pub fn repo_url(base: &str, repo: &Repo) -> String {
    format!("{base}/repos/{}", repo.full_name)
}

pub fn issue_url(base: &str, full_name: &str, number: u64) -> String {
    format!("{base}/repos/{full_name}/issues/{number}")
}

pub fn label(base: &str, repo: &Repo, l: &Label) -> Value {
    json!({
        "id": l.id,
        "node_id": node_id("LA", l.id),
        "url": format!("{}/labels/{}", repo_url(base, repo), percent_encode(&l.name)),
        "name": l.name,
        "color": l.color,
        "description": l.description,
        "default": false,
    })
}

pub fn milestone(base: &str, store: &Store, repo: &Repo, m: &Milestone) -> Value {
    let open = live_issues(repo)
        .filter(|i| i.milestone == Some(m.number) && i.state == "open")
        .count();
    let closed = live_issues(repo)
        .filter(|i| i.milestone == Some(m.number) && i.state == "closed")
        .count();
    let url = format!("{}/milestones/{}", repo_url(base, repo), m.number);
    json!({
        "url": url,
        "html_url": format!("{base}/{}/milestone/{}", repo.full_name, m.number),
        "labels_url": format!("{url}/labels"),
        "id": m.id,
        "node_id": node_id("MI", m.id),
        "number": m.number,
        "title": m.title,
        "description": null,
        "creator": user_by_id(base, store, m.creator),
        "open_issues": open,
        "closed_issues": closed,
        "state": "open",
        "created_at": time::format(m.created_s),
        "updated_at": time::format(m.created_s),
        "closed_at": null,
        "due_on": null,
    })
}

fn live_issues(repo: &Repo) -> impl Iterator<Item = &Issue> {
    repo.issues
        .values()
        .filter(|i| i.fate == super::store::Fate::Live)
}

/// How a user relates to the repository, as far as the mock knows.
fn author_association(store: &Store, repo: &Repo, user_id: u64) -> &'static str {
    match store.user(user_id) {
        Some(u) if u.login.eq_ignore_ascii_case(&repo.owner) => "OWNER",
        _ => "COLLABORATOR",
    }
}

pub fn issue(base: &str, store: &Store, repo: &Repo, i: &Issue) -> Value {
    let url = issue_url(base, &repo.full_name, i.number);
    let html_kind = if i.pull_request { "pull" } else { "issues" };
    let html_url = format!("{base}/{}/{html_kind}/{}", repo.full_name, i.number);
    let assignees: Vec<Value> = i
        .assignees
        .iter()
        .map(|id| user_by_id(base, store, *id))
        .collect();
    let labels: Vec<Value> = i
        .labels
        .iter()
        .filter_map(|id| repo.label_by_id(*id))
        .map(|l| label(base, repo, l))
        .collect();
    let mut v = json!({
        "id": i.id,
        "node_id": node_id(if i.pull_request { "PR" } else { "I" }, i.id),
        "url": url,
        "repository_url": repo_url(base, repo),
        "labels_url": format!("{url}/labels{{/name}}"),
        "comments_url": format!("{url}/comments"),
        "events_url": format!("{url}/events"),
        "timeline_url": format!("{url}/timeline"),
        "html_url": html_url,
        "number": i.number,
        "state": i.state,
        "state_reason": i.state_reason,
        "title": i.title,
        "body": i.body,
        "user": user_by_id(base, store, i.user),
        "labels": labels,
        "assignee": assignees.first().cloned().unwrap_or(Value::Null),
        "assignees": assignees,
        "milestone": i
            .milestone
            .and_then(|n| repo.milestone(n))
            .map_or(Value::Null, |m| milestone(base, store, repo, m)),
        "locked": false,
        "active_lock_reason": null,
        "comments": i.comments,
        "closed_at": i.closed_s.map(time::format),
        "created_at": time::format(i.created_s),
        "updated_at": time::format(i.updated_s),
        "closed_by": i.closed_by.map_or(Value::Null, |id| user_by_id(base, store, id)),
        "author_association": author_association(store, repo, i.user),
    });
    if i.pull_request {
        let pr_html = format!("{base}/{}/pull/{}", repo.full_name, i.number);
        v["pull_request"] = json!({
            "url": format!("{}/pulls/{}", repo_url(base, repo), i.number),
            "html_url": pr_html,
            "diff_url": format!("{pr_html}.diff"),
            "patch_url": format!("{pr_html}.patch"),
            "merged_at": null,
        });
        v["draft"] = json!(false);
    }
    v
}

pub fn comment(base: &str, store: &Store, repo: &Repo, c: &Comment) -> Value {
    json!({
        "id": c.id,
        "node_id": node_id("IC", c.id),
        "url": format!("{}/issues/comments/{}", repo_url(base, repo), c.id),
        "html_url": format!("{base}/{}/issues/{}#issuecomment-{}", repo.full_name, c.issue_number, c.id),
        "issue_url": issue_url(base, &repo.full_name, c.issue_number),
        "body": c.body,
        "user": user_by_id(base, store, c.user),
        "created_at": time::format(c.created_s),
        "updated_at": time::format(c.updated_s),
        "author_association": author_association(store, repo, c.user),
    })
}

/// For a label name in a URL path (names may hold spaces and the like).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
