//! A repository's labels: list, create, read, update (`new_name`, `color`,
//! `description`), delete (which takes the label off its issues).

use serde_json::{json, Map, Value};

use super::errors::GhError;
use super::objects;
use super::paging::{self, Page};
use super::store::{Label, Repo, Store};
use crate::http::{Reply, Req};

const CREATE_DOCS: &str = "https://docs.github.com/rest/issues/labels#create-a-label";
const UPDATE_DOCS: &str = "https://docs.github.com/rest/issues/labels#update-a-label";
const DEFAULT_COLOR: &str = "ededed";

pub fn list(repo: &Repo, req: &Req, base: &str) -> Result<Reply, GhError> {
    let labels: Vec<&Label> = repo.labels.iter().collect();
    let (page, link) = Page::of(&paging::query(req)).slice(labels, base, req);
    let body: Vec<Value> = page
        .into_iter()
        .map(|l| objects::label(base, repo, l))
        .collect();
    let reply = Reply::json(200, &Value::Array(body));
    Ok(match link {
        Some(link) => reply.with_header("Link", link),
        None => reply,
    })
}

pub fn render(repo: &Repo, name: &str, base: &str, status: u16) -> Result<Reply, GhError> {
    let label = repo.label(name).ok_or_else(GhError::not_found)?;
    Ok(Reply::json(status, &objects::label(base, repo, label)))
}

/// Six hex digits, with or without `#` (GitHub strips it).
fn color(body: &Map<String, Value>, docs: &str) -> Result<Option<String>, GhError> {
    match body.get("color") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if s.trim_start_matches('#').len() == 6
                && s.trim_start_matches('#')
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(Some(s.trim_start_matches('#').to_ascii_lowercase()))
        }
        Some(v) => Err(GhError::invalid_field(docs, "Label", "color", v)),
    }
}

fn description(body: &Map<String, Value>, docs: &str) -> Result<Option<Option<String>>, GhError> {
    match body.get("description") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(v) => Err(GhError::invalid_field(docs, "Label", "description", v)),
    }
}

fn already_exists(docs: &str) -> GhError {
    GhError::validation(
        docs,
        json!({"resource": "Label", "code": "already_exists", "field": "name"}),
    )
}

/// `POST /repos/{o}/{r}/labels`; returns the name.
pub fn create(
    store: &mut Store,
    full_name: &str,
    body: &Map<String, Value>,
) -> Result<String, GhError> {
    let name = match body.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(GhError::missing_field(CREATE_DOCS, "Label", "name")),
    };
    let color = color(body, CREATE_DOCS)?.unwrap_or_else(|| DEFAULT_COLOR.into());
    let description = description(body, CREATE_DOCS)?.flatten();
    if store
        .repo(full_name)
        .is_some_and(|r| r.label(&name).is_some())
    {
        return Err(already_exists(CREATE_DOCS));
    }
    let id = store.next_id();
    let repo = store.repo_mut(full_name).expect("checked by the caller");
    repo.labels.push(Label {
        id,
        name: name.clone(),
        color,
        description,
    });
    Ok(name)
}

/// `PATCH /repos/{o}/{r}/labels/{name}`; returns the (new) name.
pub fn update(
    store: &mut Store,
    full_name: &str,
    name: &str,
    body: &Map<String, Value>,
) -> Result<String, GhError> {
    let repo = store.repo_mut(full_name).ok_or_else(GhError::not_found)?;
    let id = repo.label(name).ok_or_else(GhError::not_found)?.id;
    let new_name = match body.get("new_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(v) => return Err(GhError::invalid_field(UPDATE_DOCS, "Label", "name", v)),
    };
    if let Some(n) = &new_name {
        if repo.label(n).is_some_and(|l| l.id != id) {
            return Err(already_exists(UPDATE_DOCS));
        }
    }
    let color = color(body, UPDATE_DOCS)?;
    let description = description(body, UPDATE_DOCS)?;
    let label = repo.labels.iter_mut().find(|l| l.id == id).expect("found");
    if let Some(n) = new_name {
        label.name = n;
    }
    if let Some(c) = color {
        label.color = c;
    }
    if let Some(d) = description {
        label.description = d;
    }
    Ok(label.name.clone())
}

/// `DELETE /repos/{o}/{r}/labels/{name}`.
pub fn delete(store: &mut Store, full_name: &str, name: &str) -> Result<(), GhError> {
    let repo = store.repo_mut(full_name).ok_or_else(GhError::not_found)?;
    let id = repo.label(name).ok_or_else(GhError::not_found)?.id;
    repo.labels.retain(|l| l.id != id);
    for issue in repo.issues.values_mut() {
        issue.labels.retain(|l| *l != id);
    }
    Ok(())
}
