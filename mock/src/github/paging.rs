//! `per_page`/`page` and the `Link` header: absolute URLs on the mock's
//! host, the request's own query with only `page` changed.

use super::errors::GhError;
use crate::http::Req;
use crate::stripe::form;

pub const DEFAULT_PER_PAGE: usize = 30;
pub const MAX_PER_PAGE: usize = 100;

/// The request's query parameters, decoded, in order.
pub fn query(req: &Req) -> Vec<(String, String)> {
    form::pairs(&req.query)
}

pub fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// One of `allowed`, the default when absent, 422 otherwise.
pub fn choice<'a>(
    query: &'a [(String, String)],
    name: &str,
    allowed: &[&'a str],
    default: &'a str,
) -> Result<&'a str, GhError> {
    match param(query, name) {
        None => Ok(default),
        Some(v) if allowed.contains(&v) => Ok(v),
        Some(v) => Err(invalid_param(name, v)),
    }
}

/// 422 for a query parameter out of its range (no `resource`: it names none).
pub fn invalid_param(name: &str, value: &str) -> GhError {
    GhError::validation(
        super::errors::DOCS,
        serde_json::json!({ "field": name, "code": "invalid", "value": value }),
    )
}

pub struct Page {
    pub number: usize,
    pub per_page: usize,
}

impl Page {
    /// Out-of-range values fall back as GitHub's do: per_page is capped at
    /// 100, nonsense means the default.
    pub fn of(query: &[(String, String)]) -> Page {
        let per_page = param(query, "per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .map_or(DEFAULT_PER_PAGE, |n| n.min(MAX_PER_PAGE));
        let number = param(query, "page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        Page { number, per_page }
    }

    /// This page's items and the `Link` header value (None for a single page).
    pub fn slice<T>(&self, items: Vec<T>, base: &str, req: &Req) -> (Vec<T>, Option<String>) {
        let total = items.len();
        let last = total.div_ceil(self.per_page).max(1);
        let page: Vec<T> = items
            .into_iter()
            .skip((self.number - 1).saturating_mul(self.per_page))
            .take(self.per_page)
            .collect();
        let url = |n: usize| {
            let mut q: Vec<&str> = req
                .query
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("page=") && *p != "page")
                .collect();
            let page_param = format!("page={n}");
            q.push(&page_param);
            format!("<{base}{}?{}>", req.path, q.join("&"))
        };
        let mut links = Vec::new();
        if self.number > 1 {
            links.push(format!(
                "{}; rel=\"prev\"",
                url((self.number - 1).min(last))
            ));
        }
        if self.number < last {
            links.push(format!("{}; rel=\"next\"", url(self.number + 1)));
            links.push(format!("{}; rel=\"last\"", url(last)));
        }
        if self.number > 1 {
            links.push(format!("{}; rel=\"first\"", url(1)));
        }
        (page, (!links.is_empty()).then(|| links.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> Req {
        Req {
            method: "GET".into(),
            path: "/repos/o/r/issues".into(),
            query: query.into(),
            ..Req::default()
        }
    }

    #[test]
    fn links_keep_the_query_and_change_the_page() {
        let r = req("state=all&per_page=2&page=2");
        let page = Page::of(&query(&r));
        let (items, link) = page.slice((1..=5).collect::<Vec<u32>>(), "http://h", &r);
        assert_eq!(items, vec![3, 4]);
        assert_eq!(
            link.unwrap(),
            "<http://h/repos/o/r/issues?state=all&per_page=2&page=1>; rel=\"prev\", \
             <http://h/repos/o/r/issues?state=all&per_page=2&page=3>; rel=\"next\", \
             <http://h/repos/o/r/issues?state=all&per_page=2&page=3>; rel=\"last\", \
             <http://h/repos/o/r/issues?state=all&per_page=2&page=1>; rel=\"first\""
        );
        let r = req("per_page=500");
        assert_eq!(Page::of(&query(&r)).per_page, 100);
        let (_, link) = Page::of(&query(&r)).slice(vec![1], "http://h", &r);
        assert_eq!(link, None);
    }
}
