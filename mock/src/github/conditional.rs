//! ETags and `If-None-Match`: a 200 GET carries `ETag: W/"<hash of the body>"`;
//! the same GET with a matching `If-None-Match` answers 304 with no body.

use crate::http::{Reply, Req};
use crate::ids::{fnv1a, mix};

/// 64 hex digits, like GitHub's (which are SHA-256; these only need to
/// change when the body does).
pub fn etag(body: &[u8]) -> String {
    let mut h = fnv1a(body);
    let mut hex = String::with_capacity(64);
    for _ in 0..4 {
        h = mix(h);
        hex.push_str(&format!("{h:016x}"));
    }
    format!("W/\"{hex}\"")
}

/// Whether `If-None-Match` (a list of tags, or `*`) names this tag; weak
/// comparison, as for GET.
fn matches(if_none_match: &str, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || opaque(t) == opaque(tag))
}

/// Adds the ETag to a 200 GET, or turns it into a 304.
pub fn apply(req: &Req, reply: Reply) -> Reply {
    if req.method != "GET" || reply.status != 200 {
        return reply;
    }
    let tag = etag(&reply.body);
    if req
        .header("if-none-match")
        .is_some_and(|v| matches(v, &tag))
    {
        let mut not_modified = Reply::raw(304, Vec::new());
        not_modified.headers = reply.headers;
        return not_modified.with_header("ETag", tag);
    }
    reply.with_header("ETag", tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison_and_lists() {
        let tag = etag(b"[]");
        assert!(tag.starts_with("W/\"") && tag.len() == 64 + 4);
        assert_ne!(tag, etag(b"[1]"));
        let strong = tag.trim_start_matches("W/");
        assert!(matches(strong, &tag));
        assert!(matches(&format!("\"x\", {tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"x\"", &tag));
    }
}
