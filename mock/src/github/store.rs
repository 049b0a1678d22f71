//! One account's GitHub data: users, repositories with their issues (pull
//! requests among them), comments, labels and milestones. Ids come from one
//! counter per account, so they are global and increasing like GitHub's; the
//! clock never goes back, so `since` sees every change.

use std::collections::BTreeMap;

use super::errors::GhError;

/// The user the account's tokens authenticate as (GitHub's "user ID 1" in
/// the rate-limit message is this id).
pub const VIEWER_ID: u64 = 1;
pub const VIEWER_LOGIN: &str = "mock-user";

#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub login: String,
}

#[derive(Debug, Clone)]
pub struct Label {
    pub id: u64,
    pub name: String,
    pub color: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Milestone {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub creator: u64,
    pub created_s: i64,
}

/// What became of an issue that no longer answers as itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    Live,
    Deleted,
    /// Moved to another repository of the account, under a new number.
    Transferred {
        full_name: String,
        number: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub user: u64,
    /// "open" or "closed".
    pub state: String,
    pub state_reason: Option<String>,
    /// Label ids, in the order they were given.
    pub labels: Vec<u64>,
    /// User ids.
    pub assignees: Vec<u64>,
    /// A milestone number.
    pub milestone: Option<u64>,
    pub comments: u64,
    pub created_s: i64,
    pub updated_s: i64,
    pub closed_s: Option<i64>,
    pub closed_by: Option<u64>,
    pub pull_request: bool,
    pub fate: Fate,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub issue_number: u64,
    pub body: String,
    pub user: u64,
    pub created_s: i64,
    pub updated_s: i64,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub id: u64,
    pub full_name: String,
    pub owner: String,
    pub has_issues: bool,
    /// By number; issues and pull requests share the numbers.
    pub issues: BTreeMap<u64, Issue>,
    /// By id.
    pub comments: BTreeMap<u64, Comment>,
    /// In creation order.
    pub labels: Vec<Label>,
    pub milestones: Vec<Milestone>,
}

impl Repo {
    pub fn next_number(&self) -> u64 {
        self.issues.keys().next_back().map_or(1, |n| n + 1)
    }

    /// A live issue, or why not: GitHub's 404/410, or where a transferred
    /// one went (the caller builds the 301, which needs the base URL).
    pub fn issue(&self, number: u64) -> Result<&Issue, IssueGone> {
        match self.issues.get(&number) {
            None => Err(IssueGone::Error(GhError::not_found())),
            Some(i) => match &i.fate {
                Fate::Live => Ok(i),
                Fate::Deleted => Err(IssueGone::Error(GhError::issue_deleted())),
                Fate::Transferred { full_name, number } => Err(IssueGone::Moved {
                    full_name: full_name.clone(),
                    number: *number,
                }),
            },
        }
    }

    pub fn issue_mut(&mut self, number: u64) -> Result<&mut Issue, IssueGone> {
        self.issue(number)?;
        Ok(self.issues.get_mut(&number).expect("just found"))
    }

    pub fn label(&self, name: &str) -> Option<&Label> {
        self.labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }

    pub fn label_by_id(&self, id: u64) -> Option<&Label> {
        self.labels.iter().find(|l| l.id == id)
    }

    pub fn milestone(&self, number: u64) -> Option<&Milestone> {
        self.milestones.iter().find(|m| m.number == number)
    }

    /// A comment whose issue is still here (comments of deleted issues are gone).
    pub fn live_comment(&self, id: u64) -> Option<&Comment> {
        self.comments.get(&id).filter(|c| {
            self.issues
                .get(&c.issue_number)
                .is_some_and(|i| i.fate == Fate::Live)
        })
    }
}

/// Why an issue number does not answer with an issue.
#[derive(Debug)]
pub enum IssueGone {
    Error(GhError),
    Moved { full_name: String, number: u64 },
}

pub struct Store {
    next_id: u64,
    clock_s: i64,
    users: Vec<User>,
    /// By lowercased full name (GitHub's names are case-insensitive).
    repos: BTreeMap<String, Repo>,
}

impl Default for Store {
    fn default() -> Store {
        Store {
            next_id: VIEWER_ID + 1,
            clock_s: i64::MIN,
            users: vec![User {
                id: VIEWER_ID,
                login: VIEWER_LOGIN.into(),
            }],
            repos: BTreeMap::new(),
        }
    }
}

impl Store {
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Now in seconds, never before the last time handed out.
    pub fn tick(&mut self, now_s: i64) -> i64 {
        self.clock_s = self.clock_s.max(now_s);
        self.clock_s
    }

    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn user_by_login(&self, login: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.login.eq_ignore_ascii_case(login))
    }

    /// The user with this login, created if new.
    pub fn ensure_user(&mut self, login: &str) -> u64 {
        if let Some(u) = self.user_by_login(login) {
            return u.id;
        }
        let id = self.next_id();
        self.users.push(User {
            id,
            login: login.to_string(),
        });
        id
    }

    pub fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.get(&full_name.to_ascii_lowercase())
    }

    pub fn repo_mut(&mut self, full_name: &str) -> Option<&mut Repo> {
        self.repos.get_mut(&full_name.to_ascii_lowercase())
    }

    /// A new empty repository; its owner becomes a user. Err if it exists.
    pub fn create_repo(&mut self, full_name: &str, has_issues: bool) -> Result<&Repo, String> {
        let Some((owner, name)) = full_name.split_once('/') else {
            return Err("full_name must be owner/name".into());
        };
        if owner.is_empty() || name.is_empty() || name.contains('/') {
            return Err("full_name must be owner/name".into());
        }
        let key = full_name.to_ascii_lowercase();
        if self.repos.contains_key(&key) {
            return Err(format!("{full_name} exists"));
        }
        self.ensure_user(owner);
        let id = self.next_id();
        let repo = Repo {
            id,
            full_name: full_name.to_string(),
            owner: owner.to_string(),
            has_issues,
            issues: BTreeMap::new(),
            comments: BTreeMap::new(),
            labels: Vec::new(),
            milestones: Vec::new(),
        };
        Ok(self.repos.entry(key).or_insert(repo))
    }
}
