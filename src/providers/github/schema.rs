//! GitHub's collections, compiled in (DESIGN §4a): issues, pull requests,
//! issue comments and labels of the server's repository. Some columns are
//! read out of nested objects (`author` ← `user.login`, `labels` ← the
//! labels' names); `sync.rs` knows how.

use crate::providers::Writable::{Always, Never, OnInsert, OnUpdate};
use crate::providers::*;

/// Which list a collection reads and what it keeps of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `/issues` without the items that carry `pull_request`.
    Issues,
    /// `/issues` items that carry `pull_request`.
    PullRequests,
    /// `/issues/comments` (the whole repository's).
    Comments,
    /// `/labels` (no `since`).
    Labels,
}

const fn field(name: &'static str, sql_type: &'static str, writable: Writable) -> CompiledField {
    // GitHub's times are ISO 8601 strings: no conversion but Postgres'.
    CompiledField { name, api_type: sql_type, sql_type, writable }
}

const ID: CompiledField = field("id", "text", Never);
const REPOSITORY: CompiledField = field("repository", "text", Never);
const CREATED_AT: CompiledField = field("created_at", "timestamptz", Never);
const UPDATED_AT: CompiledField = field("updated_at", "timestamptz", Never);

const ISSUE_FIELDS: [CompiledField; 17] = [
    ID,
    field("number", "bigint", Never),
    field("title", "text", Always),
    field("body", "text", Always),
    field("state", "text", OnUpdate),
    field("state_reason", "text", OnUpdate),
    field("labels", "text[]", Always),
    field("assignees", "text[]", Always),
    field("milestone", "bigint", Always),
    field("author", "text", Never),
    field("locked", "boolean", Never),
    field("comments", "bigint", Never),
    field("html_url", "text", Never),
    REPOSITORY,
    CREATED_AT,
    UPDATED_AT,
    field("closed_at", "timestamptz", Never),
];

const PULL_REQUEST_FIELDS: [CompiledField; 19] = {
    let mut fields = [ID; 19];
    let mut i = 0;
    while i < ISSUE_FIELDS.len() {
        fields[i] = CompiledField { writable: Never, ..ISSUE_FIELDS[i] };
        i += 1;
    }
    fields[17] = field("draft", "boolean", Never);
    fields[18] = field("merged_at", "timestamptz", Never);
    fields
};

pub(super) struct GithubCollection {
    pub spec: CompiledCollection,
    pub kind: Kind,
}

pub(super) const COLLECTIONS: &[GithubCollection] = &[
    GithubCollection {
        spec: CompiledCollection {
            name: "issues",
            fields: &ISSUE_FIELDS,
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        kind: Kind::Issues,
    },
    GithubCollection {
        spec: CompiledCollection {
            name: "pull_requests",
            fields: &PULL_REQUEST_FIELDS,
            writes: &[],
            writes_hint: Some("Pull requests are read-only here: sequin.request() reaches GitHub's pulls API (POST /repos/{owner}/{repo}/pulls, PATCH …/pulls/{number})."),
        },
        kind: Kind::PullRequests,
    },
    GithubCollection {
        spec: CompiledCollection {
            name: "issue_comments",
            fields: &[
                ID,
                field("issue_number", "bigint", OnInsert),
                field("body", "text", Always),
                field("author", "text", Never),
                field("author_association", "text", Never),
                field("html_url", "text", Never),
                REPOSITORY,
                CREATED_AT,
                UPDATED_AT,
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        kind: Kind::Comments,
    },
    GithubCollection {
        spec: CompiledCollection {
            name: "labels",
            fields: &[
                ID,
                field("name", "text", Always),
                field("color", "text", Always),
                field("description", "text", Always),
                field("default", "boolean", Never),
                REPOSITORY,
            ],
            writes: &WriteOp::ALL,
            writes_hint: None,
        },
        kind: Kind::Labels,
    },
];

pub(super) fn kind(spec: &CollectionSpec) -> Kind {
    COLLECTIONS.iter().find(|c| c.spec.name == spec.name).map_or(Kind::Issues, |c| c.kind)
}
