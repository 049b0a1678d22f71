//! Issue comments: the repository-wide list, an issue's list, create, read,
//! update, delete. Every change also counts on the issue: its `comments`
//! and `updated_at`.

use serde_json::{Map, Value};

use super::errors::GhError;
use super::issues::since;
use super::paging::{self, Page};
use super::store::{Comment, IssueGone, Repo, Store};
use super::{gone, objects};
use crate::http::{Reply, Req};

const CREATE_DOCS: &str = "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
const UPDATE_DOCS: &str = "https://docs.github.com/rest/issues/comments#update-an-issue-comment";

fn page_of(store: &Store, repo: &Repo, comments: Vec<&Comment>, req: &Req, base: &str) -> Reply {
    let (page, link) = Page::of(&paging::query(req)).slice(comments, base, req);
    let body: Vec<Value> = page
        .into_iter()
        .map(|c| objects::comment(base, store, repo, c))
        .collect();
    let reply = Reply::json(200, &Value::Array(body));
    match link {
        Some(link) => reply.with_header("Link", link),
        None => reply,
    }
}

/// `GET /repos/{o}/{r}/issues/comments`: sort, direction, since, paging.
pub fn list_repo(store: &Store, repo: &Repo, req: &Req, base: &str) -> Result<Reply, GhError> {
    let query = paging::query(req);
    let sort = paging::choice(&query, "sort", &["created", "updated"], "created")?;
    let direction = paging::choice(&query, "direction", &["asc", "desc"], "asc")?;
    let since = since(&query)?;
    let mut comments: Vec<&Comment> = repo
        .comments
        .values()
        .filter(|c| repo.live_comment(c.id).is_some())
        .filter(|c| since.is_none_or(|s| c.updated_s >= s))
        .collect();
    comments.sort_by_key(|c| {
        (
            if sort == "updated" {
                c.updated_s
            } else {
                c.created_s
            },
            c.id,
        )
    });
    if direction == "desc" {
        comments.reverse();
    }
    Ok(page_of(store, repo, comments, req, base))
}

/// `GET /repos/{o}/{r}/issues/{n}/comments`: oldest first, since, paging.
pub fn list_issue(
    store: &Store,
    repo: &Repo,
    number: u64,
    req: &Req,
    base: &str,
) -> Result<Reply, GhError> {
    repo.issue(number).map_err(|e| gone(base, e))?;
    let since = since(&paging::query(req))?;
    let comments: Vec<&Comment> = repo
        .comments
        .values()
        .filter(|c| c.issue_number == number)
        .filter(|c| since.is_none_or(|s| c.updated_s >= s))
        .collect();
    Ok(page_of(store, repo, comments, req, base))
}

pub fn render(
    store: &Store,
    repo: &Repo,
    id: u64,
    base: &str,
    status: u16,
) -> Result<Reply, GhError> {
    let comment = repo.live_comment(id).ok_or_else(GhError::not_found)?;
    Ok(Reply::json(
        status,
        &objects::comment(base, store, repo, comment),
    ))
}

fn body_text(body: &Map<String, Value>, docs: &str) -> Result<String, GhError> {
    match body.get("body") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            Err(GhError::missing_field(docs, "IssueComment", "body"))
        }
        Some(other) => Err(GhError::invalid_field(docs, "IssueComment", "body", other)),
    }
}

/// `POST /repos/{o}/{r}/issues/{n}/comments`; returns the comment's id.
pub fn create(
    store: &mut Store,
    full_name: &str,
    number: u64,
    body: &Map<String, Value>,
    actor: u64,
    now_s: i64,
) -> Result<u64, IssueGone> {
    store
        .repo(full_name)
        .expect("checked by the caller")
        .issue(number)?;
    let text = body_text(body, CREATE_DOCS).map_err(IssueGone::Error)?;
    let id = store.next_id();
    let repo = store.repo_mut(full_name).expect("checked");
    repo.comments.insert(
        id,
        Comment {
            id,
            issue_number: number,
            body: text,
            user: actor,
            created_s: now_s,
            updated_s: now_s,
        },
    );
    let issue = repo.issue_mut(number)?;
    issue.comments += 1;
    issue.updated_s = now_s;
    Ok(id)
}

/// The comment's repository, mutably, and its issue's number; or 404.
fn live_comment_mut<'a>(
    store: &'a mut Store,
    full_name: &str,
    id: u64,
) -> Result<(&'a mut Repo, u64), GhError> {
    let repo = store.repo_mut(full_name).ok_or_else(GhError::not_found)?;
    let number = repo
        .live_comment(id)
        .ok_or_else(GhError::not_found)?
        .issue_number;
    Ok((repo, number))
}

/// `PATCH /repos/{o}/{r}/issues/comments/{id}` `{"body"}`.
pub fn update(
    store: &mut Store,
    full_name: &str,
    id: u64,
    body: &Map<String, Value>,
    now_s: i64,
) -> Result<(), GhError> {
    let (repo, number) = live_comment_mut(store, full_name, id)?;
    let text = body_text(body, UPDATE_DOCS)?;
    let comment = repo.comments.get_mut(&id).expect("found");
    comment.body = text;
    comment.updated_s = now_s;
    repo.issues.get_mut(&number).expect("live").updated_s = now_s;
    Ok(())
}

/// `DELETE /repos/{o}/{r}/issues/comments/{id}`.
pub fn delete(store: &mut Store, full_name: &str, id: u64, now_s: i64) -> Result<(), GhError> {
    let (repo, number) = live_comment_mut(store, full_name, id)?;
    repo.comments.remove(&id);
    let issue = repo.issues.get_mut(&number).expect("live");
    issue.comments = issue.comments.saturating_sub(1);
    issue.updated_s = now_s;
    Ok(())
}
