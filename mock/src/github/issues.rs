//! Issues (pull requests are issues with a `pull_request` object): the
//! list with its filters and sorts, one issue, create and update with
//! GitHub's 422s. Create and update also serve the admin's changes "from
//! outside", with another user as `actor`.

use serde_json::{Map, Value};

use super::errors::GhError;
use super::paging::{self, Page};
use super::store::{Fate, Issue, IssueGone, Store};
use super::{gone, issue_repo, objects, time};
use crate::http::{Reply, Req};

const CREATE_DOCS: &str = "https://docs.github.com/rest/issues/issues#create-an-issue";
const UPDATE_DOCS: &str = "https://docs.github.com/rest/issues/issues#update-an-issue";
/// The color GitHub gives a label created by naming it on an issue.
const NEW_LABEL_COLOR: &str = "ededed";
const STATE_REASONS: [&str; 4] = ["completed", "not_planned", "reopened", "duplicate"];

/// `GET /repos/{o}/{r}/issues`: state, sort, direction, since, paging.
pub fn list(
    store: &Store,
    repo: &super::store::Repo,
    req: &Req,
    base: &str,
) -> Result<Reply, GhError> {
    let query = paging::query(req);
    let state = paging::choice(&query, "state", &["open", "closed", "all"], "open")?;
    let sort = paging::choice(
        &query,
        "sort",
        &["created", "updated", "comments"],
        "created",
    )?;
    let direction = paging::choice(&query, "direction", &["asc", "desc"], "desc")?;
    let since = since(&query)?;
    let mut issues: Vec<&Issue> = repo
        .issues
        .values()
        .filter(|i| i.fate == Fate::Live)
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| since.is_none_or(|s| i.updated_s >= s))
        .collect();
    issues.sort_by_key(|i| {
        let key = match sort {
            "updated" => i.updated_s,
            "comments" => i.comments as i64,
            _ => i.created_s,
        };
        (key, i.number)
    });
    if direction == "desc" {
        issues.reverse();
    }
    let (page, link) = Page::of(&query).slice(issues, base, req);
    let body: Vec<Value> = page
        .into_iter()
        .map(|i| objects::issue(base, store, repo, i))
        .collect();
    let reply = Reply::json(200, &Value::Array(body));
    Ok(match link {
        Some(link) => reply.with_header("Link", link),
        None => reply,
    })
}

/// The `since` parameter: an ISO 8601 timestamp, or 422.
pub fn since(query: &[(String, String)]) -> Result<Option<i64>, GhError> {
    paging::param(query, "since")
        .map(|v| time::parse(v).ok_or_else(|| paging::invalid_param("since", v)))
        .transpose()
}

/// One issue as the API shows it (404/410/301 when it is not there).
pub fn render(
    store: &Store,
    full_name: &str,
    number: u64,
    base: &str,
    status: u16,
) -> Result<Reply, GhError> {
    let repo = issue_repo(store, full_name)?;
    let issue = repo.issue(number).map_err(|e| gone(base, e))?;
    Ok(Reply::json(
        status,
        &objects::issue(base, store, repo, issue),
    ))
}

fn string_field(
    body: &Map<String, Value>,
    field: &str,
    docs: &str,
) -> Result<Option<Option<String>>, GhError> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(Value::Number(n)) => Ok(Some(Some(n.to_string()))),
        Some(other) => Err(GhError::invalid_field(docs, "Issue", field, other)),
    }
}

/// Label names (or `{"name"}` objects) → label ids; names the repository
/// lacks become new labels, as GitHub does.
fn resolve_labels(
    store: &mut Store,
    full_name: &str,
    v: &Value,
    docs: &str,
) -> Result<Vec<u64>, GhError> {
    let invalid = || GhError::invalid_field(docs, "Issue", "labels", v);
    let names: Vec<String> = match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
            .collect::<Option<Vec<String>>>()
            .ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    let mut ids = Vec::new();
    for name in names.iter().filter(|n| !n.is_empty()) {
        let existing = store
            .repo(full_name)
            .and_then(|r| r.label(name))
            .map(|l| l.id);
        let id = match existing {
            Some(id) => id,
            None => {
                let id = store.next_id();
                store
                    .repo_mut(full_name)
                    .expect("checked")
                    .labels
                    .push(super::store::Label {
                        id,
                        name: name.clone(),
                        color: NEW_LABEL_COLOR.into(),
                        description: None,
                    });
                id
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Logins → user ids; an unknown login is 422 `invalid` with that value.
fn resolve_assignees(store: &Store, v: &Value, docs: &str) -> Result<Vec<u64>, GhError> {
    let logins: Vec<&Value> = match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut ids = Vec::new();
    for login in logins {
        let id = login
            .as_str()
            .and_then(|l| store.user_by_login(l))
            .map(|u| u.id)
            .ok_or_else(|| GhError::invalid_field(docs, "Issue", "assignees", login))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn resolve_milestone(
    store: &Store,
    full_name: &str,
    v: &Value,
    docs: &str,
) -> Result<Option<u64>, GhError> {
    let number = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    number
        .filter(|n| {
            store
                .repo(full_name)
                .is_some_and(|r| r.milestone(*n).is_some())
        })
        .map(Some)
        .ok_or_else(|| GhError::invalid_field(docs, "Issue", "milestone", v))
}

/// The fields create and update share: labels, assignees (or the single
/// `assignee`), milestone.
struct Links {
    labels: Option<Vec<u64>>,
    assignees: Option<Vec<u64>>,
    milestone: Option<Option<u64>>,
}

fn links(
    store: &mut Store,
    full_name: &str,
    body: &Map<String, Value>,
    docs: &str,
) -> Result<Links, GhError> {
    let assignees = match (body.get("assignees"), body.get("assignee")) {
        (Some(v), _) | (None, Some(v)) => Some(resolve_assignees(store, v, docs)?),
        (None, None) => None,
    };
    let milestone = body
        .get("milestone")
        .map(|v| resolve_milestone(store, full_name, v, docs))
        .transpose()?;
    // Labels last: they may create labels, which must not happen for a refused request.
    let labels = body
        .get("labels")
        .map(|v| resolve_labels(store, full_name, v, docs))
        .transpose()?;
    Ok(Links {
        labels,
        assignees,
        milestone,
    })
}

/// Creates an issue (a pull request when `pull_request`); returns its number.
pub fn create_as(
    store: &mut Store,
    full_name: &str,
    body: &Map<String, Value>,
    actor: u64,
    now_s: i64,
    pull_request: bool,
) -> Result<u64, GhError> {
    let title = string_field(body, "title", CREATE_DOCS)?
        .flatten()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| GhError::missing_field(CREATE_DOCS, "Issue", "title"))?;
    let text = string_field(body, "body", CREATE_DOCS)?.flatten();
    let links = links(store, full_name, body, CREATE_DOCS)?;
    let id = store.next_id();
    let repo = store.repo_mut(full_name).expect("checked by the caller");
    let number = repo.next_number();
    repo.issues.insert(
        number,
        Issue {
            id,
            number,
            title,
            body: text,
            user: actor,
            state: "open".into(),
            state_reason: None,
            labels: links.labels.unwrap_or_default(),
            assignees: links.assignees.unwrap_or_default(),
            milestone: links.milestone.flatten(),
            comments: 0,
            created_s: now_s,
            updated_s: now_s,
            closed_s: None,
            closed_by: None,
            pull_request,
            fate: Fate::Live,
        },
    );
    Ok(number)
}

/// `POST /repos/{o}/{r}/issues`.
pub fn create(
    store: &mut Store,
    full_name: &str,
    body: &Map<String, Value>,
    actor: u64,
    now_s: i64,
) -> Result<u64, GhError> {
    create_as(store, full_name, body, actor, now_s, false)
}

/// `PATCH /repos/{o}/{r}/issues/{n}`: only the given fields change.
pub fn update(
    store: &mut Store,
    full_name: &str,
    number: u64,
    body: &Map<String, Value>,
    actor: u64,
    now_s: i64,
) -> Result<(), IssueGone> {
    store
        .repo(full_name)
        .expect("checked by the caller")
        .issue(number)?;
    let invalid = |field: &str, v: &Value| {
        IssueGone::Error(GhError::invalid_field(UPDATE_DOCS, "Issue", field, v))
    };
    let title = string_field(body, "title", UPDATE_DOCS).map_err(IssueGone::Error)?;
    // A title may change, not go away.
    if title
        .as_ref()
        .is_some_and(|t| t.as_deref().is_none_or(|t| t.trim().is_empty()))
    {
        return Err(IssueGone::Error(GhError::missing_field(
            UPDATE_DOCS,
            "Issue",
            "title",
        )));
    }
    let text = string_field(body, "body", UPDATE_DOCS).map_err(IssueGone::Error)?;
    let state = match body.get("state") {
        None => None,
        Some(Value::String(s)) if s == "open" || s == "closed" => Some(s.clone()),
        Some(v) => return Err(invalid("state", v)),
    };
    let state_reason = match body.get("state_reason") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if STATE_REASONS.contains(&s.as_str()) => Some(Some(s.clone())),
        Some(v) => return Err(invalid("state_reason", v)),
    };
    let links = links(store, full_name, body, UPDATE_DOCS).map_err(IssueGone::Error)?;
    let issue = store
        .repo_mut(full_name)
        .expect("checked")
        .issue_mut(number)?;
    if let Some(title) = title.flatten() {
        issue.title = title;
    }
    if let Some(text) = text {
        issue.body = text;
    }
    if let Some(labels) = links.labels {
        issue.labels = labels;
    }
    if let Some(assignees) = links.assignees {
        issue.assignees = assignees;
    }
    if let Some(milestone) = links.milestone {
        issue.milestone = milestone;
    }
    match state.as_deref() {
        Some("closed") if issue.state == "open" => {
            issue.state = "closed".into();
            issue.closed_s = Some(now_s);
            issue.closed_by = Some(actor);
            issue.state_reason = state_reason.clone().flatten().or(Some("completed".into()));
        }
        Some("open") if issue.state == "closed" => {
            issue.state = "open".into();
            issue.closed_s = None;
            issue.closed_by = None;
            issue.state_reason = Some("reopened".into());
        }
        _ => {
            if let Some(reason) = state_reason {
                issue.state_reason = reason;
            }
        }
    }
    issue.updated_s = now_s;
    Ok(())
}
